"""The invoice-mifact-v3 client: its calls, answers and errors (the shared bearer-token behaviour is
tested in `crm/tests/test_outgoing.py`). HTTP faked with responses."""

from __future__ import annotations

import json

import pytest
import responses
from responses import matchers

from billing.mifact import (
    InvoiceStatus,
    MifactBadResponse,
    MifactClient,
)
from devtools.testing import service_client

BASE = "http://mifact.test/api"
SIGNIN = f"{BASE}/auth/signin"


def status_url(service_order_id: int) -> str:
    return f"{BASE}/service-order/{service_order_id}/invoice-status"


@pytest.fixture
def client() -> MifactClient:
    return service_client(MifactClient, BASE)


@responses.activate
def test_status_call_is_retried_on_503_but_sign_in_is_not():
    client = service_client(MifactClient, BASE, retries=2)
    responses.post(SIGNIN, json={"access_token": "t"})
    responses.get(status_url(1), status=503)
    responses.get(status_url(1), status=503)
    responses.get(status_url(1), json={"facturado": False})
    assert client.get_invoice_status(1).facturado is False
    assert len([c for c in responses.calls if c.request.url == status_url(1)]) == 3


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps([1, 2]),
        json.dumps({"facturado": "yes"}),
        json.dumps({}),
        json.dumps({"facturado": True, "urls": ["x"]}),
        json.dumps({"facturado": True, "invoice_result_head_id": "12"}),
        json.dumps({"facturado": True, "urls": {"soles": 5}}),
        # found by an adversarial review: these reached the database and failed there, forever
        json.dumps({"facturado": True, "urls": {"soles": "http://x/s.pdf"}, "invoice_result_head_id": 2**31}),
        json.dumps({"facturado": True, "urls": {"soles": "http://x/s.pdf"}, "invoice_result_head_id": -3}),
        json.dumps({"facturado": True, "urls": {"soles": "http://x/s\u0000.pdf"}}),
        json.dumps({"facturado": True, "urls": {"soles": "ftp://x/s.pdf"}}),
    ],
)
@responses.activate
def test_malformed_answers_are_bad_responses(client, body):
    responses.post(SIGNIN, json={"access_token": "t"})
    responses.get(status_url(1), body=body, content_type="application/json")
    with pytest.raises(MifactBadResponse):
        client.get_invoice_status(1)


@responses.activate
def test_404_is_a_bad_response(client):
    responses.post(SIGNIN, json={"access_token": "t"})
    responses.get(status_url(1), status=404, json={"message": "not found"})
    with pytest.raises(MifactBadResponse):
        client.get_invoice_status(1)


@responses.activate
def test_the_three_answer_shapes(client):
    responses.post(SIGNIN, json={"access_token": "t"})
    responses.get(status_url(1), json={"facturado": False})
    responses.get(
        status_url(2),
        json={
            "facturado": True,
            "urls": {"soles": "http://x/s.pdf", "dolares": "http://x/d.pdf"},
            "invoice_result_head_id": 123,
        },
    )
    responses.get(
        status_url(3), json={"facturado": True, "urls": {"dolares": "http://x/d.pdf"}, "invoice_result_head_id": 124}
    )
    assert client.get_invoice_status(1) == InvoiceStatus(service_order_id=1, facturado=False)
    both = client.get_invoice_status(2)
    assert both.invoice_result_head_id == 123
    assert both.urls == {"comprobante_soles": "http://x/s.pdf", "comprobante_dolares": "http://x/d.pdf"}
    only_dolares = client.get_invoice_status(3)
    assert only_dolares.url_soles is None
    assert only_dolares.urls == {"comprobante_dolares": "http://x/d.pdf"}


@responses.activate
def test_a_given_token_is_used_without_sign_in(client):
    responses.get(
        status_url(1), json={"facturado": False}, match=[matchers.header_matcher({"Authorization": "Bearer given"})]
    )
    assert client.get_invoice_status(1, token="given").facturado is False
    assert len(responses.calls) == 1
