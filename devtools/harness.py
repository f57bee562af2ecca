"""The one way the suites that meet the product from outside run it: the black-box and fault
suites (e2e/, faults/), the benchmarks (bench/), `make demo` and the unit tests that start a
real server.

A `Workspace` is a throw-away folder (with its own MEDIA_ROOT and INVOICE_DOWNLOAD_DIR), the
subprocesses started in it (gunicorn, `manage.py runserver`, the stand-ins: each in its own
process group, its output in `<folder>/<name>.log`) and the `manage.py` commands run to
completion; `close()` stops every process group and removes the folder. `ThrowAwayDatabase` is
a fresh PostgreSQL database dropped at the end; `database_url()` picks it or an SQLite file.
Only 127.0.0.1.
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
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "manage.py"
PYTHON = sys.executable

#: Variables of the caller's environment a hermetic subprocess keeps; everything else is explicit.
PASSTHROUGH_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "TERM")

#: Seconds: a service to answer after start; a manage.py command to end.
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 300.0


def free_port(*taken: int) -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, none of `taken`."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port


def hermetic_env(settings: Mapping[str, str]) -> dict[str, str]:
    """A minimal environment plus `settings`; `ENV_FILE` empty so the developer's `.env` is never read."""
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


def checkout_env(folder: Path, settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """`hermetic_env` of a development checkout that keeps its files in `folder`: DEBUG on, an SQLite
    database, MEDIA_ROOT and INVOICE_DOWNLOAD_DIR there, no invoice-mifact or SV; `settings` on top."""
    return hermetic_env(
        {
            "DEBUG": "true",
            "DATABASE_URL": f"sqlite:///{folder / 'crm.sqlite3'}",
            "MEDIA_ROOT": str(folder / "media"),
            "INVOICE_DOWNLOAD_DIR": str(folder / "downloads"),
            "URL_INVOICE_MIFACT_V3": "",
            "URL_SV": "",
            **(settings or {}),
        }
    )


def settings_run(code: str, settings: Mapping[str, str], *, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run Python `code` in a fresh interpreter under `settings` alone (`hermetic_env`, DEBUG on unless
    `settings` says otherwise): what the project's settings make of them at start-up."""
    return subprocess.run(
        [PYTHON, "-c", code],
        cwd=cwd,
        env=hermetic_env({"DEBUG": "true", **settings}),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )


def answers(url: str, headers: Mapping[str, str] | None = None) -> bool:
    """Whether `url` answers 2xx now (no proxy: loopback only)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=dict(headers or {})), timeout=2) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError):
        return False


def mifact_standin_argv(
    port: int, username: str, password: str, *options: str, module: str = "devtools.mifact_standin"
) -> list[str]:
    """The command that serves the invoice-mifact stand-in (or `module`, a faulty one) on 127.0.0.1:`port`."""
    return [
        PYTHON,
        "-m",
        module,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--username",
        username,
        "--password",
        password,
        *options,
    ]


class ThrowAwayDatabase:
    """A fresh database `name` on the PostgreSQL server of `admin_url` (created and dropped from its
    maintenance database `postgres`): `create()` returns its URL, `drop()` (idempotent) removes it,
    even with connections open."""

    def __init__(self, admin_url: str, name: str) -> None:
        parts = urlsplit(admin_url)
        if parts.scheme not in ("postgres", "postgresql", "pgsql"):
            raise RuntimeError(f"not a postgres:// URL: {admin_url}")
        self.name = name
        self.url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
        self._admin_conninfo = urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, ""))
        self.created = False

    def _admin(self, statement: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self._admin_conninfo, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(self.name)))

    def create(self) -> str:
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        self._admin("CREATE DATABASE {}")
        self.created = True
        return self.url

    def connect(self) -> Any:
        """A psycopg connection to the database (autocommit), for checks."""
        import psycopg

        return psycopg.connect(self.url.replace("postgres://", "postgresql://", 1), autocommit=True)

    def drop(self) -> None:
        if self.created:
            self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            self.created = False


class Workspace:
    """A throw-away folder and the subprocesses of one run; see the module docstring.

    `error` is the exception a failed start or command raises (each suite reports its own way).
    """

    def __init__(self, prefix: str, error: Callable[[str], Exception] = RuntimeError) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.media = self.dir / "media"
        self.media.mkdir()
        self.error = error
        self.processes: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        self.databases: list[ThrowAwayDatabase] = []

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def files_env(self) -> dict[str, str]:
        """Where the servers and commands keep comprobantes and their downloads: in the folder."""
        return {"MEDIA_ROOT": str(self.media), "INVOICE_DOWNLOAD_DIR": str(self.dir / "downloads")}

    def database_url(self, admin_url: str, name: str) -> str:
        """An SQLite file in the folder when `admin_url` is empty or sqlite://, else the fresh
        PostgreSQL database `name` on that server, dropped by `close()`."""
        if not admin_url or admin_url.startswith("sqlite"):
            return f"sqlite:///{self.dir / (name + '.sqlite3')}"
        database = ThrowAwayDatabase(admin_url, name)
        self.databases.append(database)
        return database.create()

    # -- subprocesses ---------------------------------------------------------------------------

    def manage_run(
        self, env: Mapping[str, str], *args: str, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run `manage.py <args>` to completion, its output captured, whatever its exit status."""
        try:
            return subprocess.run(
                [PYTHON, str(MANAGE), *args],
                cwd=ROOT,
                env=dict(env),
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise self.error(f"manage.py {' '.join(args)} did not finish in {timeout:.0f} s") from exc

    def manage(self, env: Mapping[str, str], *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
        """Run `manage.py <args>` to completion; return its output; `error` when it fails."""
        done = self.manage_run(env, *args, timeout=timeout)
        output = (done.stdout + done.stderr).strip()
        if done.returncode != 0:
            raise self.error(f"manage.py {' '.join(args)} exited {done.returncode}:\n{output}")
        return output

    def spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        """Start `argv` in the background in its own process group, its output appended to `<dir>/<name>.log`."""
        log_path = self.dir / f"{name}.log"
        with open(log_path, "ab") as log:
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

    def wait_http(
        self, name: str, url: str, headers: Mapping[str, str] | None = None, timeout: float = START_TIMEOUT
    ) -> None:
        """Poll `url` until it answers 2xx; `error` if the process dies or time runs out."""
        process, _ = self.processes[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise self.error(
                    f"{name} exited with status {process.returncode} while starting:\n{self.log_tail(name)}"
                )
            if answers(url, headers):
                return
            time.sleep(0.1)
        raise self.error(f"{name} did not answer {url} within {timeout:.0f} s:\n{self.log_tail(name)}")

    def log_path(self, name: str) -> Path:
        return self.processes[name][1]

    def log_tail(self, name: str, lines: int = 30, since: int = 0) -> str:
        try:
            with self.log_path(name).open("rb") as log:
                log.seek(since)
                text = log.read().decode("utf-8", "replace")
        except (OSError, KeyError):
            return "    (no log)"
        return "\n".join("    " + line for line in text.splitlines()[-lines:]) or "    (empty log)"

    def stop(self, name: str, grace: float = 10.0) -> None:
        """Stop one subprocess: SIGTERM, then SIGKILL to its process group after `grace` s; whatever
        its group left behind (gunicorn workers) goes too."""
        process, _ = self.processes[name]
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _kill_group(process.pid)
                process.wait(timeout=5)
        _kill_group(process.pid)

    def close(self, keep: bool = False) -> None:
        """Stop every subprocess, drop the databases, remove the folder (unless `keep`)."""
        try:
            for name in list(self.processes):
                try:
                    self.stop(name)
                except Exception as exc:  # keep cleaning up
                    print(f"WARNING: could not stop {name}: {exc}", flush=True)
            for database in self.databases:
                try:
                    database.drop()
                except Exception as exc:
                    print(f"WARNING: could not drop database {database.name}: {exc}", flush=True)
        finally:
            if not keep:
                shutil.rmtree(self.dir, ignore_errors=True)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
