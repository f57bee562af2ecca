"""`/` names the product and leads to the admin and the API docs (the admin's "Ver el sitio");
JSON for clients that ask for it; every other unknown path stays a JSON 404."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client

from crm.tests.test_offline_pages import SAME_ORIGIN_POLICY, policy_of

pytestmark = pytest.mark.django_db


def test_the_home_page_names_the_product_and_links_to_the_admin_and_the_docs() -> None:
    response = Client().get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert policy_of(response) == SAME_ORIGIN_POLICY
    assert "Accept" in response["Vary"]
    page = response.content.decode()
    assert "<h1>CRM de la clínica</h1>" in page and 'lang="es"' in page
    for href in ('href="/admin/"', 'href="/api/docs"', 'href="/api/redoc"', 'href="/api/schema"'):
        assert href in page
    assert "http://" not in page and "https://" not in page  # nothing from another host


@pytest.mark.parametrize("accept", ["application/json", "application/json, text/plain, */*"])
def test_clients_that_ask_for_json_get_json(accept: str) -> None:
    response = Client().get("/", HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["name"] == "CRM de la clínica"
    assert {link["rel"]: link["href"] for link in body["links"]} == {
        "admin": "/admin/",
        "docs": "/api/docs",
        "redoc": "/api/redoc",
        "schema": "/api/schema",
        "health": "/health",
    }


def test_browsers_get_html() -> None:
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert Client().get("/", HTTP_ACCEPT=accept)["Content-Type"].startswith("text/html")
    assert Client().head("/").status_code == 200


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_other_methods_are_a_json_405(method: str) -> None:
    response = getattr(Client(enforce_csrf_checks=True), method)("/")
    assert response.status_code == 405
    assert response.json() == {"statusCode": 405, "message": "Método no permitido", "error": "Method Not Allowed"}
    assert response["Allow"] == "GET, HEAD"


def test_the_admin_ver_el_sitio_link_leads_to_it(admin_client: Client) -> None:
    assert admin.site.site_url == "/"
    page = admin_client.get("/admin/").content.decode()
    assert '<a href="/">Ver el sitio</a>' in page


@pytest.mark.parametrize("path", ["/x", "/admi", "/index.html", "/api/"])
def test_other_unknown_paths_stay_json_404s(path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 404
    assert response.json()["message"] == "Ruta no encontrada"
