"""A double-submitted appointment (double click, client retry): every PUT answers 200 and the
reservation gets one meeting and one `meeting_created` record.

Real concurrency needs PostgreSQL row locks (the embedded SQLite serializes writers; the
black-box suite covers it through a real server): on SQLite this test is skipped.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from devtools.testing import at_once
from opportunities.models import ActionHistory, Meeting
from sales.example_bodies import APPOINTMENT_DATA, MAIN_DATA

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent row locks need PostgreSQL"),
]

BODY = {**MAIN_DATA, **APPOINTMENT_DATA, "reservationId": 98765}


def put_at_once(url: str, token: str, copies: int) -> list[Any]:
    """Send `copies` identical PUTs from as many threads released together; their status codes
    (or the exception a thread raised)."""

    def send(_: int) -> int:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client.put(url, BODY, format="json").status_code

    return at_once(copies, send, each_done=connections.close_all)


def test_eight_identical_appointment_puts_at_once_all_answer_200_with_one_meeting(user, make_opportunity):
    opportunity = make_opportunity()
    url = f"/opportunity/update-opportunity-procces/{opportunity.pk}"
    results = put_at_once(url, str(AccessToken.for_user(user)), copies=8)
    assert results == [200] * 8
    assert Meeting.objects.filter(opportunity=opportunity, reservation_id=98765).count() == 1
    created = ActionHistory.objects.filter(opportunity=opportunity, action=ActionHistory.Action.MEETING_CREATED)
    assert created.count() == 1
    assert (
        ActionHistory.objects.filter(opportunity=opportunity, action=ActionHistory.Action.OPPORTUNITY_UPDATED).count()
        == 1
    )
