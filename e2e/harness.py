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
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import requests

from devtools.harness import MANAGE, ROOT, Workspace, free_port, hermetic_env, mifact_standin_argv
from devtools.sv_standin import SvStandin
from devtools.testing import LocalHTTPServer

PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
METRICS_TOKEN = "e2e-metrics-token"

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


class CommandResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


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

    def health_until(self, done: Callable[[requests.Response], bool], seconds: float = 12.0) -> requests.Response:
        """GET /health until `done(answer)` holds or `seconds` have passed (each gunicorn worker caches
        /health for a few seconds); the last answer."""
        deadline = time.monotonic() + seconds
        while not done(response := self.get("/health")) and time.monotonic() < deadline:
            time.sleep(0.5)
        return response

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

    def void(self, service_order_id: int) -> dict[str, Any]:
        """Void the O.S's comprobante at the stand-in (invoicing it again is the reissue)."""
        response = self.http.post(
            f"{self.base_url}/_standin/service-order/{service_order_id}/void", timeout=HTTP_TIMEOUT
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
        self.workspace = Workspace("crm-e2e-")
        self.workdir = self.workspace.dir
        self.media = self.workspace.media
        self._exit = ExitStack()
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
        self.mifact_port = free_port(self.api_port)
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.database_url = self.workspace.database_url(
            os.environ.get("E2E_DATABASE_URL", "").strip(), f"{self.database_prefix}_{os.getpid()}"
        )
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

        argv = mifact_standin_argv(
            self.mifact_port, MIFACT_USER, MIFACT_PASSWORD, "--log-requests", module=self.mifact_module
        )
        self.spawn("mifact_standin", argv)
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
        keep = os.environ.get("E2E_KEEP") == "1"
        try:
            self.workspace.close(keep=keep)
        finally:
            self._exit.close()
            if keep:
                print(f"\nE2E_KEEP=1: logs and media kept in {self.workdir}")

    # -- environment and subprocesses ----------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        return hermetic_env(
            {
                # Hermetic: the developer's .env is never read; every setting the suite relies
                # on is given here, the rest keep their production defaults.
                "DEBUG": "false",
                "SECRET_KEY": secrets.token_urlsafe(50),
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                # The suite is the client itself, on plain HTTP to gunicorn on loopback: there is
                # no TLS proxy to set X-Forwarded-Proto, so only the redirect to https is off
                # (every other production security setting keeps its default).
                "SECURE_SSL_REDIRECT": "false",
                "CONN_MAX_AGE": "600",
                "DATABASE_URL": self.database_url,
                **self.workspace.files_env,
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

    def env_with(self, **overrides: str) -> dict[str, str]:
        return {**self.env, **overrides}

    def manage(self, *args: str, env: dict[str, str] | None = None, timeout: float = COMMAND_TIMEOUT) -> CommandResult:
        """Run `.venv/bin/python manage.py <args>` to completion with the suite's environment."""
        done = self.workspace.manage_run(env or self.env, *args, timeout=timeout)
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
        self.workspace.spawn(name, argv, env or self.env)

    def restart_gunicorn(self, env: dict[str, str]) -> None:
        """Stop gunicorn (SIGTERM, as a deploy does) and serve again with `env`; returns once it answers."""
        self.workspace.stop("gunicorn", grace=15)
        self.spawn("gunicorn", self.gunicorn_argv(), env=env)
        self.wait_until_up("gunicorn", f"{self.base_url}/health/live")

    def gunicorn_worker_pids(self) -> list[int]:
        """Pids of gunicorn's current workers (the master's children, from /proc; Linux only)."""
        master = self.workspace.processes["gunicorn"][0].pid
        try:
            children = Path(f"/proc/{master}/task/{master}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in children.split()]

    def wait_until_up(self, name: str, url: str) -> None:
        self.workspace.wait_http(name, url, timeout=START_TIMEOUT)

    def log_path(self, name: str) -> Path:
        return self.workspace.log_path(name)

    def log_offset(self, name: str) -> int:
        return self.log_path(name).stat().st_size

    def workers_that_served(self, path: str, since: int) -> set[int]:
        """Pids of the gunicorn workers that logged a request for `path` after `since`."""
        with self.log_path("gunicorn").open("rb") as log:
            log.seek(since)
            text = log.read().decode("utf-8", "replace")
        return {int(pid) for pid in re.findall(rf'"[A-Z]+ {re.escape(path)} HTTP/[\d.]+" .*pid=<(\d+)>', text)}

    def log_tail(self, name: str, lines: int = 40, since: int = 0) -> str:
        return self.workspace.log_tail(name, lines, since)

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


StackT = TypeVar("StackT", bound=Stack)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # a CI timeout's SIGTERM: unwind, so the servers stop and the database goes


@contextmanager
def running(stack: StackT) -> Iterator[StackT]:
    """`stack` started, and stopped at the end even on SIGTERM (a session fixture's body)."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        signal.signal(signal.SIGTERM, previous)
