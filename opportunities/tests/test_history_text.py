"""The action history read by people: one Spanish sentence per record, field labels and
old -> new values, for every action the services write, and a graceful fallback otherwise; the
history admin shows it with one time, in the clinic's zone."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from opportunities.history_text import history_describe, history_user, readable_value
from opportunities.models import ActionHistory


def describe(action: str, data: Any) -> tuple[str, list[str]]:
    text = history_describe(action=action, data=data)
    return text.title, text.details


def test_opportunity_created() -> None:
    assert describe("opportunity_created", {"name": "Consulta - Lucía", "stage": "Prospección"}) == (
        "Creó la oportunidad «Consulta - Lucía»",
        ["Etapa: Prospección"],
    )


def test_opportunity_updated_through_the_api_names_the_fields_and_their_values() -> None:
    data = {
        "case": "solo_datos_principales",
        "changes": {
            "cClinicHistory": {"old": "", "new": "HC-000123"},
            "cPatientsname": {"old": "Lucia", "new": "Lucía"},
            "cDateReservation": {"old": None, "new": "2026-03-02"},
            "reservationId": {"old": None, "new": 9876},
        },
    }
    assert describe("opportunity_updated", data) == (
        "Actualizó los datos del cliente y del paciente desde el sistema de ventas",
        [
            "Historia clínica: (vacío) → HC-000123",
            "Nombre del paciente: Lucia → Lucía",
            "Fecha de reserva: (vacío) → 02/03/2026",
            "Reserva (SV): (vacío) → 9876",
        ],
    )
    assert describe("opportunity_updated", {"case": "solo_cita", "changes": {"cDoctor": {"old": "A", "new": "B"}}})[
        0
    ].startswith("Actualizó la cita")


def test_opportunity_corrected_in_the_admin() -> None:
    data = {
        "via": "admin",
        "changes": {"name": {"old": "Venta", "new": "Venta (corregida)"}, "amount": {"old": None, "new": "120.50"}},
    }
    assert describe("opportunity_updated", data) == (
        "Corrigió datos en la administración",
        ["Nombre: Venta → Venta (corregida)", "Monto: (vacío) → 120.50"],
    )


def test_meetings() -> None:
    created = {
        "meetingId": 3,
        "reservationId": 9876,
        "name": "Cita: Lucía Quispe (Dermatología)",
        "date_start": "2026-03-02 15:30:00",
        "date_end": "2026-03-02 16:00:00",
        "doctor": "Dra. Paredes",
        "environment": "",
        "specialty": "Dermatología",
        "tariff": None,
    }
    assert describe("meeting_created", created) == (
        "Creó la cita «Cita: Lucía Quispe (Dermatología)» (reserva 9876)",
        ["Inicio: 02/03/2026 15:30", "Fin: 02/03/2026 16:00", "Doctor: Dra. Paredes", "Especialidad: Dermatología"],
    )
    updated = {
        "meetingId": 3,
        "reservationId": 9876,
        "changes": {"doctor": {"old": "Dra. Paredes", "new": "Dr. Rojas"}},
    }
    assert describe("meeting_updated", updated) == (
        "Cambió la cita de la reserva 9876",
        ["Doctor: Dra. Paredes → Dr. Rojas"],
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"stage": "Cierre ganado", "subState": "factura_directa", "via": "cFacturas", "attachmentIds": [1, 2]},
            ("Cerrada como Cierre ganado con factura directa", ["Comprobantes adjuntados: 2"]),
        ),
        (
            {
                "stage": "Cierre ganado",
                "subState": "orden_servicio_pendiente_factura",
                "via": "cOrdenesServicio",
                "serviceOrderIds": [456],
            },
            ("Cerrada como Cierre ganado con O.S 456", ["Sub-estado de facturación: O.S pendiente de factura"]),
        ),
        (
            {"stage": "Cierre ganado", "subState": "orden_servicio_pendiente_factura", "via": "cOrdenesServicio"},
            (
                "Cerrada como Cierre ganado con orden de servicio",
                ["Sub-estado de facturación: O.S pendiente de factura"],
            ),
        ),
        (
            {"stage": "Cierre ganado", "subState": "factura_directa", "via": "cOrdenesServicio", "serviceOrderId": 456},
            ("Facturación completada con la O.S 456", ["Sub-estado de facturación: Factura directa"]),
        ),
        ({"stage": "Cierre ganado"}, ("Cerrada como Cierre ganado", [])),
    ],
)
def test_closed_won(data: dict[str, Any], expected: tuple[str, list[str]]) -> None:
    assert describe("closed_won", data) == expected


def test_invoices_and_service_orders() -> None:
    assert describe("invoice_attached", {"attachmentIds": [7]}) == (
        "Adjuntó comprobantes de factura directa",
        ["Comprobantes adjuntados: 1"],
    )
    assert describe("service_orders_registered", {"serviceOrderIds": [456]}) == ("Registró la O.S 456", [])
    assert describe("service_orders_registered", {"serviceOrderIds": [456, 457]}) == ("Registró las O.S 456, 457", [])
    assert describe(
        "service_order_invoiced",
        {"serviceOrderId": 456, "invoiceResultHeadId": 901, "attachmentIds": [3], "urls": {"soles": "http://x"}},
    ) == ("La O.S 456 fue facturada", ["Comprobantes adjuntados: 1", "Cabecera en invoice-mifact: 901"])


def test_a_void_and_a_reissue_read_as_sentences() -> None:
    voided = {
        "serviceOrderId": 456,
        "invoiceResultHeadId": 900,
        "attachmentIds": [3, 4],
        "subState": "orden_servicio_pendiente_factura",
    }
    assert describe("service_order_invoice_voided", voided) == (
        "Se anuló el comprobante de la O.S 456",
        [
            "Comprobante anulado en invoice-mifact: cabecera 900",
            "PDF marcados como anulados: 2",
            "La O.S queda pendiente hasta que se reemita el comprobante",
            "Sub-estado de facturación: O.S pendiente de factura",
        ],
    )
    replaced = {
        "serviceOrderId": 456,
        "oldInvoiceResultHeadId": 900,
        "newInvoiceResultHeadId": 901,
        "attachmentIds": [5],
        "replacedAttachmentIds": [3],
    }
    assert describe("service_order_invoice_replaced", replaced) == (
        "Se reemitió el comprobante de la O.S 456",
        [
            "Comprobante anterior en invoice-mifact: cabecera 900 (queda reemplazado)",
            "Comprobante nuevo en invoice-mifact: cabecera 901",
            "Comprobantes adjuntados: 1",
            "PDF anteriores marcados como reemplazados: 1",
        ],
    )


# Every action kind with the data its service writes (opportunities/services.py, meetings.py,
# billing/services/, sales/process_update.py): a new kind without a sample here fails the walk.
SAMPLES: dict[str, list[dict[str, Any]]] = {
    "opportunity_created": [{"name": "Consulta - Lucía", "stage": "Prospección"}],
    "opportunity_updated": [
        {"case": "solo_cita", "changes": {"cDoctor": {"old": "A", "new": "B"}, "reservationId": {"old": 1, "new": 2}}},
        {"via": "admin", "changes": {"c_patients_maternal_last_name": {"old": "Mamani", "new": "Mamaní"}}},
    ],
    "meeting_created": [
        {
            "meetingId": 3,
            "reservationId": 9876,
            "name": "Cita",
            "date_start": "2026-03-02 15:30:00",
            "date_end": "2026-03-02 16:00:00",
            "doctor": "Dra. Paredes",
            "environment": "Consultorio 3",
            "specialty": "Dermatología",
            "tariff": "Particular",
        }
    ],
    "meeting_updated": [
        {"meetingId": 3, "reservationId": 9876, "changes": {"date_start": {"old": "2026-03-02 15:30:00", "new": None}}}
    ],
    "closed_won": [
        {"stage": "Cierre ganado", "subState": "factura_directa", "via": "cFacturas", "attachmentIds": [1]},
        {
            "stage": "Cierre ganado",
            "subState": "orden_servicio_pendiente_factura",
            "via": "cOrdenesServicio",
            "serviceOrderIds": [456],
        },
        {"stage": "Cierre ganado", "subState": "factura_directa", "via": "cOrdenesServicio", "serviceOrderId": 456},
    ],
    "invoice_attached": [{"attachmentIds": [7, 8]}],
    "service_orders_registered": [{"serviceOrderIds": [456, 457]}],
    "service_order_invoiced": [
        {"serviceOrderId": 456, "invoiceResultHeadId": 901, "attachmentIds": [3], "urls": {"soles": "http://x/a.pdf"}}
    ],
    "service_order_invoice_replaced": [
        {
            "serviceOrderId": 456,
            "oldInvoiceResultHeadId": 900,
            "newInvoiceResultHeadId": 901,
            "attachmentIds": [5],
            "replacedAttachmentIds": [3],
        }
    ],
    "service_order_invoice_voided": [
        {"serviceOrderId": 456, "invoiceResultHeadId": 900, "attachmentIds": [3], "subState": "factura_directa"}
    ],
}


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in _keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in _keys(item)}
    return set()


def raw_keys_in(text: str, data: Any) -> set[str]:
    """The stored data's keys, and any camelCase or snake_case word, found in `text`."""
    words = set(re.findall(r"[\w.]+", text))
    code_like = {word for word in words if re.fullmatch(r"[a-z]+[A-Z]\w*|[a-z]+_[a-z_]+", word)}
    return code_like | (words & _keys(data))


