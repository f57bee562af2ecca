"""Errors: the application's own (raised by services), and the one place that maps every error
to the API's JSON shape (docs/api.md "Errors").

Every error answer is JSON ``{"statusCode": int, "message": str}`` with optional ``"error"`` (the
HTTP reason phrase) and ``"errors"`` (``{field: [messages]}``). Messages are Spanish.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.csrf import csrf_failure as django_csrf_failure
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from crm.admin_ui.errors import admin_error_page, is_admin_path

logger = logging.getLogger(__name__)

INVALID_DATA_MESSAGE = "La solicitud contiene datos inválidos"

_MESSAGES: dict[type[exceptions.APIException], str] = {
    exceptions.NotAuthenticated: "No autenticado: envíe la cabecera Authorization: Bearer <access_token>",
    exceptions.AuthenticationFailed: "Token inválido o expirado",
    exceptions.PermissionDenied: "No tiene permiso para realizar esta acción",
    exceptions.NotFound: "Recurso no encontrado",
    exceptions.MethodNotAllowed: "Método no permitido",
    exceptions.UnsupportedMediaType: "Tipo de contenido no soportado: use application/json",
    exceptions.NotAcceptable: "Formato de respuesta no aceptable",
    exceptions.ParseError: "El cuerpo de la solicitud no es JSON válido",
}


class ApplicationError(Exception):
    """Base of the errors services raise when a request cannot be carried out. Services know
    nothing of HTTP: `api_exception_handler` maps each kind to a status (`APPLICATION_STATUS`).

    `message` is Spanish and shown to API users; `errors` names the fields involved
    (``{field: [messages]}``, dotted keys for nested fields) when there are any.
    """

    def __init__(
        self, message: str, *, errors: dict[str, list[str]] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.headers = headers or {}


class InvalidRequest(ApplicationError):
    """The request breaks a rule (a missing `reservationId`, a close without clinic history, a
    comprobante that could not be downloaded); nothing was changed."""


class NotFound(ApplicationError):
    """What the request names does not exist."""


class Conflict(ApplicationError):
    """The request collides with another one still being carried out (the same `Idempotency-Key`
    in progress); retrying later gets the first one's answer."""


class PreconditionFailed(ApplicationError):
    """A condition of the request (`If-Match`) no longer holds: the resource changed since the
    client read it. Nothing was changed."""


class Unprocessable(ApplicationError):
    """The request is well formed but cannot be honoured as sent (an `Idempotency-Key` reused for
    another request); nothing was changed."""


APPLICATION_STATUS: dict[type[ApplicationError], int] = {
    InvalidRequest: 400,
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    Unprocessable: 422,
}


class ApiError(exceptions.APIException):
    """An error of the API layer itself (views, not services) with an explicit Spanish message,
    status and optional per-field errors; rendered as ``{"statusCode", "message", "errors"?}``.
    """

    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, status_code: int = 400, errors: dict[str, list[str]] | None = None):
        super().__init__(detail=message)
        self.status_code = status_code
        self.message = message
        self.errors = errors


def error_body(status_code: int, message: str, errors: Any = None) -> dict[str, Any]:
    """Build the error body for `status_code` with the reason phrase in `error`."""
    try:
        reason = HTTPStatus(status_code).phrase
    except ValueError:
        reason = "Error"
    body: dict[str, Any] = {"statusCode": status_code, "message": message, "error": reason}
    if errors:
        body["errors"] = errors
    return body


def _messages(detail: Any) -> list[str]:
    if isinstance(detail, (list, tuple)):
        return [str(item) for item in detail if not isinstance(item, (dict, list))]
    return [str(detail)]


def field_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as `{field: [messages]}` with dotted keys for nested fields
    (`cFacturas.comprobante_soles`, `cOrdenesServicio.0`), as docs/api.md "Endpoints" shapes it."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = str(key) if not prefix else (prefix if key == "non_field_errors" else f"{prefix}.{key}")
            for field, messages in field_errors(value, name).items():
                flat.setdefault(field, []).extend(messages)
    elif isinstance(detail, list) and any(isinstance(item, (dict, list)) for item in detail):
        for index, item in enumerate(detail):
            if isinstance(item, (dict, list)) and item:
                for field, messages in field_errors(item, f"{prefix}.{index}" if prefix else str(index)).items():
                    flat.setdefault(field, []).extend(messages)
            elif item and not isinstance(item, (dict, list)):
                flat.setdefault(prefix or "non_field_errors", []).append(str(item))
    else:
        flat[prefix or "non_field_errors"] = _messages(detail)
    return flat


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler that renders every error in the API's shape, never a traceback."""
    if isinstance(exc, ApplicationError):
        code = next((code for kind, code in APPLICATION_STATUS.items() if isinstance(exc, kind)), 400)
        return Response(error_body(code, exc.message, exc.errors), status=code, headers=exc.headers)
    if isinstance(exc, ApiError):
        return Response(error_body(exc.status_code, exc.message, exc.errors), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, DatabaseOperationalError):
        # The database is down or too busy: not the client's fault, and worth retrying.
        logger.error("Database unavailable in %s: %s", context.get("view"), exc)
        unavailable = Response(
            error_body(503, "La base de datos no está disponible en este momento; intente de nuevo"), status=503
        )
        unavailable["Retry-After"] = "5"
        return unavailable
    handled = drf_exception_handler(exc, context)
    if handled is None:
        logger.exception("Unhandled error in %s", context.get("view"), exc_info=exc)
        return Response(error_body(500, "Error interno del servidor"), status=500)
    response: Response = handled  # DRF's answer, whose body is replaced below

    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            body = error_body(400, INVALID_DATA_MESSAGE, field_errors(detail))
        else:
            messages = _messages(detail)
            body = error_body(400, messages[0] if messages else INVALID_DATA_MESSAGE)
    elif isinstance(exc, exceptions.Throttled):
        wait = getattr(exc, "wait", None)  # set by DRF's Throttled.__init__
        throttled = "Demasiadas solicitudes; intente de nuevo"
        if wait is not None:
            throttled += f" en {int(wait) + 1} s"
        body = error_body(exc.status_code, throttled)
    else:
        known = next((m for cls, m in _MESSAGES.items() if isinstance(exc, cls)), None)
        body = error_body(response.status_code, known or str(getattr(exc, "detail", "Error")))
    response.data = body
    return response


def json_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django handler404 for paths no route matches (the admin's page under /admin/)."""
    if is_admin_path(request):
        return admin_error_page(request, 404)
    return JsonResponse(error_body(404, "Ruta no encontrada"), status=404)


def json_500(request: HttpRequest) -> HttpResponse:
    """Django handler500: a JSON body without a traceback (the admin's page under /admin/)."""
    if is_admin_path(request):
        return admin_error_page(request, 500)
    return JsonResponse(error_body(500, "Error interno del servidor"), status=500)


def json_400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """Django handler400 (e.g. a disallowed Host header)."""
    return JsonResponse(error_body(400, "Solicitud inválida"), status=400)


def json_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django handler403 (the admin's page under /admin/, e.g. a list the user may not see)."""
    if is_admin_path(request):
        return admin_error_page(request, 403)
    return JsonResponse(error_body(403, "Acceso denegado"), status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a JSON 403 everywhere but the admin, which keeps Django's page (it is a
    browser form and that page tells staff what to do). API views use bearer tokens and are
    exempt; this covers any other view that some day is not."""
    if is_admin_path(request):
        return django_csrf_failure(request, reason)
    return JsonResponse(error_body(403, "Solicitud rechazada: falló la verificación CSRF"), status=403)
