"""How the process update's fields are declared: each one once, in `Opportunity`'s class body, by
`text`, `time_range`, `date` or `positive_int`, with its API key, its group, its label and its
roles. The API's serializers, the case detection lists, the history, the admin's fieldsets and
the OpenAPI schema are derived from these declarations (`opportunities.models.PROCESS_FIELDS`)."""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import models

_F = TypeVar("_F", bound="models.Field[Any, Any]")


class Group(enum.Enum):
    """Whose data a field is; the value titles the field's fieldset in the admin."""

    CUSTOMER = "Cliente"
    PATIENT = "Paciente"
    APPOINTMENT = "Cita"


class Kind(enum.Enum):
    """How the API validates a field."""

    TEXT = "text"
    TIME_RANGE = "time_range"  # "HH:MM - HH:MM"
    DATE = "date"  # yyyy-MM-dd
    POSITIVE_INT = "positive_int"  # 1 .. 2**31 - 1


class Role(enum.Flag):
    """What a field does besides being stored and returned."""

    NONE = 0
    # In a list of docs/api.md "The four cases": customer and patient fields in the "main" list,
    # appointment fields in the "appointment" list.
    CASE = enum.auto()
    # Staff may correct it in the admin.
    STAFF = enum.auto()


CUSTOMER, PATIENT, APPOINTMENT = Group.CUSTOMER, Group.PATIENT, Group.APPOINTMENT
CASE, STAFF = Role.CASE, Role.STAFF


@dataclass(frozen=True)
class ProcessField:
    """One field of the process update: `key` in the API, `model_field` in the database."""

    key: str
    group: Group
    kind: Kind
    roles: Role
    help_text: str
    model_field: models.Field[Any, Any]

    @property
    def column(self) -> str:
        return self.model_field.name

    @property
    def max_length(self) -> int | None:
        return self.model_field.max_length


class ProcessFields:
    """The declared fields, in declaration order."""

    def __init__(self, fields: list[ProcessField]) -> None:
        self._fields = tuple(fields)

    def __iter__(self) -> Iterator[ProcessField]:
        return iter(self._fields)

    def columns(self, group: Group) -> tuple[str, ...]:
        """The columns of `group`'s fields."""
        return tuple(field.column for field in self._fields if field.group is group)


# The fields declared so far; `opportunities.models` reads them once `Opportunity` is defined.
DECLARED: list[ProcessField] = []


def _declare(key: str, group: Group, kind: Kind, roles: Role, help_text: str, model_field: _F) -> _F:
    DECLARED.append(ProcessField(key, group, kind, roles, help_text, model_field))
    return model_field


def text(
    key: str, group: Group, label: str, max_length: int, roles: Role = Role.NONE, *, db_index: bool = False
) -> models.CharField[Any, str]:
    """Free text; blank when never sent."""
    field = models.CharField(label, max_length=max_length, blank=True, default="", db_index=db_index)
    return _declare(key, group, Kind.TEXT, roles, "", field)


def time_range(
    key: str, group: Group, label: str, max_length: int, roles: Role = Role.NONE, *, help_text: str
) -> models.CharField[Any, str]:
    """A time range "HH:MM - HH:MM"; blank when never sent."""
    field = models.CharField(label, max_length=max_length, blank=True, default="")
    return _declare(key, group, Kind.TIME_RANGE, roles, help_text, field)


def date(
    key: str, group: Group, label: str, roles: Role = Role.NONE, *, help_text: str
) -> models.DateField[Any, datetime.date | None]:
    """A date; null when never sent."""
    return _declare(key, group, Kind.DATE, roles, help_text, models.DateField(label, null=True, blank=True))


def positive_int(
    key: str, group: Group, label: str, roles: Role = Role.NONE, *, help_text: str
) -> models.PositiveIntegerField[Any, int | None]:
    """A positive 32-bit integer; null when never sent."""
    field = models.PositiveIntegerField(label, null=True, blank=True)
    return _declare(key, group, Kind.POSITIVE_INT, roles, help_text, field)