def test_every_action_kind_reads_without_raw_keys() -> None:
    assert set(SAMPLES) == set(ActionHistory.Action.values)
    for action, samples in SAMPLES.items():
        for data in samples:
            text = history_describe(action=action, data=data)
            assert not raw_keys_in(str(text), data), (action, str(text))
            # Also when a record's shape is not the one its describer expects.
            fallback = history_describe(action=action, data={**data, "changes": None, "unexpectedKey": 1})
            assert not raw_keys_in(str(fallback), {**data, "unexpectedKey": 1}), (action, str(fallback))


@pytest.mark.parametrize(
    ("action", "data", "title"),
    [
        ("something_new", {"a": 1, "nested": {"b": 2}}, "Acción «something_new»"),
        ("closed_won", ["not", "a", "dict"], "Cierre ganado"),
        (
            "opportunity_updated",
            {"changes": "not a dict"},
            "Actualizó datos de la oportunidad desde el sistema de ventas",
        ),
        ("service_orders_registered", {}, "Registró órdenes de servicio"),
        ("meeting_created", {"reservationId": None}, "Creó la cita «sin nombre»"),
    ],
)
def test_unknown_actions_and_unexpected_data_still_read(action: str, data: Any, title: str) -> None:
    assert describe(action, data)[0] == title


