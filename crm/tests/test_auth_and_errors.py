"""Sign-in, bearer authentication and the JSON error shape of every client error."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError
from rest_framework.test import APIClient

from opportunities.models import Opportunity
from sales import process_update

pytestmark = pytest.mark.django_db


def test_signin_returns_a_bearer_token_that_opens_the_api(anon_client, user, make_opportunity):
    response = anon_client.post("/auth/signin", {"username": "ventas", "password": "clave-segura-123"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    opportunity = make_opportunity()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert client.get(f"/opportunity/{opportunity.pk}").status_code == 200


def test_signin_with_wrong_password_is_401_in_the_error_shape(anon_client, user):
    response = anon_client.post("/auth/signin", {"username": "ventas", "password": "otra"}, format="json")
    assert response.status_code == 401
    assert response.json()["statusCode"] == 401
    assert response.json()["message"] == "Usuario o contraseña incorrectos"


def test_signin_without_fields_is_400_with_field_errors(anon_client):
    response = anon_client.post("/auth/signin", {"username": 5}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"username", "password"}


def test_signin_is_throttled_with_a_json_429(anon_client, user, settings, monkeypatch):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"signin": "2/min"}}
    from django.core.cache import cache

    cache.clear()
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"signin": "2/min"})
    try:
        codes = [
            anon_client.post("/auth/signin", {"username": "ventas", "password": "x"}, format="json").status_code
            for _ in range(3)
        ]
        assert codes == [401, 401, 429]
        last = anon_client.post("/auth/signin", {"username": "ventas", "password": "x"}, format="json")
        assert last.json()["statusCode"] == 429
        assert "Demasiadas solicitudes" in last.json()["message"]
    finally:
        cache.clear()


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/opportunity/abc"),
        ("post", "/opportunity"),
        ("put", "/opportunity/update-opportunity-procces/abc"),
        ("get", "/opportunity/abc/meetings"),
        ("get", "/opportunity/abc/action-history"),
        ("get", "/opportunity/abc/attachments"),
        ("get", "/opportunity/abc/attachments/1/download"),
    ],
)
def test_every_api_route_needs_a_bearer_token(anon_client, method, path):
    response = getattr(anon_client, method)(path, {}, format="json")
    assert response.status_code == 401
    assert response.json()["statusCode"] == 401
    assert response.json()["message"].startswith("No autenticado")


def test_a_forged_token_is_401(anon_client, make_opportunity):
    opportunity = make_opportunity()
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    response = anon_client.get(f"/opportunity/{opportunity.pk}")
    assert response.status_code == 401
    assert response.json() == {
        "statusCode": 401,
        "message": "Token inválido o expirado",
        "error": "Unauthorized",
    }


def test_routes_answer_with_and_without_trailing_slash(api_client, make_opportunity):
    opportunity = make_opportunity()
    assert api_client.get(f"/opportunity/{opportunity.pk}").status_code == 200
    assert api_client.get(f"/opportunity/{opportunity.pk}/").status_code == 200
    assert api_client.get("/health/").status_code == 200
    response = api_client.put(f"/opportunity/update-opportunity-procces/{opportunity.pk}/", {}, format="json")
    assert response.status_code == 200


def test_unknown_route_is_a_json_404(api_client):
    response = api_client.get("/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["statusCode"] == 404


def test_unknown_opportunity_is_404(api_client):
    response = api_client.get("/opportunity/00000000000000000")
    assert response.status_code == 404
    assert response.json()["message"] == "Oportunidad no encontrada"


def test_wrong_method_is_a_json_405(api_client, make_opportunity):
    opportunity = make_opportunity()
    response = api_client.delete(f"/opportunity/{opportunity.pk}")
    assert response.status_code == 405
    assert response.json()["message"] == "Método no permitido"


def put_raw(client: APIClient, opportunity_id: str, body: str | bytes, content_type: str = "application/json") -> Any:
    """A process update whose body is sent as these bytes, not encoded from a dict."""
    return client.put(f"/opportunity/update-opportunity-procces/{opportunity_id}", body, content_type=content_type)


def test_non_json_content_type_is_a_json_415(api_client, make_opportunity):
    response = put_raw(api_client, make_opportunity().pk, "cDoctor=x", "application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["statusCode"] == 415


# An empty body: a regression from an adversarial review (it answered a silent 200).
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"cDoctor": ', "El cuerpo de la solicitud no es JSON válido"),
        (
            '{"cOrdenesServicioMetadata": {"1": ' + "[" * 100_000 + "]" * 100_000 + "}}",
            "El cuerpo de la solicitud no es JSON válido",
        ),
        (b"", "El cuerpo de la solicitud debe ser un objeto JSON"),
    ],
    ids=["malformed", "nested-too-deeply", "empty"],
)
def test_a_body_that_is_not_a_json_object_is_a_json_400(api_client, make_opportunity, body, message):
    response = put_raw(api_client, make_opportunity().pk, body)
    assert response.status_code == 400
    assert response.json()["message"] == message


def put_while_the_update_raises(api_client: APIClient, opportunity_id: str, monkeypatch: Any, error: Exception) -> Any:
    """A process update whose service raises `error`."""

    def fail(**kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(process_update, "opportunity_process_update", fail)
    return api_client.put(f"/opportunity/update-opportunity-procces/{opportunity_id}", {}, format="json")


def test_an_unexpected_error_is_a_json_500_without_traceback(api_client, make_opportunity, monkeypatch):
    response = put_while_the_update_raises(
        api_client, make_opportunity().pk, monkeypatch, RuntimeError("secret internals")
    )
    assert response.status_code == 500
    assert response.json() == {
        "statusCode": 500,
        "message": "Error interno del servidor",
        "error": "Internal Server Error",
    }
    assert b"secret internals" not in response.content


def test_create_opportunity_requires_a_name(api_client):
    response = api_client.post("/opportunity", {"cDoctor": "Dr. Ruiz"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["errors"]


def test_create_opportunity_starts_in_prospeccion_and_presaved(api_client):
    response = api_client.post("/opportunity", {"name": "Venta láser", "cPatientsname": "Ana"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert len(body["id"]) == 17 and all(c in "0123456789abcdef" for c in body["id"])
    assert body["stage"] == "Prospección"
    assert body["isPresaved"] is True
    assert body["cFacturacionSubEstado"] is None
    assert body["cPatientsname"] == "Ana"
    assert api_client.get(f"/opportunity/{body['id']}").json()["name"] == "Venta láser"


@pytest.mark.parametrize("escaped", ["a\\u0000b", "\\ud800"])
def test_text_with_nul_or_lone_surrogates_is_a_400(api_client, make_opportunity, escaped):
    opportunity = make_opportunity()
    response = put_raw(api_client, opportunity.pk, '{"cPatientsname": "' + escaped + '"}')
    assert response.status_code == 400
    body = '{"cClinicHistory": "HC", "cOrdenesServicio": [1], "cOrdenesServicioMetadata": {"1": {"x": "%s"}}}'
    response = put_raw(api_client, opportunity.pk, body % escaped)
    assert response.status_code == 400
    assert not Opportunity.objects.get(pk=opportunity.pk).c_clinic_history


@pytest.mark.parametrize("opportunity_id", ["x" * 300, "abc%00def", "ZZZZZZZZZZZZZZZZZ", "%F0%9F%98%80"])
def test_odd_ids_are_404_not_500(api_client, opportunity_id):
    assert api_client.get(f"/opportunity/{opportunity_id}").status_code == 404
    assert (
        api_client.put(f"/opportunity/update-opportunity-procces/{opportunity_id}", {}, format="json").status_code
        == 404
    )


def test_signin_throttle_cannot_be_dodged_with_x_forwarded_for(anon_client, user, settings, monkeypatch):
    """Without a trusted proxy (NUM_PROXIES), X-Forwarded-For must not change the client's identity."""
    from django.core.cache import cache
    from rest_framework.throttling import ScopedRateThrottle

    cache.clear()
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"signin": "2/min"})
    try:
        codes = [
            anon_client.post(
                "/auth/signin",
                {"username": "ventas", "password": "x"},
                format="json",
                HTTP_X_FORWARDED_FOR=f"203.0.113.{index}",
            ).status_code
            for index in range(4)
        ]
        assert codes == [401, 401, 429, 429]
    finally:
        cache.clear()


