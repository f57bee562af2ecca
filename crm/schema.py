"""OpenAPI pieces shared by the endpoints: the error body, the documented error responses and the
Spanish texts of the public schema (docs/decisions.md, API documentation).

Everything the schema says to people is Spanish. Docstrings are developer documentation
(English) and never reach it: every operation passes its own `description`, and
`spanish_component_descriptions` replaces the serializers' docstrings.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from crm import idempotency
from crm.bodylimit import body_too_large_message
from crm.errors import error_body


class ErrorSerializer(serializers.Serializer):
    """Every error body of the API (docs/api.md "Errors")."""

    statusCode = serializers.IntegerField(help_text="Código de estado HTTP")
    message = serializers.CharField(help_text="Mensaje en español")
    error = serializers.CharField(required=False, help_text="Frase de estado HTTP (p. ej. `Bad Request`)")
    errors = serializers.DictField(  # type: ignore[assignment]  # the API's key; shadows Serializer.errors
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Errores por campo: {campo: [mensajes]}",
    )


def error_example(
    status_code: int, summary: str, message: str, errors: dict[str, list[str]] | None = None
) -> OpenApiExample:
    """A response example of the error body, exactly as the API renders it."""
    return OpenApiExample(
        summary, value=error_body(status_code, message, errors), response_only=True, status_codes=[str(status_code)]
    )


def _standard_errors() -> dict[int, tuple[str, list[OpenApiExample]]]:
    """Description and examples of the errors every operation answers alike. No 400 here: its
    examples name the operation's own fields, so each operation gives its own."""
    return {
        401: (
            "Falta el token Bearer, o es inválido o expiró",
            [
                error_example(
                    401, "Sin token", "No autenticado: envíe la cabecera Authorization: Bearer <access_token>"
                ),
                error_example(401, "Token inválido o expirado", "Token inválido o expirado"),
            ],
        ),
        404: (
            "Oportunidad no encontrada",
            [error_example(404, "Oportunidad inexistente", "Oportunidad no encontrada")],
        ),
        409: (
            "Otra solicitud con la misma `Idempotency-Key` aún se está procesando: reintente tras `Retry-After` "
            "segundos para obtener su respuesta (nada se hizo dos veces)",
            [error_example(409, "Clave en curso", idempotency.KEY_IN_PROGRESS_MESSAGE)],
        ),
        422: (
            "La `Idempotency-Key` ya se usó con otra solicitud (otro cuerpo, método o ruta): nada se modificó",
            [
                error_example(
                    422,
                    "Clave reutilizada",
                    idempotency.KEY_REUSED_MESSAGE,
                    {idempotency.HEADER: [idempotency.KEY_REUSED_MESSAGE]},
                )
            ],
        ),
        413: (
            f"Cuerpo demasiado grande (más de {settings.API_MAX_BODY_BYTES} bytes): nada se modificó",
            [
                error_example(413, "Cuerpo demasiado grande", body_too_large_message()),
            ],
        ),
        415: (
            "Content-Type distinto de application/json: nada se modificó",
            [
                error_example(415, "Content-Type no soportado", "Tipo de contenido no soportado: use application/json"),
            ],
        ),
        429: (
            "Demasiadas solicitudes desde esta dirección: espere y reintente",
            [
                error_example(429, "Demasiados intentos", "Demasiadas solicitudes; intente de nuevo en 42 s"),
            ],
        ),
        503: (
            "Base de datos no disponible: reintente tras `Retry-After` segundos",
            [
                error_example(
                    503,
                    "Base de datos no disponible",
                    "La base de datos no está disponible en este momento; intente de nuevo",
                ),
            ],
        ),
    }


def error_responses(
    *codes: int, specific: dict[int, tuple[str, list[OpenApiExample]]] | None = None
) -> dict[int, OpenApiResponse]:
    """`{status: OpenApiResponse(ErrorSerializer)}` for `codes`, for `extend_schema(responses=...)`.

    `specific` gives an operation's own description and examples for a status (required for 400,
    whose examples must name that operation's fields; e.g. a 401 of the sign-in is about the
    password, not the token).
    """
    texts = {**_standard_errors(), **(specific or {})}
    missing = [code for code in codes if code not in texts]
    if missing:
        raise ValueError(f"error_responses: give the description and examples of {missing} in `specific`")
    return {
        code: OpenApiResponse(ErrorSerializer, description=texts[code][0], examples=texts[code][1]) for code in codes
    }


def ok(serializer: Any, description: str) -> OpenApiResponse:
    """A success response with its Spanish description."""
    return OpenApiResponse(serializer, description=description)


OPPORTUNITY_ID_PARAMETER = OpenApiParameter(
    "opportunity_id", str, OpenApiParameter.PATH, description="ID de la oportunidad (17 caracteres hexadecimales)"
)
ATTACHMENT_ID_PARAMETER = OpenApiParameter(
    "attachment_id", int, OpenApiParameter.PATH, description="ID del comprobante adjunto"
)

