"""Concurrent PUTs on the embedded SQLite database answer 200, never 500 "database is locked".

Regression of schemathesis' second finding (two workers writing at once). Runs a real server on
a temporary SQLite file (the test database is in memory and cannot show file locking).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from devtools.harness import MANAGE, PYTHON, Workspace, checkout_env, free_port


@pytest.fixture
def sqlite_server() -> Iterator[tuple[str, Path]]:
    with Workspace("crm-sqlite-") as workspace:
        port = free_port()
        production = {"DEBUG": "false", "SECRET_KEY": "sqlite-concurrency-test", "ALLOWED_HOSTS": "127.0.0.1"}
        test_only = {"SECURE_SSL_REDIRECT": "false", "SIGNIN_THROTTLE_RATE": "10000/min"}
        env = checkout_env(workspace.dir, {**production, **test_only, "DJANGO_SUPERUSER_PASSWORD": "clave-larga-123"})
        workspace.manage(env, "migrate", "-v0")
        workspace.manage(env, "createsuperuser", "--noinput", "--username", "u", "--email", "u@example.com")
        workspace.spawn("runserver", [PYTHON, str(MANAGE), "runserver", "--noreload", f"127.0.0.1:{port}"], env)
        base = f"http://127.0.0.1:{port}"
        workspace.wait_http("runserver", f"{base}/health")
        yield base, workspace.log_path("runserver")


def test_concurrent_process_updates_on_sqlite_all_succeed(sqlite_server):
    base, log = sqlite_server
    token = requests.post(
        f"{base}/auth/signin", json={"username": "u", "password": "clave-larga-123"}, timeout=10
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    ids = [
        requests.post(f"{base}/opportunity", json={"name": f"Venta {i}"}, headers=headers, timeout=10).json()["id"]
        for i in range(3)
    ]

    def put(index: int) -> int:
        so = 456 + index % 3
        body = {
            "cClinicHistory": "HC-1",
            "cOrdenesServicio": [so],
            "cOrdenesServicioMetadata": {str(so): {"i": index}},
            "cDoctor": f"Dr. {index}",
            "reservationId": index + 1,
        }
        return requests.put(
            f"{base}/opportunity/update-opportunity-procces/{ids[index % 3]}", json=body, headers=headers, timeout=30
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = Counter(pool.map(put, range(60)))
    assert codes == {200: 60}, (codes, log.read_text()[-3000:])
