"""The fields a process update may write, and the four cases it is classified into by the keys
it carries (docs/decisions.md)."""

from __future__ import annotations

import enum
from collections.abc import Iterable

# The "main" and "appointment" field lists of the four cases (docs/decisions.md: cLastNameMother
# is in neither list).
MAIN_FIELDS: tuple[str, ...] = (
    "cLastNameFather",
    "cCustomerDocumentType",
    "cCustomerDocument",
    "cPatientsname",
    "cPatientsPaternalLastName",
    "cPatientsMaternalLastName",
    "cPatientDocument",
    "cPatientDocumentType",
    "cClinicHistory",
)
APPOINTMENT_FIELDS: tuple[str, ...] = (
    "cAppointment",
    "cDoctor",
    "cEnvironment",
    "cSpecialty",
    "cTariff",
    "cDateReservation",
)

# Every stored field the process update may write: API key -> model column.
FIELD_COLUMNS: dict[str, str] = {
    "cLastNameFather": "c_last_name_father",
    "cLastNameMother": "c_last_name_mother",
    "cCustomerDocumentType": "c_customer_document_type",
    "cCustomerDocument": "c_customer_document",
    "cPatientsname": "c_patientsname",
    "cPatientsPaternalLastName": "c_patients_paternal_last_name",
    "cPatientsMaternalLastName": "c_patients_maternal_last_name",
    "cPatientDocument": "c_patient_document",
    "cPatientDocumentType": "c_patient_document_type",
    "cClinicHistory": "c_clinic_history",
    "cAppointment": "c_appointment",
    "cDateReservation": "c_date_reservation",
    "cDoctor": "c_doctor",
    "cEnvironment": "c_environment",
    "cSpecialty": "c_specialty",
    "cTariff": "c_tariff",
    "reservationId": "reservation_id",
}


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
