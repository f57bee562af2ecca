"""`sync_sv` when the database drops its connection mid-run: one Spanish line on stderr, the
summary line, exit 1, the run recorded failed and the batch's claims freed for the next run
(docs/operations.md "Monitoring", dropped connections and killed runs)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.db import InterfaceError
from django.utils import timezone

from jobs import outbox
from jobs.models import CommandRun
from opportunities.models import SvDelivery

pytestmark = pytest.mark.django_db(transaction=True)


def run_sync() -> tuple[int | str | None, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    try:
        call_command("sync_sv", stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_a_lost_connection_ends_the_run_in_one_line_and_frees_the_batch(
    make_opportunity: Any, sv: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    due = timezone.now() - dt.timedelta(seconds=1)
    rows = [
        SvDelivery.objects.create(
            opportunity=make_opportunity(), reservation_id=100 + n, clinic_history=f"HC-{n}", next_attempt_at=due
        )
        for n in range(3)
    ]
    real_attempt = outbox.outbox_attempt
    calls = []

    def attempt_then_lose_the_database(channel: Any, **kwargs: Any) -> outbox.OutboxAttempt:
        calls.append(kwargs["pk"])
        if len(calls) == 2:
            raise InterfaceError("connection already closed")
        return real_attempt(channel, **kwargs)

    monkeypatch.setattr(outbox, "outbox_attempt", attempt_then_lose_the_database)
    code, out, err = run_sync()

    assert code == 1
    assert out.strip().startswith("sync_sv: due=3 delivered=1 ") and out.count("\n") == 1, out
    assert err == (
        "sync_sv: se perdió la conexión con la base de datos; los envíos pendientes quedan para la próxima ejecución\n"
    )
    run = CommandRun.objects.get()
    assert (run.outcome, run.fatal) == ("failed", "se perdió la conexión con la base de datos")
    statuses = {d.pk: (d.status, d.claimed_until) for d in SvDelivery.objects.all()}
    assert statuses == {rows[0].pk: ("delivered", None), rows[1].pk: ("pending", None), rows[2].pk: ("pending", None)}

    monkeypatch.setattr(outbox, "outbox_attempt", real_attempt)
    code, out, err = run_sync()
    assert (code, err) == (0, "")
    assert set(SvDelivery.objects.values_list("status", flat=True)) == {"delivered"}