def test_a_database_outage_is_a_json_503_with_retry_after(api_client, make_opportunity, monkeypatch):
    response = put_while_the_update_raises(
        api_client, make_opportunity().pk, monkeypatch, OperationalError("database is locked")
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["statusCode"] == 503


def test_a_deactivated_user_is_refused_on_the_next_request(
    api_client, user, make_opportunity, django_assert_num_queries
):
    opportunity = make_opportunity()
    url = f"/opportunity/{opportunity.pk}"
    with django_assert_num_queries(2):  # the token's user (read on every request) + opportunity
        assert api_client.get(url).status_code == 200
    user.is_active = False
    user.save()
    response = api_client.get(url)
    assert response.status_code == 401
    assert response.json()["statusCode"] == 401


def test_a_deleted_user_is_refused_on_the_next_request(api_client, user, make_opportunity):
    opportunity = make_opportunity()
    url = f"/opportunity/{opportunity.pk}"
    assert api_client.get(url).status_code == 200
    user.delete()
    response = api_client.get(url)
    assert response.status_code == 401
    assert response.json()["statusCode"] == 401


# --- regressions from an adversarial review ---------------------------------------------------


def test_unknown_opportunity_is_404_even_with_a_bad_body(api_client):
    response = api_client.put(
        "/opportunity/update-opportunity-procces/0123456789abcdef0", {"cDoctor": "x"}, format="json"
    )
    assert response.status_code == 404


def test_signin_with_a_null_body_answers_in_spanish(anon_client):
    response = anon_client.post("/auth/signin", "null", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["message"] == "El cuerpo de la solicitud debe ser un objeto JSON"


def test_a_lone_surrogate_is_refused_in_spanish(api_client, make_opportunity):
    response = put_raw(api_client, make_opportunity().pk, '{"cPatientsname": "\\ud800"}')
    assert response.json()["errors"]["cPatientsname"] == ["No se permiten caracteres sustitutos Unicode: U+D800."]


def test_unknown_paths_are_json_404_with_debug_on_too(api_client, settings):
    settings.DEBUG = True
    for path in ("/nope", "/opportunity/0123456789abcdef0/nope"):
        response = api_client.put(path, {}, format="json")
        assert response.status_code == 404
        assert response.json()["statusCode"] == 404


def test_a_new_opportunity_always_starts_in_prospeccion(api_client):
    response = api_client.post("/opportunity", {"name": "Venta", "stage": "Cierre ganado"}, format="json")
    assert response.status_code == 201
    assert response.json()["stage"] == "Prospección"
