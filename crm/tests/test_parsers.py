"""The JSON body parser: what a client can send that is not JSON is a 400, never a 500."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("charset", ["bz2_codec", "rot13", "hex"])
def test_a_charset_that_is_not_a_text_encoding_is_a_400(anon_client, charset):
    response = anon_client.post(
        "/auth/signin", b'{"username": "a", "password": "b"}', content_type=f"application/json; charset={charset}"
    )
    assert response.status_code == 400
    assert response.json()["statusCode"] == 400
    assert response.json()["message"] == "El cuerpo de la solicitud no es JSON válido"


def test_an_unknown_charset_is_read_as_utf8(anon_client, user):
    """Django falls back to DEFAULT_CHARSET for a charset it does not know."""
    response = anon_client.post(
        "/auth/signin",
        b'{"username": "ventas", "password": "clave-segura-123"}',
        content_type="application/json; charset=no-such-charset",
    )
    assert response.status_code == 200
