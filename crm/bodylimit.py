"""Request bodies are bounded by `API_MAX_BODY_BYTES` before anything reads them (README
"Decisions", request bodies).

Two pieces, one limit:

- `RequestBodyLimitMiddleware` (Django) answers the JSON 413 for a body whose declared
  `Content-Length` is over the limit, without reading it, whatever the path or the view. Without
  it such bodies reached DRF, which reads `request.body` whole (Django allows up to
  `DATA_UPLOAD_MAX_MEMORY_SIZE` there) and turned Django's `RequestDataTooBig` into a 500.
- `ChunkedRequestBodyMiddleware` (WSGI, wraps the application in `crm/wsgi.py`) reads a chunked
  body (no `Content-Length`), which Django ignores (its `WSGIRequest` reads up to Content-Length
  only), when the server has de-chunked it and says where it ends with `wsgi.input_terminated`
  (gunicorn does). It reads at most the limit plus one byte: within the limit the body is handed
  to Django with its `Content-Length`; beyond it the request is marked and the Django middleware
  answers the 413. The rest of such a body is never read by the application (the server discards
  it), so a 30 MiB body costs no more memory than a 1 MiB one.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from crm.errors import body_too_large_response

#: WSGI environ key set by `ChunkedRequestBodyMiddleware` on a chunked body over the limit.
BODY_TOO_LARGE_ENVIRON_KEY = "crm.request_body_too_large"
_READ_SIZE = 64 * 1024


def declared_length(meta: dict[str, Any]) -> int | None:
    """The request's `Content-Length` as a number, or None when absent or not a number."""
    try:
        return int(meta.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


class RequestBodyLimitMiddleware:
    """JSON 413 for every request whose body is over `API_MAX_BODY_BYTES`, before any view, form
    or parser reads it. Django logs the 413 as a WARNING (`django.request`), without traceback."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = declared_length(request.META)
        if request.META.get(BODY_TOO_LARGE_ENVIRON_KEY) or (
            length is not None and length > settings.API_MAX_BODY_BYTES
        ):
            return body_too_large_response()
        return self.get_response(request)


class ChunkedRequestBodyMiddleware:
    """WSGI middleware: a chunked request body, read up to `API_MAX_BODY_BYTES` + 1 bytes.

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
            limit = settings.API_MAX_BODY_BYTES
            body = _read_at_most(environ["wsgi.input"], limit + 1)
            if len(body) > limit:
                environ[BODY_TOO_LARGE_ENVIRON_KEY] = True
                body = b""
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
