"""The request body parser of the API: JSON, bounded in size and nesting."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http import QueryDict
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, strict: a clear 400 for bodies nested too deeply to parse (Python's
    parser raises RecursionError, not ValueError), and no NaN, Infinity or numbers too large for a
    float (400). The body is within `API_MAX_BODY_BYTES` here (crm/bodylimit.py)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        raw = stream.read() if stream is not None else b""
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            return json.loads(raw.decode(encoding), parse_constant=_refuse_constant, parse_float=_finite_float)
        except RecursionError:
            raise ParseError("JSON parse error - nesting too deep") from None
        except LookupError:  # a charset Python does not know, or one that is not a text encoding
            raise ParseError(f"JSON parse error - unsupported charset {encoding[:40]!r}") from None
        except ValueError as exc:  # also UnicodeDecodeError
            raise ParseError(f"JSON parse error - {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # Python reads 1e999999 as inf; JSON columns (and the API, docs/api.md "Errors") have no such number.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


BODY_NOT_OBJECT_MESSAGE = "El cuerpo de la solicitud debe ser un objeto JSON"


def require_json_object(request: Request) -> dict[str, Any]:
    """The parsed body when it is a JSON object; a 400 otherwise (docs/decisions.md), including an
    empty body and a chunked one without Content-Length (DRF reads both as an empty QueryDict)."""
    data = request.data
    # DRF reads an empty body, or a chunked one without Content-Length, as {} (no stream).
    if request.stream is None or isinstance(data, QueryDict) or not isinstance(data, dict):
        raise ValidationError(BODY_NOT_OBJECT_MESSAGE)
    return data
