"""Request ids (docs/operations.md "Monitoring"): every request has one, taken from `X-Request-ID`
or generated (django-log-request-id), returned in the response's `X-Request-ID`, written on every
log line (`request_id`) and sent on every outside call. A command run gets one of its own.

django-log-request-id takes the incoming header as it is; `RequestIdHeaderMiddleware` runs before
it and drops a header that is not a plain id (so a client cannot put newlines or kilobytes into
logs and response headers): a new id is generated instead.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.http import HttpRequest, HttpResponse
from log_request_id import local

HEADER = "X-Request-ID"
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestIdHeaderMiddleware:
    """Drop an incoming `X-Request-ID` that is not 1-128 of `A-Z a-z 0-9 . _ : -`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.META.get("HTTP_X_REQUEST_ID")
        if given is not None and not _VALID.fullmatch(given):
            del request.META["HTTP_X_REQUEST_ID"]
        return self.get_response(request)


def current_request_id() -> str | None:
    """The id of the request (or command run) this thread works for, or None."""
    return getattr(local, "request_id", None)


def outgoing_headers() -> dict[str, str]:
    """Headers to add to an outside call: the current request id, when there is one."""
    request_id = current_request_id()
    return {HEADER: request_id} if request_id and _VALID.fullmatch(request_id) else {}


@contextmanager
def request_id_for_run() -> Iterator[str]:
    """Give this thread a fresh id for the length of a command run (logs and outside calls)."""
    previous = current_request_id()
    local.request_id = run_id = uuid.uuid4().hex
    try:
        yield run_id
    finally:
        if previous is None:
            del local.request_id
        else:
            local.request_id = previous
