"""The process-update bodies of the README "Example session with curl": the OpenAPI schema's
request examples, and the bodies the tests send."""

from __future__ import annotations

from typing import Any

# 8.1, in two parts: the customer and patient data, and the appointment.
MAIN_DATA: dict[str, Any] = {
    "cLastNameFather": "Quispe",
    "cCustomerDocumentType": "DNI",
    "cCustomerDocument": "45678912",
    "cPatientsname": "Lucía",
    "cPatientsPaternalLastName": "Quispe",
    "cPatientsMaternalLastName": "Mamani",
    "cPatientDocument": "71234567",
    "cPatientDocumentType": "DNI",
}
APPOINTMENT_DATA: dict[str, Any] = {
    "cAppointment": "15:30 - 16:00",
    "cDateReservation": "2026-03-02",
    "cDoctor": "Dra. Paredes",
    "cEnvironment": "Consultorio 3",
    "cSpecialty": "Dermatología",
    "cTariff": "Particular",
}
DATA_AND_APPOINTMENT: dict[str, Any] = {
    **MAIN_DATA,
    **APPOINTMENT_DATA,
    "reservationId": 98765,
    "cFacturas": {"comprobante_soles": None, "comprobante_dolares": None},
}
CLOSE_WITH_INVOICE: dict[str, Any] = {
    "cClinicHistory": "HC-000123",
    "cPatientsname": "Lucía",
    "cFacturas": {"comprobante_soles": "https://facturas.example.com/F001-123.pdf", "comprobante_dolares": None},
}
CLOSE_WITH_SERVICE_ORDERS: dict[str, Any] = {
    "cClinicHistory": "HC-000123",
    "cOrdenesServicio": [456],
    "cOrdenesServicioMetadata": {"456": {"descripcion": "Procedimiento láser", "numero_os": "OS-456"}},
}
