"""The shared bearer-token client of outside services (`crm.outgoing.BearerApiClient`), tested once
here, with the error classes and settings of each service's client; the invoice-mifact and SV
clients' own calls are tested beside them. HTTP faked with `responses`."""

from __future__ import annotations

import pytest
import requests
import responses
from responses import matchers

from billing.mifact import MifactClient
from crm.outgoing import BearerApiClient, ServiceAuthError, ServiceBadResponse, ServiceUnavailable
from devtools.testing import SERVICE_PASSWORD, SERVICE_USER, at_once, service_client
from opportunities.sv import SvClient

BASE = "http://servicio.test/api"
SIGNIN = f"{BASE}/auth/signin"
THING = f"{BASE}/thing"


class DemoClient(BearerApiClient):
    service_name = "demo"

    def thing(self) -> int:
        return self.authorized_request("GET", "/thing").status_code


@pytest.fixture
def client() -> DemoClient:
    return service_client(DemoClient, BASE)


@responses.activate
def test_sign_in_posts_the_credentials_and_keeps_the_token(client):
    responses.post(
        SIGNIN,
        json={"access_token": "tok-1"},
        match=[matchers.json_params_matcher({"username": SERVICE_USER, "password": SERVICE_PASSWORD})],
    )
    assert client.sign_in() == "tok-1"


@pytest.mark.parametrize(
    "body", [{"access_token": "tok-x"}, {"accessToken": "tok-x"}, {"token": "tok-x"}, {"data": {"token": "tok-x"}}]
)
@responses.activate
def test_sign_in_reads_every_documented_token_key(client, body):
    responses.post(SIGNIN, json=body)
    assert client.sign_in() == "tok-x"


@responses.activate
def test_the_token_is_reused_for_many_calls(client):
    responses.post(SIGNIN, json={"access_token": "tok-1"})
    responses.get(THING, status=200, match=[matchers.header_matcher({"Authorization": "Bearer tok-1"})])
    assert [client.thing() for _ in range(3)] == [200, 200, 200]
    assert client.sign_in_count == 1


@responses.activate
def test_a_401_makes_exactly_one_new_sign_in_and_one_repeat(client):
    responses.post(SIGNIN, json={"access_token": "old"})
    responses.post(SIGNIN, json={"access_token": "new"})
    responses.get(THING, status=401, match=[matchers.header_matcher({"Authorization": "Bearer old"})])
    responses.get(THING, status=200, match=[matchers.header_matcher({"Authorization": "Bearer new"})])
    assert client.thing() == 200
    assert [c.request.url for c in responses.calls] == [SIGNIN, THING, SIGNIN, THING]


@responses.activate
def test_a_401_right_after_a_fresh_sign_in_is_an_auth_error_not_a_loop(client):
    responses.post(SIGNIN, json={"access_token": "t"})
    responses.get(THING, status=401)
    with pytest.raises(ServiceAuthError, match="demo rechazó el token recién obtenido"):
        client.thing()
    assert len(responses.calls) == 4


@responses.activate
def test_many_threads_seeing_a_401_sign_in_again_once(client):
    responses.post(SIGNIN, json={"access_token": "old"})
    client.sign_in()
    responses.replace(responses.POST, SIGNIN, json={"access_token": "new"})
    responses.get(THING, status=401, match=[matchers.header_matcher({"Authorization": "Bearer old"})])
    responses.get(THING, status=200, match=[matchers.header_matcher({"Authorization": "Bearer new"})])
    assert at_once(8, lambda _: client.thing()) == [200] * 8
    assert client.sign_in_count == 2  # the first sign-in and exactly one renewal


@pytest.mark.parametrize("status", [401, 403])
@responses.activate
def test_refused_credentials_are_an_auth_error(client, status):
    responses.post(SIGNIN, status=status, json={"message": "Unauthorized"})
    with pytest.raises(ServiceAuthError, match=f"demo rechazó las credenciales \\({status}\\)"):
        client.thing()


@responses.activate
def test_a_sign_in_without_token_is_an_auth_error(client):
    responses.post(SIGNIN, json={"ok": True})
    with pytest.raises(ServiceAuthError, match="no devolvió un token"):
        client.sign_in()


@responses.activate
def test_a_sign_in_answer_that_is_not_json_is_a_bad_response(client):
    responses.post(SIGNIN, body="<html>")
    with pytest.raises(ServiceBadResponse):
        client.sign_in()


@pytest.mark.parametrize("status", [500, 502, 503])
@responses.activate
def test_5xx_is_unavailable(client, status):
    responses.post(SIGNIN, json={"access_token": "t"})
    responses.get(THING, status=status)
    with pytest.raises(ServiceUnavailable, match=f"demo respondió {status}"):
        client.thing()