def test_values_read_as_people_write_them() -> None:
    assert readable_value(None) == readable_value("") == readable_value([]) == "(vacío)"
    assert readable_value(True) == "sí"
    assert readable_value("2026-03-02") == "02/03/2026"
    assert readable_value("2026-03-02 15:30:00") == "02/03/2026 15:30"
    assert readable_value("orden_servicio_pendiente_factura") == "O.S pendiente de factura"
    assert readable_value([456, 457]) == "456, 457"


@pytest.mark.django_db
def test_the_history_admin_reads_in_spanish_with_one_time_in_lima(staff_client: Client, make_opportunity: Any) -> None:
    opportunity = make_opportunity()
    record = ActionHistory.objects.create(
        opportunity=opportunity,
        action="opportunity_updated",
        data={"case": "solo_datos_principales", "changes": {"cClinicHistory": {"old": "", "new": "HC-000123"}}},
    )
    local = timezone.localtime(record.created_at).strftime("%d/%m/%Y %H:%M")
    assert str(record) == f"Oportunidad actualizada · {local}"
    assert history_user(record) == "Proceso automático"

    page = staff_client.get(reverse("admin:opportunities_actionhistory_change", args=[record.pk])).content.decode()
    assert f"Oportunidad actualizada · {local}" in page  # the heading, in Lima time
    assert "Historia clínica: (vacío) → HC-000123" in page
    assert "<details" in page and "&quot;solo_datos_principales&quot;" in page
    utc = record.created_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
    assert utc not in page  # no UTC time anywhere

    listing = staff_client.get(reverse("admin:opportunities_actionhistory_changelist")).content.decode()
    assert "Actualizó los datos del cliente y del paciente desde el sistema de ventas" in listing
    assert local in listing and "Proceso automático" in listing
