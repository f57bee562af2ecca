"""Concurrent PUTs on the embedded SQLite database answer 200, never 500 "database is locked".

Regression of schemathesis' second finding (two workers writing at once). Runs a real server on
a temporary SQLite file (the test database is in memory and cannot show file locking).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def sqlite_server(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "ENV_FILE": "",
        "DEBUG": "false",
        "SECRET_KEY": "sqlite-concurrency-test",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "SIGNIN_THROTTLE_RATE": "10000/min",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'crm.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "URL_INVOICE_MIFACT_V3": "",
        "URL_SV": "",
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DJANGO_SUPERUSER_PASSWORD": "clave-larga-123",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    subprocess.run(
        [*manage, "createsuperuser", "--noinput", "--username", "u", "--email", "u@example.com"],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if requests.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield base, tmp_path / "server.log"
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


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
