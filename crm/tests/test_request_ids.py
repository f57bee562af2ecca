"""Every request has an id: taken from `X-Request-ID` when it is a plain id, or generated; returned
in the response, written on the log lines, and sent on the outside calls made for it."""

from __future__ import annotations

import logging
import re

import pytest
import responses

pytestmark = pytest.mark.django_db


def test_a_plain_incoming_id_is_returned(anon_client):
    response = anon_client.get("/health/live", HTTP_X_REQUEST_ID="front-123.abc")
    assert response["X-Request-ID"] == "front-123.abc"


@pytest.mark.parametrize("given", [None, "", "x" * 200, "bad id", "a\r\nSet-Cookie: x=1", "ñandú"])
def test_a_missing_or_odd_id_is_replaced_by_a_new_one(anon_client, given):
    extra = {} if given is None else {"HTTP_X_REQUEST_ID": given}
    response = anon_client.get("/health/live", **extra)
    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_log_lines_of_a_request_carry_its_id(anon_client, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = anon_client.get("/opportunity/nope", HTTP_X_REQUEST_ID="trace-42")
    assert response.status_code == 401
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records and all(getattr(r, "request_id", None) == "trace-42" for r in records)


def test_outside_calls_made_for_a_request_send_its_id(api_client, make_opportunity, mifact, put_process):
    opportunity = make_opportunity(c_clinic_history="HC-1")
    response = put_process(opportunity.pk, {"cOrdenesServicio": [456]}, HTTP_X_REQUEST_ID="front-777")
    assert response.status_code == 200 and response["X-Request-ID"] == "front-777"
    sent = [call.request.headers.get("X-Request-ID") for call in mifact.rsps.calls]
    assert sent and set(sent) == {"front-777"}


@responses.activate
def test_a_command_run_gets_its_own_id_on_its_outside_calls(
    db, settings, make_opportunity, django_capture_on_commit_callbacks
):
    import io

    from django.core.management import call_command

    from billing.models import OpportunityServiceOrder
    from billing.tests.fakes import BASE

    settings.URL_INVOICE_MIFACT_V3 = BASE
    settings.INVOICE_MIFACT_USERNAME, settings.INVOICE_MIFACT_PASSWORD = "admin", "secreto"
    responses.post(f"{BASE}/auth/signin", json={"access_token": "t"})
    responses.get(f"{BASE}/service-order/456/invoice-status", json={"facturado": False})
    OpportunityServiceOrder.objects.create(opportunity=make_opportunity(), service_order_id=456)
    call_command("poll_invoices", "--workers", "1", stdout=io.StringIO())
    ids = {call.request.headers.get("X-Request-ID") for call in responses.calls}
    assert len(ids) == 1 and re.fullmatch(r"[0-9a-f]{32}", ids.pop() or "")
