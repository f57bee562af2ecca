"""The running product for the black-box suite: gunicorn, the stand-ins, a throw-away database.

`Stack.start()` does what an operator does on a fresh server (docs/operations.md "Deploying"): migrate,
collectstatic, create an API user, serve `crm.wsgi` with gunicorn and production settings. Beside
it: the invoice-mifact stand-in (`python -m devtools.mifact_standin`, a subprocess), an SV stand-in
(`devtools/sv_standin.py`), a PDF file server and the front-end's origin (`devtools.testing.LocalHTTPServer`),
all in this process.
Everything listens on 127.0.0.1 only. `Stack.stop()` always stops all of it and drops the database.

The suite never imports the product's Django code: it talks HTTP to the server and runs
`manage.py` subprocesses, as the front-end, cron and an operator do.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import requests

from devtools.sv_standin import SvStandin
from devtools.testing import LocalHTTPServer

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
METRICS_TOKEN = "e2e-metrics-token"
MANAGE = ROOT / "manage.py"

#: gunicorn sync workers: each keeps its own caches, so some tests make sure both served them.
GUNICORN_WORKERS = 2
#: Seconds: one HTTP call of the suite; a service to answer after start; a manage.py command.
HTTP_TIMEOUT = 30.0
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 120.0

API_USER, API_PASSWORD = "e2e-ventas", "e2e-clave-Segura-2026"
MIFACT_USER, MIFACT_PASSWORD = "e2e-mifact", "e2e-mifact-secret"
SV_USER, SV_PASSWORD = "e2e-sv", "e2e-sv-secret"
#: Seconds before a failed SV delivery is retried (SV_SYNC_BACKOFF_SECONDS; production: 60).
SV_BACKOFF_SECONDS = 1

#: Variables of the caller's environment a subprocess keeps; everything else is set below.
_INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ")


class CommandResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiSession(requests.Session):
    """A `requests.Session` on the CRM's base URL: relative paths, a timeout on every call, no
    proxy from the environment (the suite reaches 127.0.0.1 only)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = HTTP_TIMEOUT) -> None:
        super().__init__()
        self.base_url = base_url
        self.timeout = timeout
        self.trust_env = False
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if url.startswith("/"):
            url = self.base_url + url
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)

    # -- the calls the tests make over and over ------------------------------------------------

    def json_ok(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        assert response.status_code == expect, (
            f"{method} {path} answered {response.status_code} (expected {expect}): {response.text[:800]}"
        )
        return response.json()

    def create_opportunity(self, name: str, **fields: Any) -> dict[str, Any]:
        return self.json_ok("POST", "/opportunity", expect=201, json={"name": name, **fields})

    def put_process(self, opportunity_id: str, body: Any) -> dict[str, Any]:
        """PUT update-opportunity-procces; asserts a 200 with `success`; returns the whole answer."""
        answer = self.json_ok("PUT", f"/opportunity/update-opportunity-procces/{opportunity_id}", json=body)
        assert answer.get("success") is True, answer
        return answer

    def opportunity(self, opportunity_id: str) -> dict[str, Any]:
        return self.json_ok("GET", f"/opportunity/{opportunity_id}")

    def listing(self, opportunity_id: str, what: str) -> list[dict[str, Any]]:
        """`meetings`, `action-history`, `attachments` or `service-orders` of an opportunity."""
        value = self.json_ok("GET", f"/opportunity/{opportunity_id}/{what}")
        return value["results"] if isinstance(value, dict) else value


class MifactControl:
    """The control endpoints of the invoice-mifact stand-in (`billing/standin.py`)."""

    def __init__(self, base_url: str, log_path: Path) -> None:
        self.base_url = base_url  # the value of URL_INVOICE_MIFACT_V3
        self.log_path = log_path
        self.http = requests.Session()
        self.http.trust_env = False

    def invoice(
        self, service_order_id: int, *, soles: bool = True, dolares: bool = False, head_id: int | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"soles": soles, "dolares": dolares}
        if head_id is not None:
            body["invoice_result_head_id"] = head_id
        response = self.http.post(
            f"{self.base_url}/_standin/service-order/{service_order_id}/invoice", json=body, timeout=HTTP_TIMEOUT
        )
        assert response.status_code == 200, response.text
        return response.json()

    def state(self) -> dict[str, Any]:
        response = self.http.get(f"{self.base_url}/_standin/state", timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text
        return response.json()

    def log_offset(self) -> int:
        return self.log_path.stat().st_size

    def requests_since(self, offset: int) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request served since `offset` of its access log
        (the stand-in runs with --verbosity 2, one line per request)."""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", "replace")
        return [
            (m.group(1), m.group(2), int(m.group(3)))
            for m in re.finditer(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3})', text)
        ]


class Stack:
    """Everything the suite runs against; see the module docstring."""

    #: Name of the PostgreSQL database: `<prefix>_<pid>`; the invoice-mifact stand-in's module.
    database_prefix = "crm_e2e"
    mifact_module = "devtools.mifact_standin"

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="crm-e2e-"))
        self.media = self.workdir / "media"
        self.media.mkdir()
        self._exit = ExitStack()
        self.processes: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        self.env: dict[str, str] = {}

    # -- start / stop --------------------------------------------------------------------------

    def start(self) -> Stack:
        for path in (PYTHON, GUNICORN):
            if not path.exists():
                raise RuntimeError(f"{path} is missing: run `make bootstrap` first")
        self.pdf_server = LocalHTTPServer()
        self._exit.callback(self.pdf_server.close)
        self.sv = SvStandin(username=SV_USER, password=SV_PASSWORD).start()
        self._exit.callback(self.sv.stop)
        # The front-end's own origin (another port): the only one in CORS_ALLOWED_ORIGINS.
        self.front_server = LocalHTTPServer()
        self._exit.callback(self.front_server.close)

        self.api_port = free_port()
        self.mifact_port = free_port()
        while self.mifact_port == self.api_port:
            self.mifact_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.database_url = self._create_database()
        self.metrics_dir = self.workdir / "metrics"
        self.metrics_dir.mkdir()
        self.env = self._environment()
        self.mifact = MifactControl(f"http://127.0.0.1:{self.mifact_port}/api", self.workdir / "mifact_standin.log")

        self.manage_ok("migrate", "--noinput")
        # Production static storage (hashed names, a manifest) needs collectstatic; STATIC_ROOT
        # is the project's staticfiles/ (gitignored): no setting points it elsewhere.
        self.manage_ok("collectstatic", "--noinput")
        self.manage_ok(
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model; "
            f"get_user_model().objects.create_user({API_USER!r}, password={API_PASSWORD!r})",
        )

        self.spawn(
            "mifact_standin",
            [
                str(PYTHON),
                "-m",
                self.mifact_module,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.mifact_port),
                "--username",
                MIFACT_USER,
                "--password",
                MIFACT_PASSWORD,
                "--log-requests",
            ],
        )
        self.spawn("gunicorn", self.gunicorn_argv())
        self.wait_until_up("mifact_standin", f"{self.mifact.base_url}/_standin/state")
        self.wait_until_up("gunicorn", f"{self.base_url}/health")
        self.token = self.sign_in(API_USER, API_PASSWORD)
        return self

    def gunicorn_argv(self) -> list[str]:
        """gunicorn serving `crm.wsgi` as `make serve` does, on the suite's port."""
        return [
            str(GUNICORN),
            "crm.wsgi",
            "--config",
            "python:crm.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{self.api_port}",
            "--workers",
            str(GUNICORN_WORKERS),
            "--worker-class",
            "sync",
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
            "--access-logfile",
            "-",
            # The worker's pid at the end: which of the two served a request.
            "--access-logformat",
            '%(h)s "%(r)s" %(s)s %(b)s %(L)ss pid=%(p)s',
        ]

    def stop(self) -> None:
        """Stop every process and server, drop the database, remove the folder (unless
        E2E_KEEP=1). Safe after a failed `start()`."""
        try:
            for process, _ in self.processes.values():
                if process.poll() is None:
                    process.terminate()
            for process, _ in self.processes.values():
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
            self._exit.close()
        finally:
            if os.environ.get("E2E_KEEP") == "1":
                print(f"\nE2E_KEEP=1: logs and media kept in {self.workdir}")
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)

    # -- database ------------------------------------------------------------------------------

    def _create_database(self) -> str:
        """SQLite in the folder, or a fresh PostgreSQL database when E2E_DATABASE_URL says so."""
        admin_url = os.environ.get("E2E_DATABASE_URL", "").strip()
        if not admin_url or admin_url.startswith("sqlite"):
            return f"sqlite:///{self.workdir / 'e2e.sqlite3'}"
        parts = urlsplit(admin_url)
        if parts.scheme not in ("postgres", "postgresql", "pgsql"):
            raise RuntimeError(f"E2E_DATABASE_URL must be a postgres:// URL, not {parts.scheme}://")
        import psycopg
        from psycopg import sql

        name = f"{self.database_prefix}_{os.getpid()}"
        conninfo = urlunsplit(("postgresql", parts.netloc, parts.path or "/postgres", parts.query, ""))

        def execute(statement: Any) -> None:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
                conn.execute(statement)

        execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        # stop() ends the processes before it closes the exit stack, so nothing holds it then.
        self._exit.callback(execute, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))

    # -- environment and subprocesses ----------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        env = {key: os.environ[key] for key in _INHERITED if key in os.environ}
        env.update(
            {
                # Hermetic: the developer's .env is never read; every setting the suite relies
                # on is given here, the rest keep their production defaults.
                "ENV_FILE": "",
                "DJANGO_SETTINGS_MODULE": "crm.settings",
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                "DEBUG": "false",
                "SECRET_KEY": secrets.token_urlsafe(50),
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                # The suite is the client itself, on plain HTTP to gunicorn on loopback: there is
                # no TLS proxy to set X-Forwarded-Proto, so only the redirect to https is off
                # (every other production security setting keeps its default).
                "SECURE_SSL_REDIRECT": "false",
                "CONN_MAX_AGE": "600",
                "DATABASE_URL": self.database_url,
                "MEDIA_ROOT": str(self.media),
                "INVOICE_DOWNLOAD_DIR": str(self.media.parent / "downloads"),
                "URL_INVOICE_MIFACT_V3": f"http://127.0.0.1:{self.mifact_port}/api",
                "INVOICE_MIFACT_USERNAME": MIFACT_USER,
                "INVOICE_MIFACT_PASSWORD": MIFACT_PASSWORD,
                "URL_SV": self.sv.base_url,
                "SV_USERNAME": SV_USER,
                "SV_PASSWORD": SV_PASSWORD,
                # Direct invoices come from the local PDF server; the stand-in's own host:port
                # is allowed by the product already (it is the invoice-mifact host).
                "INVOICE_DOWNLOAD_ALLOWED_HOSTS": self.pdf_server.host_port,
                "SV_SYNC_BACKOFF_SECONDS": str(SV_BACKOFF_SECONDS),
                # The browser test's page calls the API from there (docs/api.md "Calling from a browser").
                "CORS_ALLOWED_ORIGINS": f"http://{self.front_server.host_port}",
                # The suite signs in more than the production 10 a minute from one address.
                "SIGNIN_THROTTLE_RATE": "10000/min",
                # Monitoring as the clinic's IT would set it: JSON logs, /metrics behind a token,
                # every gunicorn worker's figures summed (as `make serve` does).
                "LOG_FORMAT": "json",
                "METRICS_TOKEN": METRICS_TOKEN,
                "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            }
        )
        return env

    def env_with(self, **overrides: str) -> dict[str, str]:
        return {**self.env, **overrides}

    def manage(self, *args: str, env: dict[str, str] | None = None, timeout: float = COMMAND_TIMEOUT) -> CommandResult:
        """Run `.venv/bin/python manage.py <args>` to completion with the suite's environment."""
        try:
            done = subprocess.run(
                [str(PYTHON), str(MANAGE), *args],
                cwd=ROOT,
                env=env or self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"manage.py {' '.join(args)} did not finish in {timeout:.0f} s") from exc
        return CommandResult(done.returncode, done.stdout, done.stderr)

    def manage_ok(self, *args: str, **kwargs: Any) -> CommandResult:
        result = self.manage(*args, **kwargs)
        if result.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def manage_popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start `manage.py <args>` in the background; the caller collects it with communicate()."""
        return subprocess.Popen(
            [str(PYTHON), str(MANAGE), *args],
            cwd=ROOT,
            env=env or self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log_path = self.workdir / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                argv, cwd=ROOT, env=env or self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.processes[name] = (process, log_path)

    def restart_gunicorn(self, env: dict[str, str]) -> None:
        """Stop gunicorn (SIGTERM, as a deploy does) and serve again with `env`; returns once it answers."""
        process, _ = self.processes["gunicorn"]
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.spawn("gunicorn", self.gunicorn_argv(), env=env)
        self.wait_until_up("gunicorn", f"{self.base_url}/health/live")

    def gunicorn_worker_pids(self) -> list[int]:
        """Pids of gunicorn's current workers (the master's children, from /proc; Linux only)."""
        master = self.processes["gunicorn"][0].pid
        try:
            children = Path(f"/proc/{master}/task/{master}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in children.split()]

    def wait_until_up(self, name: str, url: str) -> None:
        process, _ = self.processes[name]
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} while starting:\n{self.log_tail(name)}")
            try:
                with requests.Session() as probe:
                    probe.trust_env = False
                    if probe.get(url, timeout=2).ok:
                        return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not answer {url} within {START_TIMEOUT:.0f} s:\n{self.log_tail(name)}")

    def log_path(self, name: str) -> Path:
        return self.processes[name][1]

    def log_offset(self, name: str) -> int:
        return self.log_path(name).stat().st_size

    def workers_that_served(self, path: str, since: int) -> set[int]:
        """Pids of the gunicorn workers that logged a request for `path` after `since`."""
        with self.log_path("gunicorn").open("rb") as log:
            log.seek(since)
            text = log.read().decode("utf-8", "replace")
        return {int(pid) for pid in re.findall(rf'"[A-Z]+ {re.escape(path)} HTTP/[\d.]+" .*pid=<(\d+)>', text)}

    def log_tail(self, name: str, lines: int = 40, since: int = 0) -> str:
        try:
            with self.log_path(name).open("rb") as log:
                log.seek(since)
                text = log.read().decode("utf-8", "replace")
        except (OSError, KeyError):
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- HTTP ----------------------------------------------------------------------------------

    def session(self, token: str | None = None) -> ApiSession:
        return ApiSession(self.base_url, token)

    def sign_in(self, username: str, password: str) -> str:
        with self.session() as http:
            answer = http.json_ok("POST", "/auth/signin", json={"username": username, "password": password})
        return answer["access_token"]


def json_error(response: requests.Response, status: int) -> str | None:
    """None when `response` is the API's JSON error with `status`; else what is wrong with it."""
    problems = []
    if response.status_code != status:
        problems.append(f"status {response.status_code}")
    content_type = response.headers.get("Content-Type", "")
    if not content_type.startswith("application/json"):
        problems.append(f"Content-Type {content_type!r}")
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if not (
        isinstance(body, dict)
        and body.get("statusCode") == status
        and isinstance(body.get("message"), str)
        and body["message"]
    ):
        problems.append(f"body {response.text[:120]!r}")
    return ", ".join(problems) or None


def iter_chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """`data` in pieces: a generator body makes `requests` send it chunked (no Content-Length)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]
