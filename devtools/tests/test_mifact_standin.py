"""The local invoice-mifact stand-in (`devtools.mifact_standin`) against the real `MifactClient`.

Real sockets on 127.0.0.1 (no `responses`): the stand-in must speak invoice-mifact's contract
(docs/api.md "invoice-mifact") exactly as the client expects it, or the demo and benchmarks mean
nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.core.management import call_command

from billing.mifact import MifactAuthError, MifactClient
from devtools.mifact_standin import MifactStandin

USERNAME, PASSWORD = "admin", "secreto"


@pytest.fixture
def standin() -> Iterator[MifactStandin]:
    with MifactStandin(username=USERNAME, password=PASSWORD) as server:
        yield server


@pytest.fixture
def client(standin: MifactStandin) -> Iterator[MifactClient]:
    mifact = MifactClient(base_url=standin.base_url, username=USERNAME, password=PASSWORD, timeout=5)
    yield mifact
    mifact.close()


def test_base_url_points_at_the_api_prefix(standin: MifactStandin) -> None:
    assert standin.base_url == f"http://127.0.0.1:{standin.port}/api"


def test_sign_in_hands_out_a_token_and_refuses_bad_credentials(standin: MifactStandin, client: MifactClient) -> None:
    token = client.sign_in()
    assert isinstance(token, str) and len(token) >= 20
    assert standin.sign_ins == 1

    wrong = MifactClient(base_url=standin.base_url, username=USERNAME, password="otra", timeout=5)
    with pytest.raises(MifactAuthError):
        wrong.sign_in()
    wrong.close()
    refused = requests.post(f"{standin.base_url}/auth/signin", json={"username": USERNAME, "password": "x"}, timeout=5)
    assert refused.status_code == 401
    assert refused.json()["statusCode"] == 401


def test_invoice_status_needs_a_known_bearer_token(standin: MifactStandin) -> None:
    url = f"{standin.base_url}/service-order/456/invoice-status"
    missing = requests.get(url, timeout=5)
    assert missing.status_code == 401
    assert missing.headers["Content-Type"] == "application/json"
    assert missing.json() == {"statusCode": 401, "message": "Unauthorized"}
    unknown = requests.get(url, headers={"Authorization": "Bearer not-a-token"}, timeout=5)
    assert unknown.status_code == 401


def test_not_invoiced_then_switched_by_hand_then_invoiced_with_urls(
    standin: MifactStandin, client: MifactClient
) -> None:
    before = client.get_invoice_status(456)
    assert before.facturado is False
    assert before.urls == {}

    switched = requests.post(
        f"{standin.base_url}/_standin/service-order/456/invoice",
        json={"soles": True, "dolares": True, "invoice_result_head_id": 123},
        timeout=5,
    )
    assert switched.status_code == 200
    assert switched.json() == {
        "facturado": True,
        "urls": {
            "soles": f"{standin.base_url}/files/os-456-soles.pdf",
            "dolares": f"{standin.base_url}/files/os-456-dolares.pdf",
        },
        "invoice_result_head_id": 123,
    }

    after = client.get_invoice_status(456)
    assert after.facturado is True
    assert after.invoice_result_head_id == 123
    assert after.url_soles == f"{standin.base_url}/files/os-456-soles.pdf"
    assert after.url_dolares == f"{standin.base_url}/files/os-456-dolares.pdf"
    assert standin.status_calls == 2
    assert client.sign_in_count == 1  # the token was reused

    state = requests.get(f"{standin.base_url}/_standin/state", timeout=5).json()
    assert state["service_orders"]["456"]["invoice_result_head_id"] == 123
    assert state["status_calls"] == 2


def test_urls_only_hold_the_currencies_that_exist(standin: MifactStandin, client: MifactClient) -> None:
    body = standin.invoice(7)  # soles only, head id from the counter
    assert set(body["urls"]) == {"soles"}
    status = client.get_invoice_status(7)
    assert status.urls == {"comprobante_soles": standin.file_url(7, "soles")}
    assert isinstance(status.invoice_result_head_id, int)


def test_pdfs_are_downloadable_and_distinct_per_order_and_currency(standin: MifactStandin) -> None:
    standin.invoice(456, soles=True, dolares=True)
    standin.invoice(457, soles=True)
    bodies = {}
    for so, currency in ((456, "soles"), (456, "dolares"), (457, "soles")):
        response = requests.get(standin.file_url(so, currency), timeout=5)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.content.startswith(b"%PDF-")
        bodies[(so, currency)] = response.content
    assert len(set(bodies.values())) == 3

    direct = requests.get(standin.direct_invoice_url("F001-99"), timeout=5)
    assert direct.status_code == 200 and direct.content.startswith(b"%PDF-")
    # Not invoiced in that currency, or not a file of the service: 404.
    assert requests.get(standin.file_url(457, "dolares"), timeout=5).status_code == 404
    assert requests.get(f"{standin.base_url}/files/other.pdf", timeout=5).status_code == 404


def test_switch_endpoint_validates_its_body(standin: MifactStandin) -> None:
    url = f"{standin.base_url}/_standin/service-order/9/invoice"
    assert requests.post(url, json={"soles": False, "dolares": False}, timeout=5).status_code == 400
    assert requests.post(url, json={"soles": "yes"}, timeout=5).status_code == 400
    assert requests.post(url, data=b"[1]", timeout=5).status_code == 400
    assert requests.get(url, timeout=5).status_code == 405
    assert standin.status_body(9) == {"facturado": False}


def test_a_revoked_token_makes_the_client_sign_in_once_more(standin: MifactStandin, client: MifactClient) -> None:
    client.get_invoice_status(1)
    standin.revoke_tokens()
    assert client.get_invoice_status(1).facturado is False
    assert client.sign_in_count == 2


def test_latency_is_honoured() -> None:
    with MifactStandin(username=USERNAME, password=PASSWORD, latency=0.2) as slow:
        mifact = MifactClient(base_url=slow.base_url, username=USERNAME, password=PASSWORD, timeout=5)
        mifact.sign_in()  # sign-in is not delayed
        started = time.monotonic()
        mifact.get_invoice_status(1)
        assert time.monotonic() - started >= 0.2
        mifact.close()


def test_stop_ends_idle_keep_alive_connections_quickly() -> None:
    server = MifactStandin(username=USERNAME, password=PASSWORD).start()
    session = requests.Session()
    assert session.get(f"{server.base_url}/_standin/state", timeout=5).status_code == 200  # kept alive
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    session.close()


@pytest.mark.django_db
def test_poll_invoices_completes_an_order_served_by_the_standin(
    standin: MifactStandin,
    settings: Any,
    make_opportunity: Any,
    capsys: Any,
    django_capture_on_commit_callbacks: Any,
    media_root: Any,
) -> None:
    """The whole chain: poller -> client -> stand-in -> PDF download (the invoice-mifact host is
    allowed by the downloader even on loopback) -> attachment."""
    from billing import mifact as billing_services
    from billing.models import OpportunityServiceOrder

    settings.URL_INVOICE_MIFACT_V3 = standin.base_url
    settings.INVOICE_MIFACT_USERNAME = USERNAME
    settings.INVOICE_MIFACT_PASSWORD = PASSWORD
    billing_services.reset_shared_mifact_client()
    opportunity = make_opportunity(stage="Cierre ganado", c_facturacion_sub_estado="orden_servicio_pendiente_factura")
    row = OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=456)
    standin.invoice(456, soles=True, dolares=True, head_id=321)

    with django_capture_on_commit_callbacks(execute=True):  # the file moves follow the commit
        call_command("poll_invoices", "--workers", "1")

    assert "invoiced=1" in capsys.readouterr().out
    assert len(list(media_root.rglob("*.pdf"))) == 2
    row.refresh_from_db()
    opportunity.refresh_from_db()
    assert row.facturado is True and row.invoice_result_head_id == 321
    assert opportunity.c_facturacion_sub_estado == "factura_directa"
    assert opportunity.is_presaved is False
    kinds = sorted(opportunity.attachments.values_list("kind", flat=True))
    assert kinds == ["comprobante_dolares", "comprobante_soles"]
    billing_services.reset_shared_mifact_client()


def test_void_then_invoice_again_is_a_reissue_with_other_pdfs(standin: MifactStandin, client: MifactClient) -> None:
    first = standin.invoice(457, head_id=50)
    first_pdf = requests.get(first["urls"]["soles"], timeout=5).content
    assert client.get_invoice_status(457).facturado is True
    voided = requests.post(f"{standin.base_url}/_standin/service-order/457/void", timeout=5)
    assert voided.status_code == 200 and voided.json() == {"facturado": False}
    assert client.get_invoice_status(457).facturado is False
    reissued = standin.invoice(457, head_id=51)
    assert reissued["invoice_result_head_id"] == 51
    assert requests.get(reissued["urls"]["soles"], timeout=5).content != first_pdf
