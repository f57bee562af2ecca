"""Idempotency-Key on `POST /opportunity` and the process update (docs/api.md "Safe retries")."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, connections
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from crm import idempotency
from crm.models import IdempotencyKey
from devtools.testing import at_once
from opportunities import services
from opportunities.models import ActionHistory, Opportunity

pytestmark = pytest.mark.django_db

PUT = "/opportunity/update-opportunity-procces/{}"


def post(client: APIClient, body: Any, key: str | None) -> Any:
    if key is None:
        return client.post("/opportunity", body, format="json")
    return client.post("/opportunity", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_retried_create_with_the_same_key_creates_one_opportunity_and_replays_the_answer(api_client):
    first = post(api_client, {"name": "Venta Pérez"}, "c0ffee-1")
    again = post(api_client, {"name": "Venta Pérez"}, "c0ffee-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Opportunity.objects.count() == 1
    assert ActionHistory.objects.filter(action=ActionHistory.Action.OPPORTUNITY_CREATED).count() == 1


def test_the_body_counts_as_json_not_as_bytes(api_client):
    headers = {"content_type": "application/json", "HTTP_IDEMPOTENCY_KEY": "k"}
    first = api_client.post("/opportunity", '{"name": "Venta", "amount": "10.00"}', **headers)
    again = api_client.post("/opportunity", '{"amount":"10.00","name":"Venta"}', **headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true" and Opportunity.objects.count() == 1


def test_the_same_key_with_another_body_is_a_422_and_creates_nothing_more(api_client):
    assert post(api_client, {"name": "Venta A"}, "clave-1").status_code == 201
    other = post(api_client, {"name": "Venta B"}, "clave-1")
    assert other.status_code == 422
    assert other.json()["statusCode"] == 422
    assert "ya se usó con otra solicitud" in other.json()["message"]
    assert list(Opportunity.objects.values_list("name", flat=True)) == ["Venta A"]


def test_the_same_key_on_another_operation_is_a_422(api_client):
    created = post(api_client, {"name": "Venta A"}, "clave-2").json()
    url = PUT.format(created["id"])
    answer = api_client.put(url, {"name": "Venta A"}, format="json", HTTP_IDEMPOTENCY_KEY="clave-2")
    assert answer.status_code == 422


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "clave con espacios", "ñandú", '"abierta', "tab\tkey"])
def test_a_malformed_key_is_a_400_and_changes_nothing(api_client, key):
    answer = post(api_client, {"name": "Venta"}, key)
    assert answer.status_code == 400
    assert "Idempotency-Key" in answer.json()["errors"]
    assert Opportunity.objects.count() == 0 and IdempotencyKey.objects.count() == 0


def test_the_quoted_form_of_the_draft_is_the_same_key(api_client):
    post(api_client, {"name": "Venta"}, '"8e03978e-40d5-43e8-bc93-6894a57f9324"')
    again = post(api_client, {"name": "Venta"}, "8e03978e-40d5-43e8-bc93-6894a57f9324")
    assert again["Idempotent-Replayed"] == "true" and Opportunity.objects.count() == 1


def test_without_the_header_every_create_creates(api_client):
    post(api_client, {"name": "Venta"}, None)
    post(api_client, {"name": "Venta"}, None)
    assert Opportunity.objects.count() == 2 and IdempotencyKey.objects.count() == 0


def test_keys_belong_to_their_user(api_client, django_user_model):
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(django_user_model.objects.create_user('b'))}")
    post(api_client, {"name": "Venta"}, "compartida")
    second = post(other, {"name": "Venta"}, "compartida")
    assert second.status_code == 201 and not second.has_header("Idempotent-Replayed")
    assert Opportunity.objects.count() == 2


def key_in_progress(user: Any, key: str, locked_at: datetime) -> None:
    """The row a create of `{"name": "Venta"}` under `key` leaves while it runs (locked at `locked_at`)."""
    body = json.dumps({"name": "Venta"}).encode()
    IdempotencyKey.objects.create(
        user=user,
        key=key,
        method="POST",
        path="/opportunity",
        fingerprint=idempotency.request_fingerprint(method="POST", path="/opportunity", body=body),
        locked_at=locked_at,
    )


def test_a_key_in_progress_is_a_409_with_retry_after(api_client, user):
    key_in_progress(user, "en-curso", timezone.now())
    answer = post(api_client, {"name": "Venta"}, "en-curso")
    assert answer.status_code == 409
    assert answer["Retry-After"] == "1"
    assert "se está procesando" in answer.json()["message"]
    assert Opportunity.objects.count() == 0


def test_a_key_a_killed_process_left_in_progress_is_taken_over_after_the_lock_expires(api_client, user, settings):
    key_in_progress(user, "abandonada", timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS + 1))
    answer = post(api_client, {"name": "Venta"}, "abandonada")
    assert answer.status_code == 201 and Opportunity.objects.count() == 1
    record = IdempotencyKey.objects.get()
    assert (record.state, record.status_code) == ("done", 201)
    assert record.response_body and record.response_body["id"] == answer.json()["id"]
    assert post(api_client, {"name": "Venta"}, "abandonada")["Idempotent-Replayed"] == "true"


def test_an_expired_key_starts_afresh(api_client, settings):
    post(api_client, {"name": "Venta"}, "vieja")
    expired = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS, seconds=1)
    IdempotencyKey.objects.update(created_at=expired)
    again = post(api_client, {"name": "Otra venta"}, "vieja")
    assert again.status_code == 201 and not again.has_header("Idempotent-Replayed")
    assert Opportunity.objects.count() == 2 and IdempotencyKey.objects.count() == 1


def test_a_refusal_is_not_kept_so_the_corrected_request_may_use_the_key(api_client, make_opportunity):
    opportunity = make_opportunity()
    url = PUT.format(opportunity.pk)
    refused = api_client.put(url, {"cDoctor": "Dra. Ríos"}, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    assert refused.status_code == 400 and IdempotencyKey.objects.count() == 0  # no reservationId
    corrected = {"cDoctor": "Dra. Ríos", "reservationId": 7}
    done = api_client.put(url, corrected, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    assert done.status_code == 200 and not done.has_header("Idempotent-Replayed")
    again = api_client.put(url, corrected, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    assert again.json() == done.json() and again["Idempotent-Replayed"] == "true"


def test_a_server_error_is_not_stored_so_a_retry_does_the_work(api_client, monkeypatch):
    real = services.opportunity_create

    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("fallo inesperado")

    monkeypatch.setattr(services, "opportunity_create", broken)
    failed = post(api_client, {"name": "Venta"}, "k-500")
    assert failed.status_code == 500 and IdempotencyKey.objects.count() == 0
    monkeypatch.setattr(services, "opportunity_create", real)
    assert post(api_client, {"name": "Venta"}, "k-500").status_code == 201
    assert Opportunity.objects.count() == 1


def test_a_create_and_its_stored_answer_commit_together(api_client, monkeypatch):
    def lost(**kwargs: Any) -> None:
        raise DatabaseError("conexión perdida")

    monkeypatch.setattr(idempotency, "idempotency_key_finish", lost)
    answer = post(api_client, {"name": "Venta"}, "k-atomic")
    assert answer.status_code >= 500
    assert Opportunity.objects.count() == 0 and IdempotencyKey.objects.count() == 0


def test_a_retried_process_update_is_replayed_not_redone(api_client, make_opportunity):
    opportunity = make_opportunity()
    url = PUT.format(opportunity.pk)
    first = api_client.put(url, {"cDoctor": "Dra. Ríos", "reservationId": 7}, format="json", HTTP_IDEMPOTENCY_KEY="p")
    assert first.status_code == 200
    # Someone else changes the doctor meanwhile; the client's retry must not undo it.
    assert api_client.put(url, {"cDoctor": "Dr. Soto", "reservationId": 7}, format="json").status_code == 200
    again = api_client.put(url, {"cDoctor": "Dra. Ríos", "reservationId": 7}, format="json", HTTP_IDEMPOTENCY_KEY="p")
    assert again.status_code == 200 and again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Opportunity.objects.get().c_doctor == "Dr. Soto"


def test_prune_deletes_the_expired_keys_only(api_client, settings):
    post(api_client, {"name": "Venta"}, "vieja")
    post(api_client, {"name": "Venta"}, "nueva")
    IdempotencyKey.objects.filter(key="vieja").update(
        created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS, seconds=1)
    )
    out = io.StringIO()
    call_command("idempotency_keys_prune", stdout=out)
    assert out.getvalue().strip() == "idempotency_keys_prune: deleted=1"
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["nueva"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent requests need PostgreSQL row locks")
def test_eight_creates_with_one_key_at_once_create_one_opportunity(user):
    token = str(AccessToken.for_user(user))

    def send(_: int) -> Any:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return post(client, {"name": "Venta"}, "a-la-vez")

    results = at_once(8, send, each_done=connections.close_all)
    statuses = sorted(answer.status_code for answer in results)
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    ids = {answer.json()["id"] for answer in results if answer.status_code == 201}
    assert len(ids) == 1 and Opportunity.objects.count() == 1