# Safe retries (docs/api.md "Safe retries"): the request headers and the answers' headers.
IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    idempotency.HEADER,
    # Any 1 to 255 visible ASCII characters are a key; the schema asks for what clients should send,
    # a fresh UUID, so that schema-driven tests do not reuse short keys with other bodies (422).
    OpenApiTypes.UUID,
    OpenApiParameter.HEADER,
    description=(
        "Clave única por operación (un UUID nuevo; se acepta cualquier texto de 1 a 255 caracteres ASCII "
        "visibles), la misma en cada reintento: un reintento con la misma "
        "clave y el mismo cuerpo recibe la primera respuesta (con `Idempotent-Replayed: true`) sin repetir el "
        "trabajo, durante 24 h. Misma clave con otro cuerpo: 422; mientras la primera se procesa: 409."
    ),
)
IF_MATCH_PARAMETER = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    description=(
        "El `ETag` de la oportunidad tal como se leyó: si cambió desde entonces, 412 (nombra qué cambió) y no "
        "se modifica nada. Sin esta cabecera, la última actualización gana."
    ),
)
IF_NONE_MATCH_PARAMETER = OpenApiParameter(
    "If-None-Match",
    str,
    OpenApiParameter.HEADER,
    description="El `ETag` que se tiene: si sigue vigente, 304 sin cuerpo.",
)


def etag_header(*codes: int) -> OpenApiParameter:
    """The `ETag` response header of `codes`."""
    return OpenApiParameter(
        "ETag",
        str,
        OpenApiParameter.HEADER,
        response=list(codes),
        description='Versión de la oportunidad (etiqueta fuerte, p. ej. `"7"`): cambia con cada cambio',
    )


def replayed_header(*codes: int) -> OpenApiParameter:
    """The `Idempotent-Replayed` response header of `codes`."""
    return OpenApiParameter(
        idempotency.REPLAYED_HEADER,
        str,
        OpenApiParameter.HEADER,
        response=list(codes),
        enum=["true"],
        description="Presente cuando la respuesta es la guardada de una `Idempotency-Key` repetida",
    )


RETRY_AFTER_409 = OpenApiParameter(
    "Retry-After", int, OpenApiParameter.HEADER, response=[409], description="Segundos antes de reintentar"
)

NOT_MODIFIED = OpenApiResponse(description="No modificada: el `ETag` de `If-None-Match` sigue vigente (sin cuerpo)")

# The description of each schema component, by component name: the serializers' docstrings are
# developer documentation and are not published (enums keep their generated list of values).
COMPONENT_DESCRIPTIONS = {
    "Error": "Cuerpo de todo error de la API",
    "SigninInputRequest": "Credenciales de un usuario del CRM",
    "SigninOutput": "Token de acceso",
    "Health": "Estado del servicio",
    "OpportunityCreateInputRequest": (
        "Cuerpo para crear una oportunidad: `name` obligatorio y, opcionalmente, los datos de cliente, "
        "paciente y cita. Una oportunidad nueva empieza en `Prospección`."
    ),
    "OpportunityCreateOutput": "La oportunidad creada, con las claves del cuerpo que se ignoraron",
    "OpportunityOutput": "Una oportunidad (claves en camelCase)",
    "ProcessUpdateInputRequest": (
        "Cuerpo de la actualización del proceso: datos de cliente y paciente, de cita, facturas (`cFacturas`) "
        "u órdenes de servicio (`cOrdenesServicio`). Todos los campos son opcionales."
    ),
    "FacturasInputRequest": "URLs públicas de los PDF de los comprobantes",
    "ProcessUpdateResponse": "Resultado de la actualización del proceso",
    "MeetingOutput": "Una reunión (cita) de la oportunidad",
    "ActionHistoryOutput": (
        "Un registro del historial de acciones; `userName` es null cuando lo hizo el proceso periódico"
    ),
    "AttachmentOutput": "Un comprobante (PDF) adjunto; `downloadUrl` lo abre sin token hasta que expira",
    "ServiceOrderOutput": "Una orden de servicio (O.S) de la oportunidad, con su estado de facturación",
}


def spanish_component_descriptions(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: each object component gets its description from
    `COMPONENT_DESCRIPTIONS`, or none, instead of its serializer's docstring."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if "enum" in component:
            continue
        if name in COMPONENT_DESCRIPTIONS:
            component["description"] = COMPONENT_DESCRIPTIONS[name]
        else:
            component.pop("description", None)
    return result


# The operation that creates an opportunity, and the path parameter that names one: every
# operation taking that parameter gets an OpenAPI link from the create's 201 (its `id`), so that
# clients and schema-driven tests (schemathesis' stateful phase) follow real opportunities.
OPPORTUNITY_CREATE_OPERATION = "opportunity_create"
OPPORTUNITY_ID_NAME = "opportunity_id"


def opportunity_links(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: OpenAPI `links` from `POST /opportunity`'s 201 to each
    operation with an `opportunity_id` path parameter (its `If-Match` from the 201's `ETag`)."""
    operations = [
        operation
        for path in result.get("paths", {}).values()
        for method, operation in path.items()
        if method in {"get", "put", "post", "patch", "delete"}
    ]
    source = next((op for op in operations if op.get("operationId") == OPPORTUNITY_CREATE_OPERATION), None)
    if source is None or "201" not in source.get("responses", {}):
        return result
    links: dict[str, Any] = {}
    for operation in operations:
        parameters = operation.get("parameters", [])
        if not any(p.get("in") == "path" and p.get("name") == OPPORTUNITY_ID_NAME for p in parameters):
            continue
        values = {OPPORTUNITY_ID_NAME: "$response.body#/id"}
        if any(p.get("in") == "header" and p.get("name") == "If-Match" for p in parameters):
            values["header.If-Match"] = "$response.header.ETag"
        links[operation["operationId"]] = {
            "operationId": operation["operationId"],
            "parameters": values,
            "description": "La oportunidad recién creada (`id` de la respuesta 201)",
        }
    if links:
        source["responses"]["201"]["links"] = links
    return result
