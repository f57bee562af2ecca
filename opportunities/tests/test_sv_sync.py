"""The SV outbox: the clinic history reaches SV once, even when SV is down (docs/api.md "SV sync")."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

from devtools.testing import at_once
from opportunities.models import Opportunity, SvDelivery
from opportunities.sv_outbox import sv_deliveries_retry_now

pytestmark = pytest.mark.django_db

PAIR_BODY = {"cClinicHistory": "HC-000123", "cDoctor": "Dra. Paredes", "reservationId": 98765}


def sync(*args):
    out = io.StringIO()
    code: int | str | None = 0
    try:
        call_command("sync_sv", *args, stdout=out)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue().strip()


def make_due(**fields):
    fields.setdefault("status", SvDelivery.Status.PENDING)
    fields.setdefault("next_attempt_at", timezone.now() - dt.timedelta(seconds=1))
    return SvDelivery.objects.create(**fields)


def test_a_put_with_clinic_history_and_reservation_delivers_it_to_sv(make_opportunity, put_process, sv):
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, PAIR_BODY)
    assert response.status_code == 200
    assert sv.patches == [(98765, "HC-000123")]
    delivery = SvDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.delivered_at is not None) == ("delivered", 1, True)


def test_the_same_pair_is_delivered_once(make_opportunity, put_process, sv):
    opportunity = make_opportunity()
    put_process(opportunity.pk, PAIR_BODY)
    put_process(opportunity.pk, {**PAIR_BODY, "cDoctor": "Dr. Salas"})
    put_process(opportunity.pk, {"cPatientsname": "Lucía"})
    assert sv.patches == [(98765, "HC-000123")]
    assert SvDelivery.objects.count() == 1


def test_a_changed_clinic_history_or_a_new_reservation_makes_a_new_delivery(make_opportunity, put_process, sv):
    opportunity = make_opportunity()
    put_process(opportunity.pk, PAIR_BODY)
    put_process(opportunity.pk, {"cClinicHistory": "HC-000999"})
    put_process(opportunity.pk, {"cDoctor": "Dra. Paredes", "reservationId": 11111})
    assert sv.patches == [(98765, "HC-000123"), (98765, "HC-000999"), (11111, "HC-000999")]
    assert SvDelivery.objects.filter(status="delivered").count() == 3


def test_no_delivery_without_both_values(make_opportunity, put_process, sv):
    opportunity = make_opportunity()
    put_process(opportunity.pk, {"cClinicHistory": "HC-1"})
    put_process(make_opportunity().pk, {"cDoctor": "X", "reservationId": 5})
    assert SvDelivery.objects.count() == 0 and sv.patches == []


def test_the_outbox_row_is_rolled_back_with_a_failed_update(make_opportunity, put_process, sv, monkeypatch):
    from sales import process_update as services

    real_enqueue = services.sv_delivery_enqueue

    def enqueue_then_fail(**kwargs):
        assert real_enqueue(**kwargs) is not None
        raise services.InvalidRequest("forced")

    monkeypatch.setattr(services, "sv_delivery_enqueue", enqueue_then_fail)
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, PAIR_BODY)
    assert response.status_code == 400
    assert SvDelivery.objects.count() == 0
    assert Opportunity.objects.get(pk=opportunity.pk).c_clinic_history == ""


def test_a_bad_request_writes_no_delivery(make_opportunity, put_process, sv):
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, {**PAIR_BODY, "cDateReservation": "2026-02-30"})
    assert response.status_code == 400
    assert SvDelivery.objects.count() == 0 and sv.patches == []


def test_put_with_sv_down_answers_200_and_the_delivery_waits(make_opportunity, put_process, sv):
    sv.down = True
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, PAIR_BODY)
    assert response.status_code == 200
    delivery = SvDelivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert "SV" in delivery.last_error
    assert delivery.next_attempt_at and delivery.next_attempt_at > timezone.now()
    # SV comes back: once the backoff has passed, sync_sv delivers it exactly once.
    sv.down = False
    SvDelivery.objects.update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    code, line = sync()
    assert code == 0 and line.startswith("sync_sv: due=1 delivered=1")
    code, line = sync()
    assert line.startswith("sync_sv: due=0 delivered=0")
    assert sv.patches == [(98765, "HC-000123")]


def test_a_newer_clinic_history_supersedes_a_waiting_one(make_opportunity, put_process, sv):
    sv.down = True
    opportunity = make_opportunity()
    put_process(opportunity.pk, PAIR_BODY)
    put_process(opportunity.pk, {"cClinicHistory": "HC-NUEVA"})
    statuses = dict(SvDelivery.objects.values_list("clinic_history", "status"))
    assert statuses == {"HC-000123": "superseded", "HC-NUEVA": "pending"}
    sv.down = False
    SvDelivery.objects.update(next_attempt_at=timezone.now())
    sync()
    assert sv.patches == [(98765, "HC-NUEVA")]


def test_backoff_doubles_and_is_capped(sv, make_opportunity, settings):
    settings.SV_SYNC_BACKOFF_SECONDS = 60
    settings.SV_SYNC_BACKOFF_MAX_SECONDS = 300
    settings.SV_SYNC_MAX_ATTEMPTS = 50
    sv.down = True
    delivery = make_due(opportunity=make_opportunity(), reservation_id=1, clinic_history="A")
    delays = []
    for _ in range(5):
        before = timezone.now()
        sync()
        delivery.refresh_from_db()
        delays.append(round((delivery.next_attempt_at - before).total_seconds() / 60))
        SvDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    assert delays == [1, 2, 4, 5, 5]


def test_a_delivery_not_yet_due_is_not_attempted(sv, make_opportunity):
    make_due(
        opportunity=make_opportunity(),
        reservation_id=1,
        clinic_history="A",
        next_attempt_at=timezone.now() + dt.timedelta(minutes=5),
    )
    code, line = sync()
    assert line.startswith("sync_sv: due=0") and sv.patches == []


def test_gives_up_after_max_attempts_and_marks_failed(sv, make_opportunity, settings):
    settings.SV_SYNC_MAX_ATTEMPTS = 3
    sv.reject_status = 404
    delivery = make_due(opportunity=make_opportunity(), reservation_id=1, clinic_history="A", attempts=2)
    code, line = sync()
    assert "failed=1" in line
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 3 and "404" in delivery.last_error
    # The admin's "retry now" re-arms it.
    sv.reject_status = None
    assert sv_deliveries_retry_now(delivery_pks=[delivery.pk]) == {"delivered": 1}
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_sync_exits_1_when_sv_is_unreachable(sv, make_opportunity):
    sv.down = True
    make_due(opportunity=make_opportunity(), reservation_id=1, clinic_history="A")
    code, line = sync()
    assert code == 1 and "fatal=" in line


def test_sync_with_url_sv_unset_is_off_and_exits_1_only_with_work_due(make_opportunity, settings):
    settings.URL_SV = ""
    code, line = sync()
    assert code == 0 and line.startswith("sync_sv: due=0 delivered=0")
    make_due(opportunity=make_opportunity(), reservation_id=1, clinic_history="A")
    code, line = sync()
    assert code == 1 and "URL_SV" in line
    delivery = SvDelivery.objects.get()
    assert delivery.attempts == 0
    # The admin shows why it waits.
    assert delivery.last_error == "no se intentó: URL_SV no está configurada (sincronización con SV desactivada)"


def test_sync_with_sv_credentials_missing_says_so_on_the_row_and_does_not_sign_in(sv, make_opportunity, settings):
    settings.SV_USERNAME = settings.SV_PASSWORD = ""
    make_due(opportunity=make_opportunity(), reservation_id=1, clinic_history="A")
    code, line = sync()
    assert code == 1 and "faltan las credenciales de SV" in line
    delivery = SvDelivery.objects.get()
    assert delivery.attempts == 0 and delivery.last_error.startswith("no se intentó: faltan las credenciales de SV")
    assert sv.patches == []


def test_sync_option_errors_are_spanish(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="opción --limit: debe ser un número entero mayor o igual a 1"):
        call_command("sync_sv", "--limit", "0")


def test_put_with_url_sv_unset_keeps_the_delivery_waiting(make_opportunity, put_process, settings):
    settings.URL_SV = ""
    opportunity = make_opportunity()
    assert put_process(opportunity.pk, PAIR_BODY).status_code == 200
    delivery = SvDelivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 0
    assert "URL_SV no está configurada" in delivery.last_error


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="overlapping runs need PostgreSQL row locks")
def test_two_overlapping_sync_runs_deliver_each_row_once(sv, make_opportunity):
    opportunity = make_opportunity()
    for reservation_id in range(1, 61):
        make_due(opportunity=opportunity, reservation_id=reservation_id, clinic_history=f"HC-{reservation_id}")

    def run(_: int) -> None:
        call_command("sync_sv", stdout=io.StringIO())

    assert at_once(2, run, each_done=connections.close_all) == [None, None]
    assert sorted(sv.patches) == sorted({(r, f"HC-{r}") for r in range(1, 61)})
    assert SvDelivery.objects.filter(status="delivered").count() == 60


def test_going_back_to_an_earlier_clinic_history_delivers_it_again(make_opportunity, put_process, sv):
    """A -> B -> A: SV must end with A (regression: the third PUT was a 500 on a unique pair)."""
    opportunity = make_opportunity()
    for clinic_history in ("HC-A", "HC-B", "HC-A"):
        response = put_process(opportunity.pk, {"cClinicHistory": clinic_history, "cDoctor": "X", "reservationId": 501})
        assert response.status_code == 200
    assert sv.patches == [(501, "HC-A"), (501, "HC-B"), (501, "HC-A")]
    # And the same value once more sends nothing.
    put_process(opportunity.pk, {"cClinicHistory": "HC-A"})
    assert len(sv.patches) == 3


def test_going_back_while_sv_is_down_keeps_only_the_newest_waiting(make_opportunity, put_process, sv):
    sv.down = True
    opportunity = make_opportunity()
    for clinic_history in ("HC-A", "HC-B", "HC-A"):
        assert (
            put_process(
                opportunity.pk, {"cClinicHistory": clinic_history, "cDoctor": "X", "reservationId": 501}
            ).status_code
            == 200
        )
    waiting = list(SvDelivery.objects.filter(status="pending").values_list("clinic_history", flat=True))
    assert waiting == ["HC-A"]
