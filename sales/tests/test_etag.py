"""ETag, If-Match and If-None-Match on the opportunity (docs/api.md "Safe retries")."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from devtools.testing import at_once
from opportunities.history import HistoryLog
from opportunities.models import ActionHistory, Meeting, Opportunity
from opportunities.services import opportunity_correct
from sales.example_bodies import APPOINTMENT_DATA, MAIN_DATA

pytestmark = pytest.mark.django_db

PUT = "/opportunity/update-opportunity-procces/{}"


def created(api_client: APIClient) -> tuple[str, str]:
    answer = api_client.post("/opportunity", {"name": "Venta Pérez"}, format="json")
    assert answer.status_code == 201
    return answer.json()["id"], answer["ETag"]


def etag_of(api_client: APIClient, opportunity_id: str) -> str:
    answer = api_client.get(f"/opportunity/{opportunity_id}")
    assert answer.status_code == 200
    return answer["ETag"]


def test_the_create_get_and_put_answers_carry_the_etag_of_what_they_show(api_client):
    opportunity_id, etag = created(api_client)
    assert etag == '"1"' == etag_of(api_client, opportunity_id)
    put = api_client.put(PUT.format(opportunity_id), {"cPatientsname": "Rosa"}, format="json", HTTP_IF_MATCH=etag)
    assert put.status_code == 200
    assert put["ETag"] == '"2"' == etag_of(api_client, opportunity_id)


def test_every_kind_of_change_gives_a_new_etag(api_client, user):
    opportunity_id, etag = created(api_client)
    seen = [etag]

    def put(body: dict[str, Any]) -> None:
        assert api_client.put(PUT.format(opportunity_id), body, format="json").status_code == 200
        seen.append(etag_of(api_client, opportunity_id))

    put({"cPatientsname": "Rosa"})  # a field
    put({"cDoctor": "Dra. Ríos", "reservationId": 7})  # a meeting created
    put({"cDoctor": "Dr. Soto", "reservationId": 7})  # the meeting updated (and the field)
    put({"cClinicHistory": "HC-1", "cOrdenesServicio": [456]})  # closed, an O.S registered
    opportunity = Opportunity.objects.get(pk=opportunity_id)
    old = {"amount": opportunity.amount}
    opportunity.amount = 120
    opportunity_correct(opportunity=opportunity, user=user, old_values=old)  # staff's correction in the admin
    seen.append(etag_of(api_client, opportunity_id))
    assert len(set(seen)) == len(seen), seen


def test_a_put_that_changes_nothing_keeps_the_etag(api_client):
    opportunity_id, _ = created(api_client)
    api_client.put(PUT.format(opportunity_id), {"cPatientsname": "Rosa"}, format="json")
    before = etag_of(api_client, opportunity_id)
    again = api_client.put(PUT.format(opportunity_id), {"cPatientsname": "Rosa"}, format="json")
    assert again["ETag"] == before == etag_of(api_client, opportunity_id)


def test_a_stale_if_match_is_a_412_naming_what_changed_and_changes_nothing(api_client):
    opportunity_id, etag = created(api_client)
    # Someone else books the appointment and corrects the patient's name meanwhile.
    body = {"cPatientsname": "Rosa", "cDoctor": "Dra. Ríos", "reservationId": 7}
    assert api_client.put(PUT.format(opportunity_id), body, format="json").status_code == 200
    current = etag_of(api_client, opportunity_id)
    history = ActionHistory.objects.count()

    stale = api_client.put(
        PUT.format(opportunity_id),
        {"cPatientsname": "María", "cDoctor": "Dr. Soto", "reservationId": 8},
        format="json",
        HTTP_IF_MATCH=etag,
    )
    assert stale.status_code == 412
    assert stale["ETag"] == current
    answer = stale.json()
    assert answer["statusCode"] == 412 and answer["error"] == "Precondition Failed"
    assert set(answer["errors"]) == {"cPatientsname", "cDoctor", "reservationId", "meetings"}
    assert "If-Match" in answer["message"] and "meetings" in answer["message"]
    assert all("versión 2" in note and "ventas" in note for notes in answer["errors"].values() for note in notes)
    stored = Opportunity.objects.get(pk=opportunity_id)
    assert (stored.c_patientsname, stored.c_doctor, stored.reservation_id) == ("Rosa", "Dra. Ríos", 7)
    assert list(Meeting.objects.values_list("reservation_id", flat=True)) == [7]
    assert ActionHistory.objects.count() == history and etag_of(api_client, opportunity_id) == current


def test_the_412_names_what_the_poller_changed(api_client):
    opportunity_id, etag = created(api_client)
    opportunity = Opportunity.objects.get(pk=opportunity_id)
    log = HistoryLog(opportunity=opportunity, user=None)
    log.add(ActionHistory.Action.SERVICE_ORDER_INVOICED, {"serviceOrderId": 456})
    log.flush()
    stale = api_client.put(PUT.format(opportunity_id), {"cPatientsname": "Rosa"}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert set(stale.json()["errors"]) == {"serviceOrders", "attachments", "cFacturacionSubEstado", "isPresaved"}
    assert "el proceso de facturación" in stale.json()["errors"]["serviceOrders"][0]


@pytest.mark.parametrize(
    ("if_match", "status"),
    [('"1"', 200), ('"0", "1"', 200), ("*", 200), ('W/"1"', 412), ('"9"', 412), ('"abc"', 412)],
)
def test_if_match_compares_strongly(api_client, if_match, status):
    opportunity_id, _ = created(api_client)
    url = PUT.format(opportunity_id)
    answer = api_client.put(url, {"cPatientsname": "Rosa"}, format="json", HTTP_IF_MATCH=if_match)
    assert answer.status_code == status
    assert Opportunity.objects.get(pk=opportunity_id).c_patientsname == ("Rosa" if status == 200 else "")


@pytest.mark.parametrize("if_match", ["1", '"1', "", "W/1", '"1" "2"'])
def test_a_malformed_if_match_is_a_400_and_changes_nothing(api_client, if_match):
    opportunity_id, _ = created(api_client)
    url = PUT.format(opportunity_id)
    answer = api_client.put(url, {"cPatientsname": "Rosa"}, format="json", HTTP_IF_MATCH=if_match)
    assert answer.status_code == 400 and "If-Match" in answer.json()["errors"]
    assert Opportunity.objects.get(pk=opportunity_id).c_patientsname == ""


def test_a_malformed_if_match_on_an_unknown_opportunity_is_a_404(api_client):
    answer = api_client.put(PUT.format("0" * 17), {"cPatientsname": "Rosa"}, format="json", HTTP_IF_MATCH="x")
    assert answer.status_code == 404


def test_without_if_match_the_last_put_wins_as_before(api_client):
    opportunity_id, _ = created(api_client)
    api_client.put(PUT.format(opportunity_id), {"cPatientsname": "Rosa"}, format="json")
    assert api_client.put(PUT.format(opportunity_id), {"cPatientsname": "María"}, format="json").status_code == 200
    assert Opportunity.objects.get(pk=opportunity_id).c_patientsname == "María"


@pytest.mark.parametrize(("if_none_match", "status"), [('"1"', 304), ('W/"1"', 304), ('"0", "1"', 304), ("*", 304)])
def test_if_none_match_with_the_current_etag_is_a_304_without_body(api_client, if_none_match, status):
    opportunity_id, etag = created(api_client)
    answer = api_client.get(f"/opportunity/{opportunity_id}", HTTP_IF_NONE_MATCH=if_none_match)
    assert answer.status_code == status
    assert answer.content == b"" and answer["ETag"] == etag


@pytest.mark.parametrize("if_none_match", ['"0"', "garbage", '"2"'])
def test_if_none_match_with_another_etag_gets_the_opportunity(api_client, if_none_match):
    opportunity_id, _ = created(api_client)
    answer = api_client.get(f"/opportunity/{opportunity_id}", HTTP_IF_NONE_MATCH=if_none_match)
    assert answer.status_code == 200 and answer.json()["id"] == opportunity_id


def test_the_history_records_carry_the_version_they_made(api_client):
    opportunity_id, _ = created(api_client)
    api_client.put(PUT.format(opportunity_id), {**MAIN_DATA, **APPOINTMENT_DATA, "reservationId": 5}, format="json")
    versions = dict(ActionHistory.objects.values_list("action", "opportunity_version"))
    assert versions == {"opportunity_created": 1, "opportunity_updated": 2, "meeting_created": 2}


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent row locks need PostgreSQL")
def test_of_eight_puts_with_one_if_match_at_once_exactly_one_wins(user):
    token = str(AccessToken.for_user(user))
    setup = APIClient()
    setup.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    opportunity_id, etag = created(setup)

    def send(index: int) -> Any:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        body = {"cPatientsname": f"Paciente {index}"}
        return client.put(PUT.format(opportunity_id), body, format="json", HTTP_IF_MATCH=etag)

    results = at_once(8, send, each_done=connections.close_all)
    statuses = sorted(answer.status_code for answer in results)
    assert statuses == [200] + [412] * 7, statuses
    winner = next(index for index, answer in enumerate(results) if answer.status_code == 200)
    stored = Opportunity.objects.get(pk=opportunity_id)
    assert (stored.c_patientsname, stored.version) == (f"Paciente {winner}", 2)
