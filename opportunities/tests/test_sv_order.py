"""SV ends with the newest clinic history: one reservation's deliveries are never in flight at
once (docs/api.md "SV sync"), also with `sync_sv` and a PUT delivering at the same time."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

from devtools.sv_standin import SvStandin
from devtools.testing import at_once
from jobs.claims import claim_one_per_key
from opportunities.models import SvDelivery
from opportunities.sv import SvClient
from opportunities.sv_outbox import (
    SvAttemptResult,
    sv_deliveries_sync,
    sv_delivery_attempt,
    sv_delivery_attempt_inline,
)

pytestmark = pytest.mark.django_db

on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent deliverers: PostgreSQL")


def make_row(opportunity, *, reservation_id=501, clinic_history="HC-A", **fields):
    fields.setdefault("next_attempt_at", timezone.now() - dt.timedelta(seconds=1))
    return SvDelivery.objects.create(
        opportunity=opportunity, reservation_id=reservation_id, clinic_history=clinic_history, **fields
    )


def in_flight(**fields):
    return {"claimed_until": timezone.now() + dt.timedelta(minutes=1), **fields}


def test_a_delivery_waits_while_another_of_its_reservation_is_in_flight(make_opportunity, sv):
    older = make_row(make_opportunity(), clinic_history="HC-A", **in_flight(status="superseded"))
    newer = make_row(make_opportunity(), clinic_history="HC-B")
    other = make_row(make_opportunity(), reservation_id=777, clinic_history="HC-C")

    assert sv_delivery_attempt_inline(delivery_pk=newer.pk) is SvAttemptResult.SKIPPED
    summary = sv_deliveries_sync()
    assert (summary.delivered, sv.patches) == (1, [(777, "HC-C")]), "only the other reservation went"
    newer.refresh_from_db()
    assert (newer.status, newer.attempts) == ("pending", 0)

    # The older delivery ends (its deliverer clears the claim): the newer one goes.
    SvDelivery.objects.filter(pk=older.pk).update(claimed_until=None)
    assert sv_deliveries_sync().delivered == 1
    assert sv.patches == [(777, "HC-C"), (501, "HC-B")]
    assert other.pk != newer.pk


def test_an_expired_claim_does_not_hold_the_reservation(make_opportunity, sv):
    make_row(make_opportunity(), claimed_until=timezone.now() - dt.timedelta(seconds=1), status="superseded")
    newer = make_row(make_opportunity(), clinic_history="HC-B")
    assert sv_delivery_attempt_inline(delivery_pk=newer.pk) is SvAttemptResult.DELIVERED
    assert sv.patches == [(501, "HC-B")]


@pytest.mark.parametrize("sv_answers", ["ok", "down", "rejects"])
def test_a_delivery_superseded_while_in_flight_stays_superseded(make_opportunity, sv, sv_answers, settings):
    """Regression: its outcome overwrote `superseded`; a failure made it pending again, so the
    older value was sent once more after the newer one."""
    settings.SV_SYNC_MAX_ATTEMPTS = 1 if sv_answers == "rejects" else 20
    sv.down = sv_answers == "down"
    sv.reject_status = 404 if sv_answers == "rejects" else None
    row = make_row(make_opportunity(), **in_flight())
    # A newer value supersedes the row while its PATCH is on its way.
    client = SvClient.from_settings()
    SvDelivery.objects.filter(pk=row.pk).update(status="superseded")
    sv_delivery_attempt(delivery_pk=row.pk, client=client, claimed=True)
    client.close()
    row.refresh_from_db()
    assert (row.status, row.claimed_until, row.attempts) == ("superseded", None, 1)
    assert (row.delivered_at is not None) is (sv_answers == "ok")


def test_the_put_that_held_the_reservation_sends_the_value_written_meanwhile(make_opportunity, sv):
    opportunity = make_opportunity()
    first = make_row(opportunity, clinic_history="HC-A")
    # Written while `first` was in flight: its own attempt was skipped, and it was never tried.
    waiting = make_row(opportunity, clinic_history="HC-B")
    assert sv_delivery_attempt_inline(delivery_pk=first.pk) is SvAttemptResult.DELIVERED
    assert sv.patches == [(501, "HC-A"), (501, "HC-B")]
    assert set(SvDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert waiting.pk


# -- concurrent deliverers on PostgreSQL -----------------------------------------------------------


@pytest.fixture
def sv_standin(settings):
    standin = SvStandin(username="sv-user", password="sv-clave").start()
    settings.URL_SV = standin.base_url
    settings.SV_USERNAME, settings.SV_PASSWORD = "sv-user", "sv-clave"
    yield standin
    standin.stop()


def wait_for_arrival(standin, reservation_id, values, timeout=30.0):
    deadline = time.monotonic() + timeout
    while standin.arrived(reservation_id) != values:
        assert time.monotonic() < deadline, standin.arrived(reservation_id)
        time.sleep(0.01)


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_sv_ends_with_the_newest_when_sync_sv_and_a_put_deliver_at_once(make_opportunity, put_process, sv_standin):
    """Regression: the PUT's own attempt sent HC-B while sync_sv's slow PATCH of HC-A was still
    being applied, so SV ended with HC-A and both rows were marked delivered."""
    opportunity = make_opportunity(reservation_id=501, c_clinic_history="HC-A")
    make_row(opportunity, clinic_history="HC-A", attempts=1)  # waiting since SV failed its PUT
    SvDelivery.objects.update(last_error="SV no responde")
    sv_standin.slow_patches(1.0)
    errors = []

    def run_sync():
        try:
            call_command("sync_sv", stdout=io.StringIO())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    sync = threading.Thread(target=run_sync)
    sync.start()
    try:
        wait_for_arrival(sv_standin, 501, ["HC-A"])
        assert put_process(opportunity.pk, {"cClinicHistory": "HC-B"}).status_code == 200
    finally:
        sync.join(60)
    assert not sync.is_alive() and errors == []

    assert sv_standin.clinic_history(501) == "HC-B"
    assert sv_standin.arrived(501) == ["HC-A", "HC-B"]
    statuses = dict(SvDelivery.objects.values_list("clinic_history", "status"))
    assert statuses == {"HC-A": "superseded", "HC-B": "delivered"}


def claim_at_once(claimers: int) -> list[int]:
    """`claimers` threads claim due deliveries at the same moment; the pks they got."""

    def claim(_: int) -> list[int]:
        now = timezone.now()
        return claim_one_per_key(
            SvDelivery.objects.filter(status="pending").order_by("id"),
            key="reservation_id",
            lock_namespace=1,
            limit=10,
            now=now,
            until=now + dt.timedelta(minutes=1),
        )

    claimed: list[int] = []
    for result in at_once(claimers, claim, each_done=connections.close_all):
        assert not isinstance(result, BaseException), result
        claimed += result
    return claimed


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_never_take_two_rows_of_one_reservation(make_opportunity):
    for k in range(6):
        opportunity = make_opportunity()
        make_row(opportunity, clinic_history=f"HC-{k}")
        make_row(opportunity, reservation_id=600 + k, clinic_history=f"HC-{k}")
    for _ in range(5):
        SvDelivery.objects.update(claimed_until=None)
        claimed = claim_at_once(4)
        reservations = SvDelivery.objects.filter(pk__in=claimed).values_list("reservation_id", flat=True)
        assert len(claimed) == len(set(claimed)) == 7
        assert sorted(reservations) == [501, *range(600, 606)], "each reservation once, and every one"
