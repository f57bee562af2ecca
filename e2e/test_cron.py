"""Cron as it really runs (docs/operations.md "Cron"): the jobs installed with `manage.py crontab
add` (twice: no duplicate lines), then the installed `poll_invoices` line run exactly as cron
would: `env -i`, `/bin/sh`, another working directory. It must read the project's `.env`, poll,
write its run record and print one line.

The test works on a copy of the checkout (its own `.env` and SQLite database) and puts the
user's crontab back as it found it. It needs the `crontab` program (Debian package `cron`,
installed by `.ci/run`); without it the test is skipped, unless REQUIRE_CRON=1.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.harness import MIFACT_PASSWORD, MIFACT_USER, ROOT

CRONTAB = shutil.which("crontab")
PYTHON = ROOT / ".venv" / "bin" / "python"
MARK = "# django-cronjobs for crm"

pytestmark = pytest.mark.skipif(
    CRONTAB is None and os.environ.get("REQUIRE_CRON") != "1",
    reason="the crontab program is missing (Debian package cron); .ci/run installs it",
)


def run(
    args: list[str], *, cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return done


@pytest.fixture
def checkout(mifact) -> Iterator[Path]:
    """A copy of the project's tracked files with its own `.env` pointing at the stand-in."""
    folder = Path(tempfile.mkdtemp(prefix="crm-cron-"))
    files = run(["git", "ls-files", "-z"], cwd=ROOT).stdout.split("\0")
    for name in filter(None, files):
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    (folder / ".env").write_text(
        "\n".join(
            [
                "DEBUG=false",
                f"SECRET_KEY={secrets.token_urlsafe(40)}",
                "ALLOWED_HOSTS=127.0.0.1",
                f"DATABASE_URL=sqlite:///{folder / 'cron.sqlite3'}",
                f"MEDIA_ROOT={folder / 'media'}",
                f"URL_INVOICE_MIFACT_V3={mifact.base_url}",
                f"INVOICE_MIFACT_USERNAME={MIFACT_USER}",
                f"INVOICE_MIFACT_PASSWORD={MIFACT_PASSWORD}",
                "URL_SV=",
                "",
            ]
        )
    )
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def user_crontab() -> Iterator[None]:
    """Put the user's crontab back as it was."""
    assert CRONTAB is not None
    saved = subprocess.run([CRONTAB, "-l"], capture_output=True, text=True, timeout=30)
    try:
        yield
    finally:
        if saved.returncode == 0:
            subprocess.run([CRONTAB, "-"], input=saved.stdout, text=True, timeout=30, check=True)
        else:
            subprocess.run([CRONTAB, "-r"], capture_output=True, timeout=30)


def test_the_installed_poll_line_runs_as_cron_runs_it(checkout, user_crontab, mifact, new_id):
    plain = {"PATH": "/usr/bin:/bin", "HOME": str(checkout)}  # no ENV_FILE: the checkout's .env is read
    manage = [str(PYTHON), "manage.py"]
    run([*manage, "migrate", "--noinput", "-v", "0"], cwd=checkout, env=plain)
    service_order_id = new_id()
    run(
        [
            *manage,
            "shell",
            "-v",
            "0",
            "-c",
            "from opportunities.models import Opportunity; from billing.models import OpportunityServiceOrder; "
            "o = Opportunity.objects.create(name='Cron', stage='Cierre ganado', c_clinic_history='HC-CRON', "
            "c_facturacion_sub_estado='orden_servicio_pendiente_factura'); "
            f"OpportunityServiceOrder.objects.create(opportunity=o, service_order_id={service_order_id})",
        ],
        cwd=checkout,
        env=plain,
    )
    mifact.invoice(service_order_id, soles=True, dolares=False, head_id=service_order_id)

    for _ in range(2):
        run([*manage, "crontab", "add"], cwd=checkout, env=plain)
    installed = [line for line in run([CRONTAB, "-l"], cwd=checkout).stdout.splitlines() if MARK in line]
    # poll_invoices, sync_sv, send_events, attachments_check and idempotency_keys_prune, once each
    assert len(installed) == 5, installed
    assert all(line.startswith("*/5 * * * * ") for line in installed[:2])
    assert installed[2].startswith("* * * * * ")  # send_events, every minute
    assert installed[3].startswith("17 3 * * * ")  # attachments_check, daily
    assert installed[4].startswith("41 3 * * * ")  # idempotency_keys_prune, daily
    poll_line = installed[0]  # CRONJOBS order: poll_invoices first
    command = poll_line.split(" ", 5)[5].split(" #", 1)[0]

    done = subprocess.run(["env", "-i", "/bin/sh", "-c", command], cwd="/", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout, done.stderr)
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("poll_invoices: pending=1 checked=1 invoiced=1 errors=0 left=0")
    assert done.stderr == ""

    record = run(
        [
            *manage,
            "shell",
            "-v",
            "0",
            "-c",
            "from jobs.models import CommandRun; r = CommandRun.objects.get(command='poll_invoices'); "
            "print(r.outcome, r.counts['invoiced'], r.finished_at is not None)",
        ],
        cwd=checkout,
        env=plain,
    ).stdout.split()
    assert record == ["ok", "1", "True"]

    # The daily check, as cron runs it: the comprobante just attached is in place; one line.
    check_command = installed[3].split(" ", 5)[5].split(" #", 1)[0]  # attachments_check
    done = subprocess.run(
        ["env", "-i", "/bin/sh", "-c", check_command], cwd="/", capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stdout.startswith("attachments_check: checked=1 ok=1 repaired=0 unrepaired=0")
    assert len(done.stdout.splitlines()) == 1 and done.stderr == ""
