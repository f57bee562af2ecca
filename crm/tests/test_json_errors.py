"""Error answers made by the framework or its libraries themselves are JSON too, outside the admin."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/", "/api/schema/", "/metrics", "/health/live"])
def test_a_wrong_method_on_a_page_or_the_schema_is_a_json_405_with_allow(anon_client, settings, path):
    settings.METRICS_TOKEN = "t"
    response = anon_client.put(path)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"statusCode": 405, "message": "Método no permitido", "error": "Method Not Allowed"}
    assert "GET" in response["Allow"]


def test_the_admin_keeps_its_own_error_pages():
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "a", "password": "b"})
    assert response.status_code == 403  # no CSRF token: Django's page, for a person in a browser
    assert response["Content-Type"].startswith("text/html")


def test_the_admin_address_without_the_slash_leads_to_the_admin(anon_client):
    response = anon_client.get("/admin")
    assert response.status_code == 302 and response["Location"] == "/admin/"