@responses.activate
def test_a_timeout_is_unavailable(client):
    responses.post(SIGNIN, json={"access_token": "t"})
    responses.get(THING, body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(ServiceUnavailable, match="demo no respondió a tiempo"):
        client.thing()


@responses.activate
def test_a_connection_error_is_unavailable(client):
    responses.post(SIGNIN, body=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(ServiceUnavailable, match="no se pudo conectar con demo"):
        client.sign_in()


@responses.activate
def test_idempotent_calls_are_retried_on_503_but_the_sign_in_is_not():
    client = service_client(DemoClient, BASE, retries=2)
    responses.post(SIGNIN, status=503)
    with pytest.raises(ServiceUnavailable):
        client.sign_in()
    assert len(responses.calls) == 1
    responses.replace(responses.POST, SIGNIN, json={"access_token": "t"})
    responses.get(THING, status=503)
    responses.get(THING, status=503)
    responses.get(THING, status=200)
    assert client.thing() == 200
    assert len([c for c in responses.calls if c.request.url == THING]) == 3


# The two clients of the clinic's services: how to make their call, and the settings they read.
SERVICES = [
    pytest.param(
        MifactClient,
        responses.GET,
        "/service-order/1/invoice-status",
        lambda client: client.get_invoice_status(1),
        ("URL_INVOICE_MIFACT_V3", "INVOICE_MIFACT_USERNAME", "INVOICE_MIFACT_PASSWORD", "INVOICE_MIFACT_TIMEOUT"),
        id="invoice-mifact",
    ),
    pytest.param(
        SvClient,
        responses.PATCH,
        "/reservation/1/clinic-history-crm",
        lambda client: client.update_clinic_history(reservation_id=1, clinic_history="A"),
        ("URL_SV", "SV_USERNAME", "SV_PASSWORD", "SV_TIMEOUT"),
        id="SV",
    ),
]
SERVICE_ARGS = "client_class,method,path,call,setting_names"


@pytest.mark.parametrize(SERVICE_ARGS, SERVICES)
@pytest.mark.parametrize("status", [401, 403])
@responses.activate
def test_each_client_raises_its_own_auth_error(client_class, method, path, call, setting_names, status):
    client = service_client(client_class, BASE)
    responses.post(SIGNIN, status=status, json={"message": "Unauthorized"})
    with pytest.raises(client_class.auth_error):
        call(client)
    assert client.sign_in_count == 1
    responses.replace(responses.POST, SIGNIN, json={"access_token": "t"})
    responses.add(method, f"{BASE}{path}", status=401)
    with pytest.raises(client_class.auth_error):  # a fresh token refused too
        call(client)
    assert client.sign_in_count == 3


@pytest.mark.parametrize(SERVICE_ARGS, SERVICES)
@pytest.mark.parametrize("status", [500, 502, 503])
@responses.activate
def test_each_client_raises_its_own_unavailable_error(client_class, method, path, call, setting_names, status):
    client = service_client(client_class, BASE)
    responses.post(SIGNIN, json={"access_token": "t"})
    responses.add(method, f"{BASE}{path}", status=status)
    with pytest.raises(client_class.unavailable_error):
        call(client)


@pytest.mark.parametrize(SERVICE_ARGS, SERVICES)
def test_each_client_is_built_from_its_own_settings(client_class, method, path, call, setting_names, settings):
    url, username, password, timeout = setting_names
    setattr(settings, url, "")
    with pytest.raises(client_class.not_configured_error):
        client_class.from_settings()
    for name, value in zip(setting_names, (BASE, "usuario-del-servicio", "x", 7.0), strict=True):
        setattr(settings, name, value)
    client = client_class.from_settings()
    assert (client.base_url, client.username, client.password, client.timeout) == (
        BASE,
        "usuario-del-servicio",
        "x",
        (5.0, 7.0),
    )
    assert client_class.from_settings(timeout=1.5).timeout == (1.5, 1.5)


def test_the_environment_proxies_are_read_once_for_the_base_url(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.clinica.test:3128")
    monkeypatch.setenv("NO_PROXY", "")
    proxied = DemoClient(base_url=BASE, username="u", password="p")
    assert proxied.session.proxies == {"http": "http://proxy.clinica.test:3128"}
    assert proxied.session.trust_env is False  # not re-read (nor ~/.netrc looked for) on every call
    monkeypatch.setenv("NO_PROXY", "servicio.test")
    assert DemoClient(base_url=BASE, username="u", password="p").session.proxies == {}
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/clinica.pem")
    assert DemoClient(base_url=BASE, username="u", password="p").session.verify == "/etc/ssl/clinica.pem"


@responses.activate
def test_a_call_does_not_read_the_environment(client, monkeypatch):
    responses.post(SIGNIN, json={"access_token": "tok-1"})
    responses.get(THING, json={})

    def refuse(*args, **kwargs):
        raise AssertionError("the environment was read during a call")

    monkeypatch.setattr(requests.utils, "get_environ_proxies", refuse)
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", refuse)
    monkeypatch.setattr(requests.utils, "get_netrc_auth", refuse)
    monkeypatch.setattr(requests.sessions, "get_netrc_auth", refuse)
    assert client.thing() == 200
