"""CPU time per API request, in one process, for comparing two commits on a busy machine (prints
figures; not a test; docs/development.md "Benchmarks").

Wall-clock figures of bench/api.py move with whatever else the machine runs; the CPU time the
request itself costs moves much less. This runs the project of `--checkout` (default: this one)
in-process with Django's test client and production settings (DEBUG off, every middleware, a
throw-away SQLite file database, `X-Forwarded-Proto: https`), signs in, creates 20 opportunities,
and times the process CPU of N requests of each kind: `GET /health`, `GET /opportunity/<id>` and the
process PUT with main and appointment data (a new `cDoctor` each time, so each PUT writes).
Prints one JSON line of milliseconds per request. Compare two commits by alternating runs:

    for i in 1 2 3 4; do
        (cd ../old && ../main/.venv/bin/python ../main/bench/request_cpu.py)
        .venv/bin/python bench/request_cpu.py
    done
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

BODY = {
    "cLastNameFather": "Quispe",
    "cCustomerDocumentType": "DNI",
    "cCustomerDocument": "45678912",
    "cPatientsname": "Lucía",
    "cPatientsPaternalLastName": "Quispe",
    "cPatientsMaternalLastName": "Mamani",
    "cPatientDocument": "71234567",
    "cPatientDocumentType": "DNI",
    "cAppointment": "15:30 - 16:00",
    "cDateReservation": "2026-03-02",
    "cEnvironment": "Consultorio 3",
    "cSpecialty": "Dermatología",
    "cTariff": "Particular",
    "reservationId": 98765,
}
PASSWORD = "clave-bench-2026"
KINDS = ("health", "get", "put")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, default=Path.cwd(), help="the project to measure (default: .)")
    parser.add_argument("--requests", type=int, default=600, help="requests of each kind (600)")
    parser.add_argument("--without", default="", help="leave out the middleware whose path contains this text")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="crm-request-cpu-")
    os.chdir(args.checkout)
    sys.path.insert(0, str(args.checkout.resolve()))
    os.environ.update(
        {
            "ENV_FILE": "",
            "DEBUG": "false",
            "SECRET_KEY": "bench-" + "x" * 60,
            "ALLOWED_HOSTS": "testserver",
            "DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3",
            "MEDIA_ROOT": folder,
            "USE_X_FORWARDED_PROTO": "true",
            "URL_INVOICE_MIFACT_V3": "",
            "URL_SV": "",
            "DJANGO_SETTINGS_MODULE": "crm.settings",
        }
    )
    import logging
    import warnings

    import django

    django.setup()
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    if args.without:
        settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if args.without not in name]
    call_command("migrate", verbosity=0)
    get_user_model().objects.create_superuser("bench", "bench@example.com", PASSWORD)
    client = Client(HTTP_X_FORWARDED_PROTO="https")

    def call(method: str, path: str, body: object = None, **headers: str) -> dict:
        data = json.dumps(body) if body is not None else None
        response = getattr(client, method)(path, data, content_type="application/json", secure=True, **headers)
        if response.status_code >= 300:
            sys.exit(f"{method.upper()} {path} answered {response.status_code}: {response.content[:300]!r}")
        return response.json() if response.content else {}

    token = call("post", "/auth/signin", {"username": "bench", "password": PASSWORD})["access_token"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    ids = [call("post", "/opportunity", {"name": f"Consulta {n}"}, **auth)["id"] for n in range(20)]

    def run(kind: str, count: int) -> float:
        started = time.process_time()
        for n in range(count):
            opportunity = ids[n % len(ids)]
            if kind == "health":
                client.get("/health", secure=True)
            elif kind == "get":
                call("get", f"/opportunity/{opportunity}", **auth)
            else:
                body = {**BODY, "cDoctor": f"Dr. {n}-{time.monotonic_ns()}"}
                call("put", f"/opportunity/update-opportunity-procces/{opportunity}", body, **auth)
        return (time.process_time() - started) / count * 1000

    for kind in KINDS:
        run(kind, 50)  # warm-up
    print(json.dumps({f"{kind}_cpu_ms": round(run(kind, args.requests), 3) for kind in KINDS}))


if __name__ == "__main__":
    main()
