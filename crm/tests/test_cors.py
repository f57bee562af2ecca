"""The front-end on its own origin calls the API from a browser (docs/api.md "Calling from a
browser"): django-cors-headers for the API's paths and the origins in CORS_ALLOWED_ORIGINS only."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

FRONT = "https://crm.clinica.pe"


@pytest.fixture
def front_allowed(settings):
    settings.CORS_ALLOWED_ORIGINS = [FRONT]


def preflight(client, path, origin, method="PUT", headers="authorization, content-type, x-request-id"):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


def cors_headers(response):
    return {
        name.lower(): value for name, value in response.headers.items() if name.lower().startswith("access-control-")
    }


@pytest.mark.usefixtures("front_allowed")
def test_a_preflight_from_the_front_end_is_answered_without_authentication(anon_client, make_opportunity):
    opportunity = make_opportunity()
    response = preflight(anon_client, f"/opportunity/update-opportunity-procces/{opportunity.pk}", FRONT)
    assert response.status_code == 200
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == FRONT
    assert set(headers["access-control-allow-headers"].split(", ")) == {
        "authorization",
        "content-type",
        "idempotency-key",
        "if-match",
        "if-none-match",
        "x-request-id",
    }
    assert "PUT" in headers["access-control-allow-methods"].split(", ")
    assert int(headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in headers
    assert "origin" in response["Vary"].lower()


@pytest.mark.usefixtures("front_allowed")
@pytest.mark.parametrize("path", ["/auth/signin", "/opportunity", "/opportunity/abc/attachments/", "/health"])
def test_every_api_path_answers_the_front_ends_preflight(anon_client, path):
    response = preflight(anon_client, path, FRONT, method="POST")
    assert response.status_code == 200 and response["Access-Control-Allow-Origin"] == FRONT


@pytest.mark.usefixtures("front_allowed")
def test_answers_to_the_front_end_expose_the_request_id_etag_and_retry_after(api_client, make_opportunity):
    opportunity = make_opportunity()
    response = api_client.get(f"/opportunity/{opportunity.pk}", HTTP_ORIGIN=FRONT)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == FRONT
    exposed = {"ETag", "X-Request-ID", "Retry-After", "Idempotent-Replayed"}
    assert set(response["Access-Control-Expose-Headers"].split(", ")) == exposed
    assert "Access-Control-Allow-Credentials" not in response


@pytest.mark.usefixtures("front_allowed")
def test_error_answers_carry_the_cors_headers_so_the_page_can_read_them(anon_client, settings):
    settings.API_MAX_BODY_BYTES = 100
    refused = anon_client.get("/opportunity/0123456789abcdef0", HTTP_ORIGIN=FRONT)
    too_large = anon_client.post("/opportunity", data="x" * 200, content_type="application/json", HTTP_ORIGIN=FRONT)
    unknown = anon_client.get("/opportunity/a/b/c/d", HTTP_ORIGIN=FRONT)
    for response, status in ((refused, 401), (too_large, 413), (unknown, 404)):
        assert response.status_code == status
        assert response["Content-Type"].startswith("application/json")
        assert response["Access-Control-Allow-Origin"] == FRONT


@pytest.mark.usefixtures("front_allowed")
def test_a_foreign_origin_gets_no_access_control_header(anon_client, api_client):
    foreign = "https://otra.example.com"
    answered = preflight(anon_client, "/opportunity", foreign, method="POST")
    assert cors_headers(answered) == {}
    assert cors_headers(api_client.get("/health", HTTP_ORIGIN=foreign)) == {}
    # Same scheme and host, another port: another origin.
    assert cors_headers(api_client.get("/health", HTTP_ORIGIN="https://crm.clinica.pe:8443")) == {}


@pytest.mark.usefixtures("front_allowed")
@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/login/", "/api/schema/", "/api/docs/", "/api/redoc/", "/metrics", "/"]
)
def test_the_admin_and_the_docs_are_not_opened_to_the_front_end(anon_client, path):
    assert cors_headers(anon_client.get(path, HTTP_ORIGIN=FRONT)) == {}
    assert cors_headers(preflight(anon_client, path, FRONT, method="GET")) == {}


def test_without_cors_allowed_origins_no_origin_is_allowed(anon_client):
    response = preflight(anon_client, "/opportunity", FRONT, method="POST")
    assert cors_headers(response) == {}
    assert cors_headers(anon_client.get("/health", HTTP_ORIGIN=FRONT)) == {}


def test_a_preflight_of_the_docs_page_is_a_json_405_not_a_500(anon_client):
    response = preflight(anon_client, "/api/docs/", FRONT, method="GET")
    assert response.status_code == 405 and response["Content-Type"].startswith("application/json")
