"""The OpenAPI side of the safe retries of the opportunity endpoints (docs/api.md "Safe retries"):
the headers each operation takes and answers, and the 412 of a stale `If-Match`."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter

from crm.schema import (
    IDEMPOTENCY_KEY_PARAMETER,
    IF_MATCH_PARAMETER,
    IF_NONE_MATCH_PARAMETER,
    RETRY_AFTER_409,
    error_example,
    etag_header,
    replayed_header,
)
from opportunities.versions import CHANGED_MESSAGE

CREATE_HEADERS: list[OpenApiParameter] = [
    IDEMPOTENCY_KEY_PARAMETER,
    etag_header(201),
    replayed_header(201),
    RETRY_AFTER_409,
]
DETAIL_HEADERS: list[OpenApiParameter] = [IF_NONE_MATCH_PARAMETER, etag_header(200, 304)]
PROCESS_UPDATE_HEADERS: list[OpenApiParameter] = [
    IDEMPOTENCY_KEY_PARAMETER,
    IF_MATCH_PARAMETER,
    etag_header(200, 412),
    replayed_header(200),
    RETRY_AFTER_409,
]

PRECONDITION_FAILED_ERRORS: tuple[str, list[OpenApiExample]] = (
    "La oportunidad cambió desde el `ETag` enviado en `If-Match`: nada se modificó; `errors` nombra qué "
    "cambió y `ETag` trae la versión actual",
    [
        error_example(
            412,
            "If-Match desactualizado",
            f"{CHANGED_MESSAGE} (cambió: cDoctor)",
            {"cDoctor": ["cambió en la versión 3 (Oportunidad actualizada, ventas, 2026-12-05 09:14:02)"]},
        )
    ],
)
