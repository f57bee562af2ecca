"""The admin login guard (django-axes) and its independence from the API sign-in."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_admin_login_locks_out_after_repeated_failures(django_user_model, settings):
    settings.AXES_FAILURE_LIMIT = 3
    django_user_model.objects.create_user(username="recepcion", password="la-clave-buena-1", is_staff=True)
    client = Client()
    login = reverse("admin:login")
    codes = [client.post(login, {"username": "recepcion", "password": "mala"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # the form again twice, then locked out at the limit
    locked = client.post(login, {"username": "recepcion", "password": "la-clave-buena-1"})
    assert locked.status_code == 429  # even the right password, for this username and address
    # Another address is not locked out by this one.
    other = Client(REMOTE_ADDR="203.0.113.9")
    assert other.post(login, {"username": "recepcion", "password": "la-clave-buena-1"}).status_code == 302


def test_api_signin_is_not_counted_by_the_admin_lockout(anon_client, user, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(4):
        assert (
            anon_client.post("/auth/signin", {"username": "ventas", "password": "x"}, format="json").status_code == 401
        )
    response = anon_client.post("/auth/signin", {"username": "ventas", "password": "clave-segura-123"}, format="json")
    assert response.status_code == 200


def test_the_lockout_is_an_admin_page_that_says_how_long_and_what_to_do(django_user_model, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = 0.25  # hours
    django_user_model.objects.create_user(username="recepcion", password="la-clave-buena-1", is_staff=True)
    client = Client()
    for _ in range(2):
        locked = client.post(reverse("admin:login"), {"username": "recepcion", "password": "mala"})
    assert locked.status_code == 429 and locked["Content-Type"].startswith("text/html")
    page = locked.content.decode()
    assert "CRM Clínica · Administración" in page and "Acceso bloqueado temporalmente" in page
    assert "Hubo 2 intentos fallidos" in page and "El bloqueo dura 15 minutos" in page
    assert "pida a un administrador del CRM" in page
    assert f'href="{reverse("admin:login")}">Volver al inicio de sesión</a>' in page


def test_lock_durations_read_in_spanish():
    from crm.admin_ui.lockout import duration_text

    assert [duration_text(m) for m in (1, 15, 60, 90, 120)] == [
        "1 minuto",
        "15 minutos",
        "1 hora",
        "1 hora y 30 minutos",
        "2 horas",
    ]
