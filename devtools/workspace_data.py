"""A small clinic day for the staff workspace's tests (unit and browser): sales waiting for an
invoice with their O.S (one stuck on configuration, one unknown to invoice-mifact), closed sales
of both ways over several weeks, SV deliveries and run records, at times relative to `now`.

What it holds (`Workspace`): 3 sales wait for an invoice (oldest: José Peña's, 10 days), 4
pending O.S (one per age range: 30 min, 2 h, 3 days, 10 days), 2 of them with an error (one for
the clinic's IT, one for billing staff), 2 SV deliveries pending and 1 failed, a partial
`poll_invoices` run (invoice-mifact not configured) and a good `sync_sv` run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from billing.models import OpportunityServiceOrder
from jobs.models import CommandRun
from opportunities.models import ActionHistory, Opportunity, SvDelivery

# The sample sales' ids (no digits: a search for an O.S number or a document never finds one by its id).
SAMPLE_OPPORTUNITY_IDS = tuple(letter * 17 for letter in "abcdef")
NOT_CONFIGURED = "invoice-mifact: URL_INVOICE_MIFACT_V3 no está configurada"
UNKNOWN_789 = "invoice-mifact: invoice-mifact respondió 404 para la O.S 789"


@dataclass
class Workspace:
    now: dt.datetime
    lucia: Opportunity
    jose: Opportunity
    ramon: Opportunity
    maria: Opportunity
    carlos: Opportunity
    prospect: Opportunity
    orders: dict[int, OpportunityServiceOrder] = field(default_factory=dict)
    closings: list[ActionHistory] = field(default_factory=list)


def _at(model: Any, row: Any, **times: dt.datetime) -> None:
    """Set auto-managed times (`auto_now_add`) after the fact."""
    model.objects.filter(pk=row.pk).update(**times)
    for name, value in times.items():
        setattr(row, name, value)


def _history(
    opportunity: Opportunity, action: str, data: dict[str, Any], at: dt.datetime, user: str | None = "ventas"
) -> ActionHistory:
    record = ActionHistory.objects.create(opportunity=opportunity, action=action, data=data, user_name=user)
    _at(ActionHistory, record, created_at=at)
    return record


def _order(
    opportunity: Opportunity, service_order_id: int, registered: dt.datetime, **fields: Any
) -> OpportunityServiceOrder:
    """An O.S registered at `registered`; `fields` are the model's (last_checked_at, last_error, ...)."""
    row = OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=service_order_id, **fields)
    _at(OpportunityServiceOrder, row, created_at=registered)
    return row


def _sale(letter: str, name: str, patient: tuple[str, str, str], **fields: Any) -> Opportunity:
    """A *Cierre ganado* sale whose id is one letter 17 times; `patient` is (first name, paternal
    surname, clinic history)."""
    first_name, paternal, clinic_history = patient
    return Opportunity.objects.create(
        id=letter * 17,
        name=name,
        c_patientsname=first_name,
        c_patients_paternal_last_name=paternal,
        c_clinic_history=clinic_history,
        stage="Cierre ganado",
        **fields,
    )


