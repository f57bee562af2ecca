"""`poll_invoices` when the database drops its connection mid-run (a failover): one Spanish line on
stderr, the summary line, exit 1, the run recorded failed, no claim left held, and the next run
checks everything (docs/operations.md "Monitoring", dropped database connections). The black-box
version with `pg_terminate_backend` is e2e/test_database_faults.py."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.db import InterfaceError

from billing.models import OpportunityServiceOrder
from billing.services import forced as poll  # where the poll run finds its check of one O.S
from jobs.models import CommandRun

pytestmark = pytest.mark.django_db(transaction=True)


def run_poll(*args: str) -> tuple[int | str | None, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    try:
        call_command("poll_invoices", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("workers", ["1", "3"])
def test_a_lost_connection_ends_the_run_in_one_line_and_the_next_run_checks_everything(
    workers: str, mifact: Any, make_opportunity: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    opportunity = make_opportunity(stage="Cierre ganado", c_clinic_history="HC")
    for so in range(100, 108):
        OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=so)
    real_check = poll.service_order_check
    calls = []

    def check_then_lose_the_database(**kwargs: Any) -> Any:
        calls.append(kwargs["service_order"].pk)
        if len(calls) == 3:
            raise InterfaceError("connection already closed")
        return real_check(**kwargs)

    monkeypatch.setattr(poll, "service_order_check", check_then_lose_the_database)
    code, out, err = run_poll("--workers", workers)

    assert code == 1
    assert out.count("\n") == 1 and out.startswith("poll_invoices: pending=8 ")
    assert "fatal='se perdió la conexión con la base de datos'" in out
    left = int(out.split("left=")[1].split()[0])
    assert 1 <= left <= 6, out  # the loss came on the third check: not every O.S was done
    orders = "queda 1 O.S" if left == 1 else f"quedan {left} O.S"
    reason = "se perdió la conexión con la base de datos"
    assert err == f"poll_invoices: {reason}; {orders} para la próxima ejecución\n"
    run = CommandRun.objects.get()
    assert (run.outcome, run.fatal) == ("failed", "se perdió la conexión con la base de datos")
    assert not OpportunityServiceOrder.objects.filter(claimed_until__isnull=False).exists()

    monkeypatch.setattr(poll, "service_order_check", real_check)
    code, out, err = run_poll("--workers", workers)
    assert (code, err) == (0, "")
    assert OpportunityServiceOrder.objects.filter(last_checked_at__isnull=True).count() == 0
