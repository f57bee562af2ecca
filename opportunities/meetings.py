"""Meetings: one per SV reservation of an opportunity, made from its appointment data."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings

from crm.fields import parse_appointment

from .history import HistoryLog, jsonable
from .models import ActionHistory, Meeting, Opportunity


def _meeting_times(opportunity: Opportunity) -> tuple[dt.datetime | None, dt.datetime | None]:
    times = parse_appointment(opportunity.c_appointment)
    day = opportunity.c_date_reservation
    if times is None or day is None:
        return None, None
    zone = ZoneInfo(settings.TIME_ZONE)
    start, end = times
    return dt.datetime.combine(day, start, tzinfo=zone), dt.datetime.combine(day, end, tzinfo=zone)


def _meeting_name(opportunity: Opportunity) -> str:
    patient = " ".join(
        part
        for part in (
            opportunity.c_patientsname,
            opportunity.c_patients_paternal_last_name,
            opportunity.c_patients_maternal_last_name,
        )
        if part
    )
    title = f"Cita: {patient or opportunity.name}"
    if opportunity.c_specialty:
        title += f" ({opportunity.c_specialty})"
    return title[:255]


def meeting_upsert(
    *, opportunity: Opportunity, reservation_id: int, meeting: Meeting | None, log: HistoryLog
) -> Meeting:
    """Create, or update, the opportunity's meeting for `reservation_id` from its stored appointment.

    `meeting` is that meeting as read under the opportunity's lock (`opportunity_lock`), or None
    when the opportunity has none for `reservation_id` yet. Adds `meeting_created` or (when
    something changed) `meeting_updated` to `log`. Must run inside the caller's transaction with
    the opportunity row locked. (docs/api.md "The four cases": appointment data make a meeting).
    """
    date_start, date_end = _meeting_times(opportunity)
    values = {
        "name": _meeting_name(opportunity),
        "date_start": date_start,
        "date_end": date_end,
        "doctor": opportunity.c_doctor,
        "environment": opportunity.c_environment,
        "specialty": opportunity.c_specialty,
        "tariff": opportunity.c_tariff,
    }
    if meeting is None:
        meeting = Meeting.objects.create(opportunity=opportunity, reservation_id=reservation_id, **values)
        log.add(
            ActionHistory.Action.MEETING_CREATED,
            {"meetingId": meeting.pk, "reservationId": reservation_id, **{k: jsonable(v) for k, v in values.items()}},
        )
        return meeting
    changes = {
        key: {"old": jsonable(getattr(meeting, key)), "new": jsonable(value)}
        for key, value in values.items()
        if getattr(meeting, key) != value
    }
    if changes:
        for key in changes:
            setattr(meeting, key, values[key])
        meeting.save(update_fields=[*changes, "updated_at"])
        log.add(
            ActionHistory.Action.MEETING_UPDATED,
            {"meetingId": meeting.pk, "reservationId": reservation_id, "changes": changes},
        )
    return meeting
