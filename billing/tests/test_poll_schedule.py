"""The polling schedule by age (docs/operations.md "Polling schedule"): one O.S walked through
every step with frozen time, the pure rule, and the command."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from billing.models import OpportunityServiceOrder
from billing.schedule import PollSteps, next_check_at, stopped_q
from billing.selectors import service_orders_pending
from billing.services.checks import opportunity_check_service_orders
from billing.services.poll import service_orders_poll

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
STEPS = PollSteps(7, 30, 90)


def _pending(make_opportunity, service_order_id=456):
    opportunity = make_opportunity(
        stage="Cierre ganado", c_clinic_history="HC", c_facturacion_sub_estado="orden_servicio_pendiente_factura"
    )
    return OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=service_order_id)


def _asked(mifact, traveller, moment) -> bool:
    """Move to `moment`, run the poll; True when it asked invoice-mifact about the O.S."""
    traveller.move_to(moment)
    before = len(mifact.status_calls)
    service_orders_poll(workers=1)
    return len(mifact.status_calls) > before


def test_one_service_order_through_every_step_of_the_schedule(
    make_opportunity, mifact, user, django_capture_on_commit_callbacks
):
    days = dt.timedelta

    def minutes(n: int) -> dt.timedelta:
        return dt.timedelta(minutes=n)

    with time_machine.travel(T0, tick=False) as traveller:
        row = _pending(make_opportunity)
        # Younger than 7 days: every run (every 5 minutes).
        assert _asked(mifact, traveller, T0 + minutes(5))
        assert _asked(mifact, traveller, T0 + minutes(10))
        assert _asked(mifact, traveller, T0 + days(6, hours=23, minutes=55))
        # 7 to 30 days: at most hourly (an hour after its last check, at 6 d 23 h 55 min).
        assert not _asked(mifact, traveller, T0 + days(7, minutes=5))
        assert not _asked(mifact, traveller, T0 + days(7, minutes=50))
        assert _asked(mifact, traveller, T0 + days(7, minutes=55))
        assert not _asked(mifact, traveller, T0 + days(7, minutes=60))
        assert not _asked(mifact, traveller, T0 + days(7, minutes=110))
        assert _asked(mifact, traveller, T0 + days(7, minutes=115))
        # 30 to 90 days: at most daily.
        assert _asked(mifact, traveller, T0 + days(30, minutes=5))
        assert not _asked(mifact, traveller, T0 + days(30, hours=2))
        assert not _asked(mifact, traveller, T0 + days(30, hours=23))
        assert _asked(mifact, traveller, T0 + days(31, minutes=5))
        # 90 days and more: stopped, whatever the runs.
        assert not _asked(mifact, traveller, T0 + days(90, minutes=5))
        assert not _asked(mifact, traveller, T0 + days(120))
        row.refresh_from_db()
        now = T0 + days(120)
        assert service_orders_pending().filter(stopped_q(now=now, steps=STEPS)).get() == row
        # A PUT asks about all its O.S whatever their age (the source document's "en cada llamada").
        before = len(mifact.status_calls)
        client = APIClient()  # a token issued at the frozen time
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
        url = f"/opportunity/update-opportunity-procces/{row.opportunity_id}"
        with django_capture_on_commit_callbacks(execute=True):
            assert client.put(url, {"cPatientsname": "Lucía"}, format="json").status_code == 200
        assert mifact.status_calls[before:] == [456]
        # So does a check a person asks for (`poll_invoices --opportunity ID`).
        call_command("poll_invoices", "--opportunity", row.opportunity_id, stdout=_Sink())
        assert mifact.status_calls[before:] == [456, 456]
        # Neither restarts the schedule: the cron still leaves it alone.
        assert not _asked(mifact, traveller, T0 + days(120, minutes=5))
        # Resumed by staff: the age counts from then, every run again.
        resumed = T0 + days(121)
        OpportunityServiceOrder.objects.filter(pk=row.pk).update(checks_resumed_at=resumed)
        assert not service_orders_pending().filter(stopped_q(now=resumed, steps=STEPS)).exists()
        assert _asked(mifact, traveller, resumed + minutes(5))
        assert _asked(mifact, traveller, resumed + minutes(10))
        assert _asked(mifact, traveller, resumed + days(8))
        assert not _asked(mifact, traveller, resumed + days(8, minutes=5))
        assert not _asked(mifact, traveller, resumed + days(90, minutes=5))


def test_the_inline_check_of_a_put_ignores_the_schedule(make_opportunity, mifact):
    with time_machine.travel(T0, tick=False) as traveller:
        row = _pending(make_opportunity)
        traveller.move_to(T0 + dt.timedelta(days=200))
        outcomes = opportunity_check_service_orders(opportunity_id=row.opportunity_id)
        assert [o.service_order_id for o in outcomes] == [456]


class _Sink:
    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


@pytest.mark.parametrize(
    ("age", "last_checked", "expected"),
    [
        # every run: due now
        (dt.timedelta(days=1), dt.timedelta(minutes=1), dt.timedelta(0)),
        # never checked, hourly band: due now
        (dt.timedelta(days=10), None, dt.timedelta(0)),
        # hourly band, checked 20 minutes ago: 40 minutes from now
        (dt.timedelta(days=10), dt.timedelta(minutes=20), dt.timedelta(minutes=40)),
        # daily band, checked 2 hours ago: 22 hours from now
        (dt.timedelta(days=40), dt.timedelta(hours=2), dt.timedelta(hours=22)),
        # the every-run band ends in 1 hour: checked 1 minute ago is still "now"
        (dt.timedelta(days=7) - dt.timedelta(hours=1), dt.timedelta(minutes=1), dt.timedelta(0)),
        # daily band ending in 2 hours, checked 1 hour ago: stopped before it is due again
        (dt.timedelta(days=90) - dt.timedelta(hours=2), dt.timedelta(hours=1), None),
        # stopped
        (dt.timedelta(days=90), None, None),
    ],
)
def test_next_check_at(age, last_checked, expected):
    now = T0 + dt.timedelta(days=365)
    found = next_check_at(
        created_at=now - age,
        last_checked_at=None if last_checked is None else now - last_checked,
        resumed_at=None,
        now=now,
        steps=STEPS,
    )
    assert found == (None if expected is None else now + expected)


def test_next_check_at_counts_from_the_resumption_and_waits_for_a_backoff():
    now = T0 + dt.timedelta(days=365)
    created = now - dt.timedelta(days=200)
    assert next_check_at(created_at=created, last_checked_at=None, resumed_at=None, now=now, steps=STEPS) is None
    resumed = now - dt.timedelta(days=8)
    found = next_check_at(
        created_at=created, last_checked_at=now - dt.timedelta(minutes=30), resumed_at=resumed, now=now, steps=STEPS
    )
    assert found == now + dt.timedelta(minutes=30)
    backoff = now + dt.timedelta(hours=3)
    found = next_check_at(
        created_at=now - dt.timedelta(days=1),
        last_checked_at=now,
        resumed_at=None,
        now=now,
        steps=STEPS,
        retry_not_before=backoff,
    )
    assert found == backoff


def test_steps_from_settings_shape_the_bands(settings):
    settings.POLL_EVERY_RUN_DAYS, settings.POLL_HOURLY_UNTIL_DAYS, settings.POLL_DAILY_UNTIL_DAYS = 2, 2, 10
    steps = PollSteps.from_settings()
    assert [(b.until.days, b.interval) for b in steps.bands] == [(2, dt.timedelta(0)), (10, dt.timedelta(days=1))]
    assert steps.stops_after == dt.timedelta(days=10)


def test_poll_invoices_asks_a_young_order_and_not_an_old_one(make_opportunity, mifact):
    with time_machine.travel(T0, tick=False) as traveller:
        old = _pending(make_opportunity, 700)
        traveller.move_to(T0 + dt.timedelta(days=95))
        young = _pending(make_opportunity, 701)
        traveller.move_to(T0 + dt.timedelta(days=95, minutes=5))
        out = _Lines()
        call_command("poll_invoices", "--workers", "1", stdout=out)
        assert mifact.status_calls == [701]
        assert out.text.startswith("poll_invoices: pending=1 checked=1 ")
        old.refresh_from_db()
        young.refresh_from_db()
        assert old.last_checked_at is None and young.last_checked_at == T0 + dt.timedelta(days=95, minutes=5)


class _Lines(_Sink):
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text
