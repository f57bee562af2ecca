"""A create with an `Idempotency-Key` whose process is killed (SIGKILL) at any point is done once:
the killed process leaves either nothing or the opportunity with its kept answer, and the
client's retry completes it or replays it (docs/api.md "Safe retries").

Each point is a separate process (`devtools.crash_idempotency`, with `devtools.crash_points`'
killer) on a throw-away database (a SQLite file, or a PostgreSQL database on the server
DATABASE_URL names); the points are the lines of the create's code, sampled to `CRASH_POINTS`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devtools.harness import ROOT, Workspace
from devtools.testing import kill_points

POINTS = int(os.environ.get("CRASH_POINTS", "10"))
# The key's claim, the create, its history and version, and the kept answer.
CREATE_CODE = (
    "crm/idempotency.py",
    "opportunities/services.py",
    "opportunities/history.py",
    "opportunities/versions.py",
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    server = os.environ.get("DATABASE_URL", "")
    with Workspace("crm-crash-idempotency-") as workspace:
        url = workspace.database_url(server if server.startswith("postgres") else "", f"crm_crash_idem_{os.getpid()}")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings_test", "DATABASE_URL": url}
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, cwd=ROOT, check=True, timeout=300)
        yield env


def child(env: dict[str, str], *args: Any, killed: bool = False) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "devtools.crash_idempotency", *map(str, args)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in ((0, -9) if killed else (0,)), done.stderr[-3000:]
    return done.stdout


def test_a_create_killed_at_any_point_is_done_once(env):
    events = json.loads(child(env, "run", "Venta calibración", "clave-0", 0))
    assert any(event.startswith("crm/idempotency.py") for event in events)
    points = kill_points(events, CREATE_CODE, POINTS)

    def one(number: int, point: int) -> dict[str, Any]:
        name, key = f"Venta {number}", f"clave-{number}"
        child(env, "run", name, key, point, killed=True)
        return {"point": point, "event": events[point - 1], **json.loads(child(env, "retry", name, key))}

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one, range(1, len(points) + 1), points))
    assert len(results) >= min(POINTS, 8)
    for result in results:
        before, after = result["before"], result["after"]
        # The kill left nothing, or the opportunity together with its kept answer.
        assert before["opportunities"] == [] or (len(before["opportunities"]) == 1 and before["key"] == "done"), result
        # The retry created it, or replayed the answer of the one that was created: one, either way.
        assert result["status"] == 201 and after["opportunities"] == [result["id"]] and after["key"] == "done", result
    # Some kills fell before the commit and some after it: both ends were tried.
    assert {bool(result["before"]["opportunities"]) for result in results} == {False, True}
