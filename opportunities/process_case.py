"""The fields a process update may write (derived from their declarations in `Opportunity`), and
the four cases it is classified into by the keys it carries (docs/decisions.md)."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from .models import PROCESS_FIELDS
from .process_fields import Group, Role

# The "main" and "appointment" lists of the four cases, API keys in declaration order
# (docs/decisions.md: cLastNameMother is in neither list).
MAIN_FIELDS: tuple[str, ...] = tuple(
    field.key for field in PROCESS_FIELDS if Role.CASE in field.roles and field.group in (Group.CUSTOMER, Group.PATIENT)
)
APPOINTMENT_FIELDS: tuple[str, ...] = tuple(
    field.key for field in PROCESS_FIELDS if Role.CASE in field.roles and field.group is Group.APPOINTMENT
)

# Every stored field the process update may write: API key -> model column.
FIELD_COLUMNS: dict[str, str] = {field.key: field.column for field in PROCESS_FIELDS}


class ProcessCase(enum.Enum):
    """The four cases of the docs/api.md "The four cases"."""

    APPOINTMENT_ONLY = "solo_cita"
    MAIN_ONLY = "solo_datos_principales"
    MAIN_AND_APPOINTMENT = "datos_principales_y_cita"
    OTHER = "otro"

    @property
    def has_appointment(self) -> bool:
        return self in (ProcessCase.APPOINTMENT_ONLY, ProcessCase.MAIN_AND_APPOINTMENT)


def process_case_detect(sent_fields: Iterable[str]) -> ProcessCase:
    """Classify a process-update body by the keys that were sent (docs/api.md "The four cases").

    `sent_fields` are API keys whose values count as sent (not null, not blank).
    """
    sent = set(sent_fields)
    has_main = any(field in sent for field in MAIN_FIELDS)
    has_appointment = any(field in sent for field in APPOINTMENT_FIELDS)
    if has_appointment and has_main:
        return ProcessCase.MAIN_AND_APPOINTMENT
    if has_appointment:
        return ProcessCase.APPOINTMENT_ONLY
    if has_main:
        return ProcessCase.MAIN_ONLY
    return ProcessCase.OTHER
