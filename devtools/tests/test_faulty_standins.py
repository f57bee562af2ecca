"""The fault modes of the stand-ins the fault-injection suite switches on (docs/development.md
"Fault-injection suite"): the faulty invoice-mifact stand-in against the real `MifactClient`, the
SV stand-in's slow and failing PATCHes. Real sockets on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests

from billing.mifact import MifactAuthError, MifactBadResponse, MifactClient, MifactError
from devtools.mifact_faults import FaultyMifactStandin
from devtools.sv_standin import SvStandin

USERNAME, PASSWORD = "admin", "secreto"


@pytest.fixture
def standin() -> Iterator[FaultyMifactStandin]:
    server = FaultyMifactStandin(username=USERNAME, password=PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(standin: FaultyMifactStandin) -> Iterator[MifactClient]:
    mifact = MifactClient(base_url=standin.base_url, username=USERNAME, password=PASSWORD, timeout=1, retries=0)
    yield mifact
    mifact.close()


def faults(standin: FaultyMifactStandin, **body: object) -> requests.Response:
    return requests.post(f"{standin.base_url}/_standin/faults", json=body, timeout=5)


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("html", MifactBadResponse),
        ("truncated_json", MifactBadResponse),
        ("error_500", MifactError),
        ("unauthorized", MifactAuthError),
        ("hang", MifactError),
    ],
)
def test_each_mode_makes_the_status_call_fail_until_it_is_switched_off(
    standin: FaultyMifactStandin, client: MifactClient, mode: str, error: type[Exception]
) -> None:
    standin.invoice(456)
    assert faults(standin, mode=mode, hangSeconds=3).json()["mode"] == mode
    client.sign_in()

    with pytest.raises(error):
        client.get_invoice_status(456)

    assert faults(standin, mode=None).json()["mode"] is None
    assert client.get_invoice_status(456).facturado is True


def test_the_comprobante_urls_can_point_elsewhere_and_back(standin: FaultyMifactStandin) -> None:
    standin.invoice(456, soles=True, dolares=True)
    elsewhere = "http://127.0.0.1:9/falta.pdf"
    changed = requests.post(f"{standin.base_url}/_standin/service-order/456/urls", json={"soles": elsewhere}, timeout=5)

    assert changed.status_code == 200
    assert changed.json()["urls"] == {"soles": elsewhere, "dolares": standin.file_url(456, "dolares")}
    requests.post(f"{standin.base_url}/_standin/service-order/456/urls", json={}, timeout=5)
    assert standin.status_body(456)["urls"]["soles"] == standin.file_url(456, "soles")


def test_an_unknown_mode_or_currency_is_refused(standin: FaultyMifactStandin) -> None:
    assert faults(standin, mode="slow").status_code == 400
    assert faults(standin, latencySeconds=-1).status_code == 400
    refused = requests.post(f"{standin.base_url}/_standin/service-order/4/urls", json={"euros": "x"}, timeout=5)
    assert refused.status_code == 400 and refused.json()["statusCode"] == 400


def test_sv_applies_a_slow_patch_when_it_answers_and_never_a_failed_one() -> None:
    sv = SvStandin(username="sv", password="clave").start()
    try:
        token = requests.post(f"{sv.base_url}/auth/signin", json={"username": "sv", "password": "clave"}, timeout=5)
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        url = f"{sv.base_url}/reservation/7/clinic-history-crm"
        sv.plan_patches([(0.5, 200), (0.0, 503)])
        first = {"json": {"clinicHistoryCrm": "HC-1"}, "headers": headers, "timeout": 5}
        slow = threading.Thread(target=requests.patch, args=(url,), kwargs=first)
        slow.start()
        assert sv.wait_for_patches(1, timeout=5)
        assert sv.applied(7) is None  # not before it answers

        failed = requests.patch(url, json={"clinicHistoryCrm": "HC-2"}, headers=headers, timeout=5)
        slow.join(5)

        assert failed.status_code == 503
        assert sv.applied(7) == "HC-1" and sv.patches_arrived == 2
    finally:
        sv.stop()
