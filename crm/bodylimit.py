"""Request bodies are bounded by `API_MAX_BODY_BYTES` before anything reads them (docs/api.md
"Errors"): the limit is compared in one place, `RequestBodyLimitMiddleware`.

`ChunkedRequestBodyMiddleware` (WSGI, wraps the application in `crm/wsgi.py`) only gives a
chunked body the `Content-Length` Django needs (its `WSGIRequest` reads up to Content-Length only,
so it reads a chunked body as empty). It does so when the server has de-chunked the body and says
where it ends with `wsgi.input_terminated` (gunicorn does), and reads at most the limit plus one
byte: a longer body reaches Django as its first limit + 1 bytes, which the Django middleware then
refuses like any other. The rest of such a body is never read by the application (the server
discards it), so a 30 MiB body costs no more memory than a 1 MiB one.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from crm.errors import error_body

_READ_SIZE = 64 * 1024


def body_too_large_message() -> str:
    """The Spanish message of every 413: the body is over `API_MAX_BODY_BYTES`."""
    return f"El cuerpo de la solicitud es demasiado grande (máximo {settings.API_MAX_BODY_BYTES} bytes)"


class RequestBodyLimitMiddleware:
    """JSON 413 for every request whose body is over `API_MAX_BODY_BYTES`, whatever the path or
    the view, before any view, form or parser reads it. Django logs the 413 as a WARNING
    (`django.request`), without traceback."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django reads a Content-Length that is not a number as no body
        if length > settings.API_MAX_BODY_BYTES:
            return JsonResponse(error_body(413, body_too_large_message()), status=413)
        return self.get_response(request)


class ChunkedRequestBodyMiddleware:
    """WSGI middleware: a chunked request body, read up to `API_MAX_BODY_BYTES` + 1 bytes and
    handed on with its `Content-Length`.

    Only when the request has no `Content-Length`, says `Transfer-Encoding`, and the server
    promises that `wsgi.input` ends where the body ends (`wsgi.input_terminated`, PEP 3333
    extension; gunicorn sets it). Servers that do not de-chunk (Django's development server)
    are left alone: Django then reads such a body as empty.
    """

    def __init__(self, application: Callable[..., Iterable[bytes]]) -> None:
        self.application = application

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if (
            not environ.get("CONTENT_LENGTH")
            and environ.get("HTTP_TRANSFER_ENCODING")
            and environ.get("wsgi.input_terminated")
        ):
            body = _read_at_most(environ["wsgi.input"], settings.API_MAX_BODY_BYTES + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.application(environ, start_response)


def _read_at_most(stream: Any, size: int) -> bytes:
    buffer = bytearray()
    while len(buffer) < size:
        piece = stream.read(min(_READ_SIZE, size - len(buffer)))
        if not piece:
            break
        buffer += piece
    return bytes(buffer)
