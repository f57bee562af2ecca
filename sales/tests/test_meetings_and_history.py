"""Meetings per reservation (create versus update) and history records with old and new values."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from opportunities.models import ActionHistory, Meeting

pytestmark = pytest.mark.django_db

LIMA = ZoneInfo("America/Lima")


def test_meeting_dates_come_from_reservation_date_and_range_in_the_clinic_zone(
    make_opportunity, put_process, api_client
):
    opportunity = make_opportunity(c_patientsname="Lucía", c_patients_paternal_last_name="Quispe")
    put_process(
        opportunity.pk,
        {
            "cDateReservation": "2026-03-02",
            "cAppointment": "15:30 - 16:00",
            "cSpecialty": "Dermatología",
            "reservationId": 700,
        },
    )
    meeting = Meeting.objects.get()
    assert meeting.date_start == dt.datetime(2026, 3, 2, 15, 30, tzinfo=LIMA)
    assert meeting.date_end == dt.datetime(2026, 3, 2, 16, 0, tzinfo=LIMA)
    assert meeting.name == "Cita: Lucía Quispe (Dermatología)"
    listed = api_client.get(f"/opportunity/{opportunity.pk}/meetings").json()
    assert listed == [
        {
            "id": meeting.pk,
            "name": "Cita: Lucía Quispe (Dermatología)",
            "status": "Planned",
            "dateStart": "2026-03-02 15:30:00",
            "dateEnd": "2026-03-02 16:00:00",
            "doctor": "",
            "environment": "",
            "specialty": "Dermatología",
            "tariff": "",
            "reservationId": 700,
            "createdAt": listed[0]["createdAt"],
        }
    ]


def test_meeting_dates_stay_null_while_date_or_range_is_unknown(make_opportunity, put_process):
    opportunity = make_opportunity()
    put_process(opportunity.pk, {"cAppointment": "10:00 - 10:20", "reservationId": 1})
    meeting = Meeting.objects.get()
    assert meeting.date_start is None and meeting.date_end is None
    put_process(opportunity.pk, {"cDateReservation": "2026-05-04", "reservationId": 1})
    meeting.refresh_from_db()
    assert meeting.date_start == dt.datetime(2026, 5, 4, 10, 0, tzinfo=LIMA)


def test_second_call_for_the_same_reservation_updates_the_meeting(make_opportunity, put_process):
    opportunity = make_opportunity()
    put_process(opportunity.pk, {"cDoctor": "Dra. Paredes", "reservationId": 10})
    put_process(opportunity.pk, {"cDoctor": "Dr. Salas", "reservationId": 10})
    meeting = Meeting.objects.get()
    assert meeting.doctor == "Dr. Salas"
    updated = ActionHistory.objects.get(action="meeting_updated")
    assert updated.data["changes"]["doctor"] == {"old": "Dra. Paredes", "new": "Dr. Salas"}
    assert ActionHistory.objects.filter(action="meeting_created").count() == 1


def test_a_new_reservation_makes_a_second_meeting(make_opportunity, put_process):
    opportunity = make_opportunity()
    put_process(opportunity.pk, {"cDoctor": "Dra. Paredes", "reservationId": 10})
    put_process(opportunity.pk, {"cDoctor": "Dra. Paredes", "reservationId": 11})
    assert sorted(Meeting.objects.values_list("reservation_id", flat=True)) == [10, 11]


def test_identical_appointment_twice_writes_no_update_record(make_opportunity, put_process):
    opportunity = make_opportunity()
    body = {"cDoctor": "Dra. Paredes", "cDateReservation": "2026-03-02", "reservationId": 10}
    put_process(opportunity.pk, body)
    put_process(opportunity.pk, body)
    assert Meeting.objects.count() == 1
    assert not ActionHistory.objects.filter(action="meeting_updated").exists()
    assert ActionHistory.objects.filter(action="opportunity_updated").count() == 1


def test_history_holds_old_and_new_values_and_the_user(make_opportunity, put_process, api_client, user):
    opportunity = make_opportunity(c_clinic_history="HC-1")
    put_process(
        opportunity.pk,
        {"cClinicHistory": "HC-2", "cPatientsname": "Rosa", "cDateReservation": "2026-03-02", "reservationId": 4},
    )
    record = ActionHistory.objects.get(action="opportunity_updated")
    assert record.user_name == user.username
    assert record.data["changes"] == {
        "cClinicHistory": {"old": "HC-1", "new": "HC-2"},
        "cPatientsname": {"old": "", "new": "Rosa"},
        "cDateReservation": {"old": None, "new": "2026-03-02"},
        "reservationId": {"old": None, "new": 4},
    }
    listed = api_client.get(f"/opportunity/{opportunity.pk}/action-history").json()
    assert [item["action"] for item in listed] == ["meeting_created", "opportunity_updated"]
    assert listed[1]["userName"] == "ventas"
    assert listed[1]["data"]["changes"]["cClinicHistory"]["new"] == "HC-2"


def test_history_dates_use_the_api_format_in_the_clinic_zone(make_opportunity, put_process):
    opportunity = make_opportunity()
    put_process(opportunity.pk, {"cDateReservation": "2026-03-02", "cAppointment": "15:30 - 16:00", "reservationId": 1})
    put_process(opportunity.pk, {"cAppointment": "09:00 - 09:30", "reservationId": 1})
    changes = ActionHistory.objects.get(action="meeting_updated").data["changes"]
    assert changes["date_start"] == {"old": "2026-03-02 15:30:00", "new": "2026-03-02 09:00:00"}
