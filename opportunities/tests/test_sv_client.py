"""The SV client: its call and errors (the shared bearer-token behaviour is tested in
`crm/tests/test_outgoing.py`). HTTP faked with responses."""

from __future__ import annotations

import pytest
import responses
from responses import matchers

from devtools.testing import SERVICE_PASSWORD, SERVICE_USER, service_client
from opportunities.sv import SvClient, SvRejected

BASE = "http://sv.test/api"
SIGNIN = f"{BASE}/auth/signin"


def patch_url(reservation_id: int) -> str:
    return f"{BASE}/reservation/{reservation_id}/clinic-history-crm"


@pytest.fixture
def client() -> SvClient:
    return service_client(SvClient, BASE)


@responses.activate
def test_update_signs_in_and_patches_the_clinic_history(client):
    responses.post(
        SIGNIN,
        json={"accessToken": "sv-1"},
        match=[matchers.json_params_matcher({"username": SERVICE_USER, "password": SERVICE_PASSWORD})],
    )
    responses.patch(
        patch_url(98765),
        json={"ok": True},
        match=[
            matchers.header_matcher({"Authorization": "Bearer sv-1"}),
            matchers.json_params_matcher({"clinicHistoryCrm": "HC-000123"}),
        ],
    )
    client.update_clinic_history(reservation_id=98765, clinic_history="HC-000123")
    assert len(responses.calls) == 2


@responses.activate
def test_unknown_reservation_is_rejected(client):
    responses.post(SIGNIN, json={"access_token": "t"})
    responses.patch(patch_url(1), status=404, json={"message": "Reserva no encontrada"})
    with pytest.raises(SvRejected):
        client.update_clinic_history(reservation_id=1, clinic_history="A")