def seed_workspace(now: dt.datetime | None = None) -> Workspace:
    """Write the clinic day described in the module docstring; return its rows. The sales' ids
    have no digits, so a search for an O.S number or a document never finds one by its id."""
    now = now or timezone.now()
    hour, day = dt.timedelta(hours=1), dt.timedelta(days=1)
    waiting = {"c_facturacion_sub_estado": "orden_servicio_pendiente_factura"}
    direct = {"c_facturacion_sub_estado": "factura_directa", "is_presaved": False}
    lucia = _sale(
        "a",
        "Consulta dermatología - Lucía Quispe",
        ("Lucía", "Quispe", "HC-000123"),
        c_patients_maternal_last_name="Mamani",
        c_patient_document="71234567",
        c_doctor="Dr. Rojas",
        reservation_id=9876,
        **waiting,
    )
    jose = _sale("b", "Procedimiento láser - José Peña", ("José", "Peña", "HC-000456"), **waiting)
    ramon = _sale("c", "Control - Ramón Núñez", ("Ramón", "Núñez", "HC-000789"), **waiting)
    maria = _sale("d", "Ecografía - María Huamán", ("María", "Huamán", "HC-000321"), **direct)
    carlos = _sale("e", "Consulta - Carlos Ríos", ("Carlos", "", "HC-000654"), **direct)
    prospect = Opportunity.objects.create(id="fffffffffffffffff", name="Prospecto - Ana Torres", c_patientsname="Ana")
    space = Workspace(now, lucia, jose, ramon, maria, carlos, prospect)

    minute = dt.timedelta(minutes=1)
    lucia_456 = {"numero_os": "OS-456", "descripcion": "Consulta dermatología"}
    jose_789 = {"numero_os": "OS-789", "descripcion": "Procedimiento láser"}
    configuration = {"last_error": NOT_CONFIGURED, "last_error_kind": "configuration"}
    unknown = {"last_error": UNKNOWN_789, "last_error_kind": "unknown_order"}
    space.orders[456] = _order(
        lucia, 456, now - 3 * day, metadata=lucia_456, last_checked_at=now - 10 * minute, **configuration
    )
    space.orders[457] = _order(lucia, 457, now - 2 * hour, last_checked_at=now - 5 * minute)
    space.orders[789] = _order(
        jose, 789, now - 10 * day, metadata=jose_789, last_checked_at=now - 20 * minute, **unknown
    )
    space.orders[790] = _order(ramon, 790, now - hour / 2)
    space.orders[455] = _order(
        maria,
        455,
        now - 35 * day,
        facturado=True,
        invoiced_at=now - 28 * day,  # a week after registration, as its history says below
        last_checked_at=now - 28 * day,
        invoice_result_head_id=901,
    )

    _history(lucia, "opportunity_created", {"name": lucia.name, "stage": "Prospección"}, now - 4 * day)
    _history(
        lucia,
        "opportunity_updated",
        {
            "case": "datos_principales_y_cita",
            "changes": {
                "cClinicHistory": {"old": "", "new": "HC-000123"},
                "cDoctor": {"old": "Dra. Paredes", "new": "Dr. Rojas"},
            },
        },
        now - 4 * day + hour,
    )
    _history(
        lucia,
        "meeting_created",
        {
            "meetingId": 1,
            "reservationId": 9876,
            "name": "Cita: Lucía Quispe Mamani (Dermatología)",
            "date_start": "2026-03-02 15:30:00",
            "date_end": "2026-03-02 16:00:00",
            "doctor": "Dr. Rojas",
            "environment": "Consultorio 3",
            "specialty": "Dermatología",
            "tariff": "Particular",
        },
        now - 4 * day + hour,
    )
    _history(lucia, "service_orders_registered", {"serviceOrderIds": [456, 457]}, now - 3 * day)
    space.closings.append(
        _history(
            lucia,
            "closed_won",
            {
                "stage": "Cierre ganado",
                "subState": "orden_servicio_pendiente_factura",
                "via": "cOrdenesServicio",
                "serviceOrderIds": [456, 457],
            },
            now - 3 * day,
        )
    )
    _history(
        lucia,
        "opportunity_updated",
        {"via": "admin", "changes": {"cPatientsMaternalLastName": {"old": "Mamani", "new": "Mamaní"}}},
        now - 2 * day,
        user="recepcion",
    )
    space.closings.append(
        _history(
            jose,
            "closed_won",
            {"stage": "Cierre ganado", "subState": "orden_servicio_pendiente_factura", "via": "cOrdenesServicio"},
            now - 10 * day,
        )
    )
    space.closings.append(
        _history(
            ramon,
            "closed_won",
            {
                "stage": "Cierre ganado",
                "subState": "orden_servicio_pendiente_factura",
                "via": "cOrdenesServicio",
                "serviceOrderIds": [790],
            },
            now - hour / 2,
        )
    )
    space.closings.append(
        _history(
            maria,
            "closed_won",
            {"stage": "Cierre ganado", "subState": "orden_servicio_pendiente_factura", "via": "cOrdenesServicio"},
            now - 35 * day,
        )
    )
    # Its O.S invoiced a week later: a second closed_won of the same sale, not a new closing.
    _history(
        maria,
        "closed_won",
        {"stage": "Cierre ganado", "subState": "factura_directa", "via": "cOrdenesServicio", "serviceOrderId": 455},
        now - 28 * day,
        user=None,
    )
    _history(
        maria,
        "service_order_invoiced",
        {"serviceOrderId": 455, "invoiceResultHeadId": 901, "attachmentIds": [1], "urls": {"soles": "x"}},
        now - 28 * day,
        user=None,
    )
    space.closings.append(
        _history(
            carlos,
            "closed_won",
            {"stage": "Cierre ganado", "subState": "factura_directa", "via": "cFacturas", "attachmentIds": [2]},
            now - 8 * day,
        )
    )
    # An old closing, outside the chart's 12 weeks.
    _history(
        prospect,
        "closed_won",
        {"stage": "Cierre ganado", "subState": "factura_directa", "via": "cFacturas"},
        now - 200 * day,
    )

    deliveries = ((lucia, "pending"), (jose, "pending"), (ramon, "failed"), (maria, "delivered"))
    for index, (opportunity, status) in enumerate(deliveries):
        SvDelivery.objects.create(
            opportunity=opportunity,
            reservation_id=9000 + index,
            clinic_history=opportunity.c_clinic_history,
            status=status,
            attempts=20 if status == "failed" else 1,
            last_error="no se pudo conectar con SV (ConnectionError)" if status != "delivered" else "",
        )
    poll = CommandRun.objects.create(
        command="poll_invoices",
        host="app-1",
        outcome=CommandRun.Outcome.PARTIAL,
        counts={"pending": 4, "checked": 0},
        fatal="URL_INVOICE_MIFACT_V3 no está configurada",
    )
    _at(CommandRun, poll, started_at=now - 3 * dt.timedelta(minutes=1), finished_at=now - 3 * dt.timedelta(minutes=1))
    sync = CommandRun.objects.create(command="sync_sv", host="app-1", outcome=CommandRun.Outcome.OK, counts={})
    _at(CommandRun, sync, started_at=now - 2 * dt.timedelta(minutes=1), finished_at=now - 2 * dt.timedelta(minutes=1))
    events = CommandRun.objects.create(command="send_events", host="app-1", outcome=CommandRun.Outcome.OK, counts={})
    _at(CommandRun, events, started_at=now - dt.timedelta(seconds=30), finished_at=now - dt.timedelta(seconds=29))
    return space
