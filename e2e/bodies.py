"""Request bodies of the process update, as the front-end sends them (README "Example session
with curl": update data and appointment, close with a direct invoice, close with service orders)."""

from __future__ import annotations

from typing import Any

from sales.example_bodies import APPOINTMENT_DATA, MAIN_DATA

#: The README's main data, with the customer's second surname as the front-end sends it.
MAIN: dict[str, Any] = {**MAIN_DATA, "cLastNameMother": "Huamán"}


def appointment(reservation_id: int, *, doctor: str = "Dra. Rosa Salazar") -> dict[str, Any]:
    return {**APPOINTMENT_DATA, "cDoctor": doctor, "reservationId": reservation_id}


def data_and_appointment(reservation_id: int) -> dict[str, Any]:
    """Main data and an appointment, without closing."""
    return {
        **MAIN,
        **appointment(reservation_id),
        "cFacturas": {"comprobante_soles": None, "comprobante_dolares": None},
    }


def direct_invoice(clinic_history: str, url: str) -> dict[str, Any]:
    """Closed won with a direct invoice."""
    return {"cClinicHistory": clinic_history, "cFacturas": {"comprobante_soles": url, "comprobante_dolares": None}}


def service_orders(clinic_history: str, ids: list[int]) -> dict[str, Any]:
    """Closed won with service orders (and their metadata)."""
    return {
        "cClinicHistory": clinic_history,
        "cOrdenesServicio": ids,
        "cOrdenesServicioMetadata": {
            str(i): {"descripcion": "Procedimiento láser", "numero_os": f"OS-{i}"} for i in ids
        },
    }
