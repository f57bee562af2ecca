"""Errors back off (docs/operations.md "Polling schedule"): a 4xx about one O.S defers it with an
exponential, jittered, capped delay; a 429 or a 503 with Retry-After pauses the run's calls."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from billing import backoff
from billing.backoff import PauseGate, error_delay
from billing.mifact import MifactClient, MifactUnavailable
from billing.models import OpportunityServiceOrder
from billing.services.poll import service_orders_poll
from crm.outgoing import retry_after_seconds
from jobs.models import CommandRun

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


class FakeClock:
    """A monotonic clock that only moves when the gate sleeps (no test waits for real)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def clock(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.now += seconds


@pytest.fixture
def fake_clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(backoff, "_clock", clock.clock)
    monkeypatch.setattr(backoff, "_sleep", clock.sleep)
    return clock


@pytest.fixture
def pending(make_opportunity):
    def make(*ids):
        opportunity = make_opportunity(
            stage="Cierre ganado", c_clinic_history="HC", c_facturacion_sub_estado="orden_servicio_pendiente_factura"
        )
        return [OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=i) for i in ids]

    return make


def test_error_delay_doubles_with_jitter_and_a_cap():
    base, cap = 10 * MINUTE, 60 * MINUTE
    assert error_delay(streak=1, base=base, cap=cap, rng=lambda: 0.0) == 5 * MINUTE
    assert error_delay(streak=1, base=base, cap=cap, rng=lambda: 1.0) == 10 * MINUTE
    assert error_delay(streak=3, base=base, cap=cap, rng=lambda: 0.5) == 30 * MINUTE  # 40 min, 3/4 of it
    assert error_delay(streak=4, base=base, cap=cap, rng=lambda: 1.0) == cap
    assert error_delay(streak=500, base=base, cap=cap, rng=lambda: 0.0) == cap / 2


def test_retry_after_header_in_seconds_or_as_a_date():
    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC).timestamp()
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("Mon, 02 Mar 2026 09:01:30 GMT", now=now) == 90
    assert retry_after_seconds("Mon, 02 Mar 2026 08:00:00 GMT", now=now) == 0
    assert retry_after_seconds("pronto") is None
    assert retry_after_seconds(None) is None


def test_a_404_defers_the_order_longer_each_time_and_an_answer_resets_it(pending, mifact, settings):
    settings.POLL_ERROR_BACKOFF_MINUTES, settings.POLL_ERROR_BACKOFF_MAX_MINUTES = 10, 1440
    with time_machine.travel(T0, tick=False) as traveller:
        (row,) = pending(456)
        mifact.unknown.add(456)
        summary = service_orders_poll(workers=1)
        assert (summary.errors, summary.deferred) == (1, 1)
        row.refresh_from_db()
        assert row.error_streak == 1 and row.last_error_kind == "unknown_order"
        assert T0 + 5 * MINUTE <= row.retry_not_before <= T0 + 10 * MINUTE
        first_wait = row.retry_not_before
        # The next runs leave it alone until its backoff ends.
        traveller.move_to(T0 + 5 * MINUTE - dt.timedelta(seconds=1))
        assert service_orders_poll(workers=1).pending == 0
        traveller.move_to(first_wait)
        assert service_orders_poll(workers=1).deferred == 1
        row.refresh_from_db()
        assert row.error_streak == 2
        assert first_wait + 10 * MINUTE <= row.retry_not_before <= first_wait + 20 * MINUTE
        assert mifact.status_calls == [456, 456]
        # invoice-mifact knows it now: one answer ends the backoff.
        mifact.unknown.clear()
        traveller.move_to(row.retry_not_before)
        summary = service_orders_poll(workers=1)
        assert (summary.checked, summary.errors, summary.deferred) == (1, 0, 0)
        row.refresh_from_db()
        assert (row.error_streak, row.retry_not_before, row.last_error) == (0, None, "")


def test_another_4xx_defers_too_but_a_check_a_person_asks_for_asks_anyway(pending, mifact):
    with time_machine.travel(T0, tick=False):
        (row,) = pending(457)
        mifact.script(457, 400)
        assert service_orders_poll(workers=1).deferred == 1
        row.refresh_from_db()
        assert row.error_streak == 1 and row.retry_not_before > T0
        assert service_orders_poll(workers=1).pending == 0  # deferred for the cron
        call_command("poll_invoices", "--opportunity", row.opportunity_id, stdout=_Sink())
        assert mifact.status_calls == [457, 457]
        row.refresh_from_db()
        assert (row.error_streak, row.retry_not_before) == (0, None)


