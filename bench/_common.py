"""Plumbing shared by the benchmarks (bench/poll.py, bench/api.py).

Every run is hermetic: subprocesses get a minimal environment (PATH, HOME, locale) plus explicit
settings, with `ENV_FILE` empty so the developer's `.env` is never read; the database is a
throw-away PostgreSQL database `crm_bench_<pid>` on 127.0.0.1:5432, dropped at the end even on
failure; files go to a temporary folder; ports are free ports on 127.0.0.1; every subprocess
started is stopped. Only loopback traffic.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "manage.py"
PYTHON = sys.executable

#: The server's maintenance database, used to create and drop the throw-away database.
POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER = "127.0.0.1", 5432, "postgres"

#: Variables passed through from the caller's environment; everything else is set explicitly.
PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TERM")

COMMAND_TIMEOUT = 300.0
START_TIMEOUT = 30.0


class BenchError(Exception):
    """The benchmark itself broke (not a missed target): a step failed or a check did not hold."""


def say(text: str = "") -> None:
    print(text, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hermetic_env(settings: Mapping[str, str]) -> dict[str, str]:
    """A minimal environment plus `settings`; `ENV_FILE` empty so no `.env` is read."""
    env = {name: os.environ[name] for name in PASSTHROUGH_ENV if name in os.environ}
    env.update(
        {
            "ENV_FILE": "",
            "DJANGO_SETTINGS_MODULE": "crm.settings",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update(settings)
    return env


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP run the same clean-up as Ctrl-C (subprocesses stopped, database dropped)."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)


class ThrowAwayDatabase:
    """`crm_bench_<pid>` on the local PostgreSQL server: `create()`, `url`, `drop()` (idempotent)."""

    def __init__(self) -> None:
        # BENCH_DB_PREFIX names the database differently (benches run side by side on one server).
        self.name = f"{os.environ.get('BENCH_DB_PREFIX') or 'crm_bench'}_{os.getpid()}"
        self.created = False

    @property
    def url(self) -> str:
        return f"postgres://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{self.name}"

    def _admin(self, statement: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(
            host=POSTGRES_HOST,
            port=POSTGRES_PORT,
            user=POSTGRES_USER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(self.name)))

    def create(self) -> None:
        try:
            self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            self._admin("CREATE DATABASE {}")
        except Exception as exc:  # psycopg.OperationalError and friends
            raise BenchError(
                f"cannot create database {self.name} on {POSTGRES_HOST}:{POSTGRES_PORT} as {POSTGRES_USER}: {exc}"
            ) from exc
        self.created = True

    def connect(self) -> Any:
        """A psycopg connection to the throw-away database (autocommit), for checks."""
        import psycopg

        return psycopg.connect(
            host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, dbname=self.name, autocommit=True
        )

    def drop(self) -> None:
        if not self.created:
            return
        try:
            self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            self.created = False
        except Exception as exc:
            say(f"WARNING: could not drop database {self.name}: {exc}")


class Workspace:
    """A temp folder, a throw-away database and the subprocesses of one benchmark run.

    Use as a context manager: on exit every subprocess is stopped (SIGTERM, then SIGKILL to its
    process group after a grace period), the database dropped and the folder removed.
    """

    def __init__(self, prefix: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.media = self.dir / "media"
        self.media.mkdir()
        self.db = ThrowAwayDatabase()
        self.processes: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

    def __enter__(self) -> Workspace:
        return self

    @property
    def files_env(self) -> dict[str, str]:
        """Where the servers and commands keep comprobantes and their downloads: in the workspace."""
        return {"MEDIA_ROOT": str(self.media), "INVOICE_DOWNLOAD_DIR": str(self.dir / "downloads")}

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- subprocesses ---------------------------------------------------------------------------

    def manage(self, env: Mapping[str, str], *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
        """Run `manage.py <args>` to completion; return its output; BenchError on failure."""
        try:
            done = subprocess.run(
                [PYTHON, str(MANAGE), *args],
                cwd=ROOT,
                env=dict(env),
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"manage.py {' '.join(args)} did not finish in {timeout:.0f} s") from exc
        output = (done.stdout + done.stderr).strip()
        if done.returncode != 0:
            raise BenchError(f"manage.py {' '.join(args)} exited {done.returncode}:\n{output}")
        return output

    def spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        """Start `argv` in the background (own process group), output to `<dir>/<name>.log`."""
        log_path = self.dir / f"{name}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                list(argv),
                cwd=ROOT,
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.processes[name] = (process, log_path)
        return process

    def wait_http(self, name: str, url: str, headers: Mapping[str, str] | None = None) -> None:
        """Poll `url` until it answers 2xx; BenchError if the process dies or time runs out."""
        import urllib.error
        import urllib.request

        process, _ = self.processes[name]
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BenchError(
                    f"{name} exited with status {process.returncode} while starting:\n{self.log_tail(name)}"
                )
            try:
                request = urllib.request.Request(url, headers=dict(headers or {}))
                with urllib.request.urlopen(request, timeout=2) as response:
                    if 200 <= response.status < 300:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise BenchError(f"{name} did not answer {url} within {START_TIMEOUT:.0f} s:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        _, log_path = self.processes[name]
        try:
            text = log_path.read_text(errors="replace")
        except OSError:
            return "    (no log)"
        return "\n".join("    " + line for line in text.splitlines()[-lines:]) or "    (empty log)"

    def stop(self, name: str, grace: float = 10.0) -> None:
        """Stop one subprocess: SIGTERM, then SIGKILL to its process group after `grace` s."""
        process, _ = self.processes[name]
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=5)
        # Anything its process group left behind (e.g. gunicorn workers) goes too.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        for name in list(self.processes):
            try:
                self.stop(name)
            except Exception as exc:  # keep cleaning up
                say(f"WARNING: could not stop {name}: {exc}")
        self.db.drop()
        shutil.rmtree(self.dir, ignore_errors=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
