"""Every error answer outside the admin is JSON (docs/api.md "Errors"): the few that the framework
and its libraries answer themselves (a 405 of a docs or schema view, WhiteNoise's 405 for a static
file, the development server's HTML 404 for a missing static file) are rewritten here into the
error shape, keeping their status and headers such as `Allow`. The admin's pages stay HTML: they
are for people in a browser."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

from crm.errors import error_body

_MESSAGES = {
    404: "Ruta no encontrada",
    405: "Método no permitido",
}
_KEPT_HEADERS = ("Allow", "Retry-After", "X-Request-ID", "Vary")


class JsonErrorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if response.status_code < 400 or request.path.startswith("/admin/"):
            return response
        content_type = response.get("Content-Type", "")
        if content_type.startswith("application/json"):
            return response
        status = response.status_code
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        json_answer: HttpResponse = JsonResponse(
            error_body(status, _MESSAGES.get(status, phrase)), status=status, json_dumps_params={"ensure_ascii": False}
        )
        for header in _KEPT_HEADERS:
            if header in response:
                json_answer[header] = response[header]
        return json_answer