def test_a_429_with_retry_after_pauses_the_run_and_the_summary_counts_it(pending, mifact, fake_clock):
    rows = pending(501, 502, 503)
    mifact.script(501, 429, {"Retry-After": "30"})
    summary = service_orders_poll(workers=1)
    assert fake_clock.sleeps == [30]
    assert (summary.pauses, summary.paused_seconds) == (1, 30)
    # The other O.S are asked after the pause; the one that got the 429 waits for the next run.
    assert mifact.status_calls == [501, 502, 503]
    assert (summary.checked, summary.errors, summary.left) == (2, 1, 1)
    first = OpportunityServiceOrder.objects.get(pk=rows[0].pk)
    assert first.error_streak == 0 and first.retry_not_before is None and "429" in first.last_error
    assert "pauses=1 paused_seconds=30" in summary.line


def test_a_503_with_retry_after_pauses_at_most_the_cap(pending, mifact, fake_clock, settings):
    settings.POLL_RETRY_AFTER_MAX_SECONDS = 120
    pending(601, 602)
    mifact.script(601, 503, {"Retry-After": "3600"})
    summary = service_orders_poll(workers=1)
    assert fake_clock.sleeps == [120]
    assert (summary.pauses, summary.paused_seconds, summary.checked) == (1, 120, 1)


def test_a_429_without_retry_after_pauses_for_the_cap(pending, mifact, fake_clock, settings):
    settings.POLL_RETRY_AFTER_MAX_SECONDS = 45
    pending(611, 612)
    mifact.script(611, 429)
    summary = service_orders_poll(workers=1)
    assert fake_clock.sleeps == [45] and summary.checked == 1


def test_a_run_that_paused_its_budget_stops_and_leaves_the_rest(pending, mifact, fake_clock, settings):
    settings.POLL_RETRY_AFTER_MAX_SECONDS, settings.POLL_PAUSE_BUDGET_SECONDS = 120, 240
    ids = list(range(700, 706))
    pending(*ids)
    for so in ids:
        mifact.script(so, 429, {"Retry-After": "100"})
    summary = service_orders_poll(workers=1)
    # 100 + 100 + 100 >= 240: the third refusal ends the run; the other three are not asked.
    assert mifact.status_calls == ids[:3]
    assert fake_clock.sleeps == [100, 100]
    assert (summary.pauses, summary.paused_seconds, summary.left) == (3, 300, 6)
    assert OpportunityServiceOrder.objects.filter(claimed_until__isnull=False).count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="pooled workers need PostgreSQL; run with DATABASE_URL")
def test_pooled_workers_share_the_pause(pending, mifact, fake_clock):
    ids = list(range(800, 820))
    pending(*ids)
    mifact.script(800, 429, {"Retry-After": "20"})
    summary = service_orders_poll(workers=4)
    assert sorted(mifact.status_calls) == ids
    assert summary.pauses == 1 and summary.paused_seconds == 20
    assert (summary.checked, summary.left) == (19, 1)


def test_the_command_records_the_counts_in_spanish(pending, mifact, fake_clock):
    from jobs.admin import counts_text

    pending(901, 902)
    mifact.unknown.add(901)
    mifact.script(902, 429, {"Retry-After": "7"})
    call_command("poll_invoices", "--workers", "1", stdout=_Sink(), stderr=_Sink())
    run = CommandRun.objects.get(command="poll_invoices")
    assert run.counts["deferred"] == 1 and run.counts["pauses"] == 1 and run.counts["paused_seconds"] == 7
    assert "aplazadas 1, pausas 1, segundos en pausa 7" in counts_text(run.counts)


def test_the_pause_gate_counts_overlapping_pauses_once():
    clock = FakeClock()
    gate = PauseGate(cap=60, budget=1000, clock=clock.clock, sleep=clock.sleep)
    gate.pause(10)
    gate.pause(5)  # inside the running pause: nothing changes
    gate.pause(15)  # extends it by 5 s
    assert (gate.pauses, gate.seconds) == (1, 15)
    gate.wait()
    assert clock.sleeps == [15]
    gate.pause(None)  # the cap
    assert (gate.pauses, gate.seconds) == (2, 75)


def test_a_retry_after_answer_is_not_retried_by_the_client(http_server):
    """urllib3 would sleep for the whole Retry-After (an hour here) before its retry; the client
    hands the answer back at once, and still retries a 503 without it."""
    http_server.route("/api/service-order/5/invoice-status", status=503, headers={"Retry-After": "3600"})
    http_server.route("/api/service-order/6/invoice-status", status=503)
    client = MifactClient(base_url=http_server.url("/api"), username="u", password="p", timeout=5, retries=2)
    client.use_token("t")
    with pytest.raises(MifactUnavailable) as caught:
        client.get_invoice_status(5)
    assert caught.value.retry_after == 3600
    with pytest.raises(MifactUnavailable) as caught:
        client.get_invoice_status(6)
    assert caught.value.retry_after is None
    client.close()
    calls = http_server.requests
    assert calls.count("/api/service-order/5/invoice-status") == 1
    assert calls.count("/api/service-order/6/invoice-status") == 3


class _Sink:
    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass
