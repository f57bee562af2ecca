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
