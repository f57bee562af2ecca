"""Every answer outside the admin is JSON: unknown paths for every method, and CSRF failures.

Django's test client skips the CSRF check unless asked: these clients enforce it, as a real
server does (crm/tests/test_real_server.py sends the same requests over HTTP).
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

pytestmark = pytest.mark.django_db

UNKNOWN_PATHS = [
    "/opportunity/update-opportunity-process/1",  # a typo of the route's own spelling
    "/opportunity/update-opportunity-procces/0123456789abcdef0%2Fx",  # %2F: a slash in the id
    "/nope",
    "/opportunity/0123456789abcdef0/nope/",
]


@pytest.fixture(params=["anonymous", "bearer"])
def strict_client(request, user):
    client = APIClient(enforce_csrf_checks=True)
    if request.param == "bearer":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
@pytest.mark.parametrize("path", UNKNOWN_PATHS)
def test_an_unknown_path_is_a_json_404_for_every_method(strict_client, method, path):
    response = getattr(strict_client, method)(path, {"cDoctor": "x"}, format="json")
    assert response.status_code == 404, response.content[:200]
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"statusCode": 404, "message": "Ruta no encontrada", "error": "Not Found"}


@pytest.mark.urls("crm.tests.urls_csrf")
def test_a_csrf_failure_outside_the_admin_is_a_json_403():
    response = APIClient(enforce_csrf_checks=True).post("/formulario-protegido", {"a": "b"})
    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {
        "statusCode": 403,
        "message": "Solicitud rechazada: falló la verificación CSRF",
        "error": "Forbidden",
    }


def test_a_csrf_failure_in_the_admin_keeps_djangos_page():
    response = APIClient(enforce_csrf_checks=True).post("/admin/login/", {"username": "a", "password": "b"})
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert b"CSRF" in response.content
