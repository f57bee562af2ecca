"""Strict DRF fields for the process-update body (docs/api.md "Process update").

DRF's own fields coerce (``123`` becomes ``"123"``, ``"7"`` becomes ``7``); the API wants a
wrong JSON type to be a 400, so these fields accept only the JSON type they document.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

MAX_INT32 = 2**31 - 1

APPOINTMENT_RE = re.compile(r"^\s*([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-3]):([0-5]\d)\s*$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RESERVATION_YEARS = range(2000, 2101)


class StrictCharField(serializers.CharField):
    """A JSON string only (numbers, booleans, objects are refused); surrounding blanks trimmed;
    NUL and lone surrogate characters refused (with Spanish messages)."""

    default_error_messages = {"not_string": "Debe ser un texto."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for validator in self.validators:
            if isinstance(validator, ProhibitSurrogateCharactersValidator):
                validator.message = "No se permiten caracteres sustitutos Unicode: U+{code_point:X}."
            elif isinstance(validator, ProhibitNullCharactersValidator):
                validator.message = "No se permiten caracteres NUL."

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_string")
        return super().to_internal_value(data)


@extend_schema_field({"type": "integer", "format": "int32", "minimum": 1, "maximum": MAX_INT32})
class PositiveInt32Field(serializers.Field):
    """A JSON integer in 1..2^31-1 (booleans, strings and fractions are refused)."""

    default_error_messages = {
        "invalid": "Debe ser un número entero positivo.",
        "range": f"Debe estar entre 1 y {MAX_INT32}.",
    }

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        if not 1 <= data <= MAX_INT32:
            self.fail("range")
        return data

    def to_representation(self, value: int) -> int:
        return value


@extend_schema_field(OpenApiTypes.DATE)
class ReservationDateField(serializers.Field):
    """A real calendar date written ``yyyy-MM-dd`` (e.g. ``"2026-03-02"``), in the years
    `RESERVATION_YEARS` (a clinic reservation; anything else is a typing error)."""

    default_error_messages = {
        "invalid": "Debe ser una fecha válida con formato yyyy-MM-dd.",
        "year": "El año de la reserva debe estar entre {first} y {last}.",
    }

    def to_internal_value(self, data: Any) -> dt.date:
        if not isinstance(data, str) or not DATE_RE.match(data.strip()):
            self.fail("invalid")
        try:
            value = dt.date.fromisoformat(data.strip())
        except ValueError:
            self.fail("invalid")
        if value.year not in RESERVATION_YEARS:
            self.fail("year", first=RESERVATION_YEARS.start, last=RESERVATION_YEARS.stop - 1)
        return value

    def to_representation(self, value: dt.date) -> str:
        return value.isoformat()


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^\s*([01]\d|2[0-3]):[0-5]\d\s*-\s*([01]\d|2[0-3]):[0-5]\d\s*$",
        "example": "15:30 - 16:00",
    }
)
class AppointmentRangeField(StrictCharField):
    """A time range ``"HH:MM - HH:MM"`` with the start before the end; stored normalized."""

    default_error_messages = {
        "range_format": 'Debe tener el formato "HH:MM - HH:MM" (por ejemplo "15:30 - 16:00").',
        "range_order": "La hora de inicio debe ser anterior a la hora de fin.",
    }

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        match = APPOINTMENT_RE.match(text)
        if not match:
            self.fail("range_format")
        h1, m1, h2, m2 = match.groups()
        if (h1, m1) >= (h2, m2):
            self.fail("range_order")
        return f"{h1}:{m1} - {h2}:{m2}"


def parse_appointment(value: str) -> tuple[dt.time, dt.time] | None:
    """Split a stored ``"HH:MM - HH:MM"`` range into two times; None when it does not parse."""
    match = APPOINTMENT_RE.match(value or "")
    if not match:
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return dt.time(h1, m1), dt.time(h2, m2)


@extend_schema_field(
    {"type": "string", "format": "uri", "maxLength": 2000, "example": "https://facturas.example.com/F001-123.pdf"}
)
class HttpUrlField(StrictCharField):
    """An absolute ``http``/``https`` URL with a host (the downloader does the network checks)."""

    default_error_messages = {"url": "Debe ser una URL http o https válida."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 2000)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        try:
            parts = urlsplit(text)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            self.fail("url")
        if parts.scheme.lower() not in ("http", "https") or not host or any(c.isspace() for c in text):
            self.fail("url")
        return text


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$",
        "example": "2026-03-02 15:30:00",
        "description": "yyyy-MM-dd HH:mm:ss en la zona horaria de la clínica (TIME_ZONE)",
    }
)
class LocalDateTimeField(serializers.DateTimeField):
    """Output date-time ``yyyy-MM-dd HH:mm:ss`` in `TIME_ZONE` (docs/api.md "Endpoints").

    Not RFC 3339, so the schema documents it as a patterned string instead of `date-time`.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("format", "%Y-%m-%d %H:%M:%S")
        super().__init__(**kwargs)
