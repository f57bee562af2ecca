"""Bodies over API_MAX_BODY_BYTES are a JSON 413, logged as a WARNING, and change nothing.

Through Django's test client (declared Content-Length) and through the WSGI application gunicorn
runs (`crm.wsgi.application`, chunked bodies). crm/tests/test_real_server.py sends the same
bodies, up to 30 MiB, to a real gunicorn.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from typing import Any

import pytest

from opportunities.models import ActionHistory, Opportunity

MIB = 1024 * 1024


def big_body(size: int, field: str = "cDoctor") -> str:
    """A valid JSON object of `size` bytes (one long string value)."""
    head = '{"' + field + '": "'
    return head + "a" * (size - len(head) - 2) + '"}'


def assert_is_413_logged_as_warning(response: Any, caplog: Any) -> None:
    assert response.status_code == 413, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["statusCode"] == 413
    assert body["error"] == "Request Entity Too Large"
    assert body["message"].startswith("El cuerpo de la solicitud es demasiado grande")
    records = [r for r in caplog.records if r.name.startswith(("django", "crm"))]
    assert any(r.levelno == logging.WARNING for r in records), [r.getMessage() for r in records]
    assert not [r for r in records if r.levelno >= logging.ERROR or r.exc_info], [
        (r.levelname, r.getMessage()) for r in records
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("size", [int(1.5 * MIB), 3 * MIB], ids=["1.5MiB", "3MiB"])
@pytest.mark.parametrize("endpoint", ["signin", "create", "process-update"])
def test_a_body_over_the_limit_is_a_json_413_that_changes_nothing(
    endpoint, size, anon_client, api_client, make_opportunity, caplog
):
    opportunity = make_opportunity(c_doctor="Dra. Paredes")
    ActionHistory.objects.create(opportunity=opportunity, action="opportunity_created", data={})
    before = (Opportunity.objects.count(), ActionHistory.objects.count())
    caplog.set_level(logging.INFO)

    if endpoint == "signin":
        response = anon_client.post("/auth/signin", big_body(size, "username"), content_type="application/json")
    elif endpoint == "create":
        response = api_client.post("/opportunity", big_body(size, "name"), content_type="application/json")
    else:
        response = api_client.put(
            f"/opportunity/update-opportunity-procces/{opportunity.pk}", big_body(size), content_type="application/json"
        )

    assert_is_413_logged_as_warning(response, caplog)
    assert (Opportunity.objects.count(), ActionHistory.objects.count()) == before
    opportunity.refresh_from_db()
    assert opportunity.c_doctor == "Dra. Paredes"


@pytest.mark.django_db
def test_the_limit_is_api_max_body_bytes_exactly(anon_client, user, settings):
    settings.API_MAX_BODY_BYTES = 4096
    at_limit = json.dumps({"username": "ventas", "password": "clave-segura-123", "pad": "x" * 4000})
    at_limit = at_limit[:-2] + "x" * (4096 - len(at_limit)) + at_limit[-2:]
    assert len(at_limit.encode()) == 4096
    assert anon_client.post("/auth/signin", at_limit, content_type="application/json").status_code == 200
    over = at_limit[:-2] + "x" + at_limit[-2:]
    response = anon_client.post("/auth/signin", over, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["message"] == "El cuerpo de la solicitud es demasiado grande (máximo 4096 bytes)"


@pytest.mark.django_db
def test_djangos_own_body_limit_never_refuses_first_a_body_the_api_accepts(api_client, make_opportunity, settings):
    """API_MAX_BODY_BYTES is the only limit: a body within it but over Django's default in-memory
    limit (2.5 MiB) is read and validated, not refused with Django's RequestDataTooBig."""
    settings.API_MAX_BODY_BYTES = 3 * MIB
    opportunity = make_opportunity()
    response = api_client.put(
        f"/opportunity/update-opportunity-procces/{opportunity.pk}",
        big_body(int(2.6 * MIB), "cDateReservation"),
        content_type="application/json",
    )
    assert response.status_code == 400, response.content[:300]
    assert set(response.json()["errors"]) == {"cDateReservation"}


class CountingStream:
    """A request body of `size` bytes that counts how much of it the application reads."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        size = self.left if size is None or size < 0 else min(size, self.left)
        self.left -= size
        self.read_bytes += size
        return b"a" * size


def call_wsgi(path: str, body_stream: Any) -> tuple[str, dict[str, str], bytes]:
    """One chunked POST through `crm.wsgi.application`, as gunicorn presents it (no
    Content-Length, `wsgi.input_terminated`). Like Django's test client, the request signals do
    not close the test's database connection."""
    from wsgiref.util import setup_testing_defaults

    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from crm.wsgi import application

    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "CONTENT_TYPE": "application/json",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": body_stream,
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "SERVER_NAME": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
    }
    setup_testing_defaults(environ)
    environ.pop("CONTENT_LENGTH", None)
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = application(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"], content


def test_a_chunked_body_over_the_limit_is_a_413_read_no_further_than_the_limit(settings, caplog):
    settings.API_MAX_BODY_BYTES = 64 * 1024
    stream = CountingStream(30 * MIB)
    caplog.set_level(logging.INFO)
    status, headers, content = call_wsgi("/auth/signin", stream)
    assert status.startswith("413"), content[:300]
    assert json.loads(content)["statusCode"] == 413
    assert stream.read_bytes <= 64 * 1024 + 1


def test_a_chunked_body_within_the_limit_is_read(settings):
    # A signin body with a wrong type: refused by validation before any database access, which
    # shows that the body was read (Django alone reads a chunked body as empty).
    status, headers, content = call_wsgi("/auth/signin", io.BytesIO(b'{"username": 5, "password": "x"}'))
    assert status.startswith("400"), content
    assert set(json.loads(content)["errors"]) == {"username"}
