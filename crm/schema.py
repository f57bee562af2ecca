"""OpenAPI pieces shared by the endpoints: the error body and the documented error responses."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """Every error body of the API (CONTRACT.md section 4)."""

    statusCode = serializers.IntegerField(help_text="HTTP status code")
    message = serializers.CharField(help_text="Mensaje en español")
    error = serializers.CharField(required=False, help_text="HTTP reason phrase")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Errores por campo: {campo: [mensajes]}",
    )


_DESCRIPTIONS = {
    400: "Datos inválidos (nada se modificó)",
    401: "Falta el token Bearer, o es inválido o expiró",
    404: "Recurso no encontrado",
    415: "Content-Type distinto de application/json",
    429: "Demasiadas solicitudes",
    503: "Servicio no disponible",
}

_EXAMPLES = {
    400: [
        OpenApiExample(
            "reservationId faltante",
            value={"statusCode": 400, "message": "El campo reservationId no puede estar vacío",
                   "error": "Bad Request",
                   "errors": {"reservationId": ["El campo reservationId no puede estar vacío"]}},
            response_only=True,
            status_codes=["400"],
        )
    ],
    401: [
        OpenApiExample(
            "sin token",
            value={"statusCode": 401,
                   "message": "No autenticado: envíe la cabecera Authorization: Bearer <access_token>",
                   "error": "Unauthorized"},
            response_only=True,
            status_codes=["401"],
        )
    ],
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """`{status: OpenApiResponse(ErrorSerializer)}` for `codes`, for `extend_schema(responses=...)`."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS.get(code, "Error"),
                              examples=_EXAMPLES.get(code, []))
        for code in codes
    }
