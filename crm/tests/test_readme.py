"""The README's example session works on any PORT, as written.

Its terminal-3 block is run with bash, verbatim, against `manage.py runserver` (what `make run`
starts) on a free port given in `PORT`, up to the direct-invoice close (which needs the local
file server of terminal 1 on its fixed port 8001).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from devtools.harness import MANAGE, PYTHON, Workspace, checkout_env, free_port

ROOT = Path(__file__).resolve().parents[2]
SESSION_HEADING = "## Example session with curl"


def session_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split(SESSION_HEADING, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.DOTALL)


def test_the_session_names_the_crm_only_through_port():
    blocks = session_blocks()
    assert len(blocks) == 2 and blocks[1].startswith("# Terminal 3")
    for block in blocks:
        assert not re.search(r":8000\b", block.replace("${PORT:-8000}", "")), block


def test_the_session_runs_as_written_on_another_port(tmp_path):
    commands = session_blocks()[1].split("# 8.2")[0]
    port = free_port()
    env = checkout_env(tmp_path)
    with Workspace("crm-readme-") as workspace:
        workspace.manage(env, "migrate", "-v0")
        workspace.manage(env, "create_demo_user")
        workspace.spawn("runserver", [PYTHON, str(MANAGE), "runserver", "--noreload", f"127.0.0.1:{port}"], env)
        workspace.wait_http("runserver", f"http://127.0.0.1:{port}/health")
        session = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", commands],
            env={**env, "PORT": str(port)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert session.returncode == 0, (session.stdout[-2000:], session.stderr[-2000:])
    assert '"success":true' in session.stdout
    assert '"message":"El campo reservationId no puede estar vacío"' in session.stdout
