"""The jobs as cron runs them (`manage.py crontab run <hash>`): the command's own output and exit
status, never django-crontab's traceback and a 0 (docs/operations.md "Cron")."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from devtools import harness

ROOT = Path(__file__).resolve().parents[2]


def job_hash(command: str) -> str:
    """django-crontab's name for a job: the MD5 of the job as sorted JSON."""
    job = next(job for job in settings.CRONJOBS if job[2] == [command])
    return hashlib.md5(json.JSONEncoder(sort_keys=True).encode(job).encode()).hexdigest()


@pytest.fixture
def checkout_env(tmp_path):
    env = harness.checkout_env(tmp_path, {"TMPDIR": str(tmp_path)})
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, cwd=ROOT, check=True, timeout=300)
    return env


def cron_run(env, command):
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "crontab", "run", job_hash(command)],
        env=env,
        cwd=env["TMPDIR"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_job_that_fails_exits_with_its_status_and_one_spanish_line(checkout_env):
    code = (
        "from opportunities.models import Opportunity; from billing.models import OpportunityServiceOrder; "
        "o = Opportunity.objects.create(name='Cron', stage='Cierre ganado', c_clinic_history='HC-1', "
        "c_facturacion_sub_estado='orden_servicio_pendiente_factura'); "
        "OpportunityServiceOrder.objects.create(opportunity=o, service_order_id=4242)"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], env=checkout_env, cwd=ROOT, check=True, timeout=120
    )
    done = cron_run(checkout_env, "poll_invoices")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout.startswith("poll_invoices: pending=1 checked=0")
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "poll_invoices: URL_INVOICE_MIFACT_V3 no está configurada; queda 1 O.S para la próxima ejecución"
    ]


def test_a_good_run_exits_0_with_its_summary_line_only(checkout_env):
    done = cron_run(checkout_env, "attachments_check")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("attachments_check: checked=0") and done.stderr == ""


def test_the_idempotency_keys_are_pruned_by_a_cron_job(checkout_env):
    done = cron_run(checkout_env, "idempotency_keys_prune")
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "idempotency_keys_prune: deleted=0", "")
