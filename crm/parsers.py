"""The request body parser of the API: JSON, bounded in size and nesting."""
from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "El cuerpo de la solicitud es demasiado grande"
    default_code = "payload_too_large"


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with a size cap (`API_MAX_BODY_BYTES`, default 1 MiB) and a clear 400
    for bodies nested too deeply to parse (Python's parser raises RecursionError, not ValueError).
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        limit = int(getattr(settings, "API_MAX_BODY_BYTES", 1024 * 1024))
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge()
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nesting too deep") from None
