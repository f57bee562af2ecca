"""Under /admin/, 403, 404 and 500 are the admin's HTML pages (Spanish, its header, a way back),
with DEBUG off; everywhere else the API keeps its JSON (docs/admin.md "Error pages")."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def bare_staff(django_user_model: Any) -> Client:
    """A staff user without any permission."""
    user = django_user_model.objects.create_user(username="nueva", password="x", is_staff=True)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def assert_admin_page(response: Any, status: int, title: str) -> str:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "CRM Clínica · Administración" in page and title in page
    assert '<a class="button" href="/admin/">Volver al inicio</a>' in page
    return page


def test_a_list_the_user_may_not_see_is_the_admins_403_page(bare_staff: Client, settings: Any) -> None:
    assert settings.DEBUG is False
    response = bare_staff.get(reverse("admin:billing_opportunityserviceorder_changelist"))
    page = assert_admin_page(response, 403, "No tiene permiso para ver esta página")
    assert "Ventas, Facturación o Supervisión" in page and 'id="user-tools"' in page


@pytest.mark.parametrize("path", ["/admin/desconocido/", "/admin/billing/nada/", "/admin/sin-barra"])
def test_an_unknown_admin_page_is_the_admins_404_page(admin_client: Client, path: str) -> None:
    assert_admin_page(admin_client.get(path), 404, "Página no encontrada")


def test_an_admin_page_that_fails_is_the_admins_500_page(admin_user: Any, monkeypatch: Any) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("roto")

    monkeypatch.setattr("sales.admin_site.start_page", broken)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    page = assert_admin_page(client.get("/admin/"), 500, "Error interno del servidor")
    assert "avise a TI de la clínica" in page and "roto" not in page


def test_outside_the_admin_the_errors_stay_json(bare_staff: Client) -> None:
    response = bare_staff.get("/administracion/no-existe")
    assert response.status_code == 404 and response.json()["statusCode"] == 404
