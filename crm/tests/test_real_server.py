"""The API behind a real gunicorn (as `make serve` runs it), over real HTTP with `requests`.

What the Django test client cannot show: bodies sent chunked, bodies of tens of MiB, and the
memory the server uses for them. The server runs `crm.wsgi` with one sync worker on a temporary
SQLite file (the test database lives in memory and is not shared with another process).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from devtools.harness import PYTHON, Workspace, free_port

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
PASSWORD = "clave-larga-123"


@dataclass
class Server:
    base: str
    log: Path
    database: Path
    process: subprocess.Popen
    headers: dict[str, str]
    opportunity_id: str

    def worker_pid(self) -> int:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])

    def worker_peak_rss_kib(self) -> int:
        status = Path(f"/proc/{self.worker_pid()}/status").read_text()
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        assert match, status
        return int(match.group(1))

    def rows(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.database) as connection:
            return connection.execute(sql).fetchall()

    def snapshot(self) -> tuple[list[tuple], ...]:
        """Every opportunity row and what hangs from it, to show that a request changed nothing."""
        return tuple(
            self.rows(f"SELECT * FROM {table} ORDER BY 1")
            for table in (
                "opportunity",
                "opportunity_meeting",
                "opportunity_action_history",
                "opportunity_service_order",
            )
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with Workspace("crm-gunicorn-") as workspace:
        database = workspace.dir / "crm.sqlite3"
        port = free_port()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "crm.settings_test",
            "DATABASE_URL": f"sqlite:///{database}",
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
            "PYTHONUNBUFFERED": "1",
        }
        workspace.manage(env, "migrate", "-v0")
        workspace.manage(env, "createsuperuser", "--noinput", "--username", "u", "--email", "u@example.com")
        gunicorn = [PYTHON, "-m", "gunicorn", "crm.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
        process = workspace.spawn("gunicorn", [*gunicorn, "--timeout", "60"], env)
        base = f"http://127.0.0.1:{port}"
        workspace.wait_http("gunicorn", f"{base}/health")
        token = requests.post(f"{base}/auth/signin", json={"username": "u", "password": PASSWORD}, timeout=10).json()[
            "access_token"
        ]
        headers = {"Authorization": f"Bearer {token}"}
        created = requests.post(
            f"{base}/opportunity", json={"name": "Venta", "cDoctor": "Dra. Paredes"}, headers=headers, timeout=10
        )
        assert created.status_code == 201, created.text
        yield Server(base, workspace.log_path("gunicorn"), database, process, headers, created.json()["id"])


def json_object_of(size: int, field: str) -> bytes:
    """A valid JSON object of `size` bytes: one long string value."""
    head = b'{"%s": "' % field.encode()
    return head + b"a" * (size - len(head) - 2) + b'"}'


def chunked(body: bytes, piece: int = 64 * 1024) -> Iterator[bytes]:
    """`requests` sends a generator with `Transfer-Encoding: chunked` and no Content-Length."""
    for start in range(0, len(body), piece):
        yield body[start : start + piece]


SIZES = {"1.5MiB": int(1.5 * MIB), "3MiB": 3 * MIB, "30MiB": 30 * MIB}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_a_body_over_the_limit_is_a_json_413_logged_as_a_warning_that_changes_nothing(server, transfer, size):
    before_log = len(server.log_text())
    before_rows = server.snapshot()
    requests_made = [
        ("POST", "/auth/signin", "username", {}),
        ("POST", "/opportunity", "name", server.headers),
        ("PUT", f"/opportunity/update-opportunity-procces/{server.opportunity_id}", "cDoctor", server.headers),
    ]
    for method, path, field, headers in requests_made:
        body = json_object_of(SIZES[size], field)
        data = chunked(body) if transfer == "chunked" else body
        response = requests.request(
            method, server.base + path, data=data, timeout=60, headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 413, (path, response.status_code, response.text[:300])
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["statusCode"] == 413
        assert response.json()["message"].startswith("El cuerpo de la solicitud es demasiado grande")

    detail = requests.get(f"{server.base}/opportunity/{server.opportunity_id}", headers=server.headers, timeout=10)
    assert detail.json()["cDoctor"] == "Dra. Paredes"
    assert server.snapshot() == before_rows
    log = server.log_text()[before_log:]
    warnings = [
        line for line in log.splitlines() if "WARNING django.request" in line and "Request Entity Too Large" in line
    ]
    assert len(warnings) == 3, log[-3000:]
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]


def test_a_chunked_body_within_the_limit_is_applied(server):
    body = b'{"cDoctor": "Dr. Chunked", "cDateReservation": "2026-03-02", "reservationId": 77}'
    response = requests.put(
        f"{server.base}/opportunity/update-opportunity-procces/{server.opportunity_id}",
        data=chunked(body, piece=7),
        timeout=10,
        headers={**server.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["opportunity"]["cDoctor"] == "Dr. Chunked"
    requests.put(
        f"{server.base}/opportunity/update-opportunity-procces/{server.opportunity_id}",
        json={"cDoctor": "Dra. Paredes", "reservationId": 77},
        headers=server.headers,
        timeout=10,
    )


def test_a_30_mib_body_does_not_grow_the_worker_by_30_mib(server):
    requests.post(
        f"{server.base}/auth/signin",
        data=json_object_of(MIB - 100, "username"),
        timeout=30,
        headers={"Content-Type": "application/json"},
    )  # warm up at the limit
    peak_before = server.worker_peak_rss_kib()
    for data in (json_object_of(30 * MIB, "username"), chunked(json_object_of(30 * MIB, "username"))):
        response = requests.post(
            f"{server.base}/auth/signin", data=data, timeout=60, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
    growth_mib = (server.worker_peak_rss_kib() - peak_before) / 1024
    assert growth_mib < 8, f"worker peak memory grew by {growth_mib:.1f} MiB"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "path",
    [
        "/opportunity/update-opportunity-process/1",
        "/opportunity/update-opportunity-procces/0123456789abcdef0%2Fx",
        "/nope",
    ],
)
def test_an_unknown_path_is_a_json_404_for_every_method_with_or_without_a_token(server, method, path):
    no_token: dict[str, str] = {}
    for headers in (no_token, server.headers):
        response = requests.request(method, server.base + path, json={"cDoctor": "x"}, headers=headers, timeout=10)
        assert response.status_code == 404, (method, path, response.status_code, response.text[:200])
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["message"] == "Ruta no encontrada"
