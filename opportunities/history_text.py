"""The action history read by people: each record as a Spanish sentence with the fields' labels
and old -> new values (docs/admin.md "Reading the history").

`history_describe(action, data)` knows every action the services write (docs/decisions.md,
"History") and the shapes of their `data`; a record it does not know (an older or newer action,
unexpected data) still reads as its action's label with its top-level values, never as an error.
Field labels are the models' verbose names: the API keys of the process update map to the
opportunity's columns through `FIELD_COLUMNS`, the meeting's keys are its own column names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models

from .models import ActionHistory, FacturacionSubEstado, Meeting, Opportunity
from .process_case import FIELD_COLUMNS, ProcessCase

EMPTY = "(vacío)"
ARROW = "→"
PROCESS_USER = "Proceso automático"

# Keys of the admin's corrections that are not process-update keys.
_OWN_KEYS = {"name": "name", "amount": "amount"}

CASE_TITLES = {
    ProcessCase.APPOINTMENT_ONLY.value: "Actualizó la cita",
    ProcessCase.MAIN_ONLY.value: "Actualizó los datos del cliente y del paciente",
    ProcessCase.MAIN_AND_APPOINTMENT.value: "Actualizó los datos del paciente y la cita",
    ProcessCase.OTHER.value: "Actualizó datos de la oportunidad",
}
FROM_SALES_APP = "desde el sistema de ventas"
FROM_ADMIN = "en la administración"

_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DATETIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(:\d{2})?$")


@dataclass(frozen=True)
class HistoryText:
    """One record for people: a sentence (`title`) and its details, one line each."""

    title: str
    details: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join([self.title, *self.details])


def _capitalized(label: Any) -> str:
    text = str(label)
    return text[:1].upper() + text[1:]


def _verbose_name(model: type[models.Model], column: str) -> str | None:
    try:
        return _capitalized(model._meta.get_field(column).verbose_name)  # type: ignore[union-attr]
    except FieldDoesNotExist:
        return None


def opportunity_field_label(key: str) -> str:
    """The label of a process-update API key (`cDoctor` -> "Doctor") or an opportunity column."""
    column = FIELD_COLUMNS.get(key) or _OWN_KEYS.get(key) or key
    return _verbose_name(Opportunity, column) or key


def meeting_field_label(key: str) -> str:
    """The label of a meeting's column (`date_start` -> "Inicio")."""
    return _verbose_name(Meeting, key) or key


def readable_value(value: Any) -> str:
    """A history value for people: empty as "(vacío)", dates as dd/mm/yyyy (times already in
    the clinic's zone, as the history stores them), sub-states by their label, lists joined."""
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return "sí" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(readable_value(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    if text in FacturacionSubEstado.values:
        return str(FacturacionSubEstado(text).label)
    if match := _DATE_RE.match(text):
        year, month, day = match.groups()
        return f"{day}/{month}/{year}"
    if match := _DATETIME_RE.match(text):
        year, month, day, hour, minute, _ = match.groups()
        return f"{day}/{month}/{year} {hour}:{minute}"
    return text


def _change_lines(changes: Any, label: Any) -> list[str]:
    if not isinstance(changes, Mapping):
        return []
    lines = []
    for key, change in changes.items():
        if isinstance(change, Mapping) and ("old" in change or "new" in change):
            old, new = readable_value(change.get("old")), readable_value(change.get("new"))
            lines.append(f"{label(key)}: {old} {ARROW} {new}")
        else:
            lines.append(f"{label(key)}: {readable_value(change)}")
    return lines


def _ids(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return [] if value in (None, "") else [str(value)]


def _service_orders(ids: list[str]) -> str:
    return f"O.S {', '.join(ids)}"


def _comprobantes(value: Any) -> list[str]:
    count = len(_ids(value))
    if not count:
        return []
    return [f"Comprobantes adjuntados: {count}"]


def _sub_state_line(data: Mapping[str, Any]) -> list[str]:
    sub_state = data.get("subState")
    if not sub_state:
        return []
    return [f"Sub-estado de facturación: {readable_value(sub_state)}"]


def _opportunity_updated(data: Mapping[str, Any]) -> HistoryText:
    if data.get("via") == "admin":
        title = f"Corrigió datos {FROM_ADMIN}"
    else:
        title = f"{CASE_TITLES.get(str(data.get('case')), 'Actualizó datos de la oportunidad')} {FROM_SALES_APP}"
    return HistoryText(title, _change_lines(data.get("changes"), opportunity_field_label))


def _meeting_created(data: Mapping[str, Any]) -> HistoryText:
    name = data.get("name") or "sin nombre"
    title = f"Creó la cita «{name}»"
    if data.get("reservationId") is not None:
        title += f" (reserva {data['reservationId']})"
    keys = ("date_start", "date_end", "doctor", "environment", "specialty", "tariff")
    details = [f"{meeting_field_label(key)}: {readable_value(data[key])}" for key in keys if data.get(key)]
    return HistoryText(title, details)


def _meeting_updated(data: Mapping[str, Any]) -> HistoryText:
    title = "Cambió la cita"
    if data.get("reservationId") is not None:
        title += f" de la reserva {data['reservationId']}"
    return HistoryText(title, _change_lines(data.get("changes"), meeting_field_label))


def _closed_won(data: Mapping[str, Any]) -> HistoryText:
    stage = data.get("stage") or "Cierre ganado"
    via = data.get("via")
    if via == "cFacturas":
        return HistoryText(f"Cerrada como {stage} con factura directa", _comprobantes(data.get("attachmentIds")))
    if via == "cOrdenesServicio" and data.get("serviceOrderId") is not None:
        return HistoryText(
            f"Facturación completada con la {_service_orders(_ids(data['serviceOrderId']))}", _sub_state_line(data)
        )
    if via == "cOrdenesServicio":
        ids = _ids(data.get("serviceOrderIds"))
        title = f"Cerrada como {stage} con {_service_orders(ids) if ids else 'orden de servicio'}"
        return HistoryText(title, _sub_state_line(data))
    return HistoryText(f"Cerrada como {stage}", _sub_state_line(data))


def _service_orders_registered(data: Mapping[str, Any]) -> HistoryText:
    ids = _ids(data.get("serviceOrderIds"))
    if len(ids) == 1:
        return HistoryText(f"Registró la {_service_orders(ids)}")
    return HistoryText(f"Registró las {_service_orders(ids)}" if ids else "Registró órdenes de servicio")


def _service_order_invoiced(data: Mapping[str, Any]) -> HistoryText:
    ids = _ids(data.get("serviceOrderId"))
    details = _comprobantes(data.get("attachmentIds"))
    if data.get("invoiceResultHeadId") is not None:
        details.append(f"Cabecera en invoice-mifact: {data['invoiceResultHeadId']}")
    return HistoryText(f"La {_service_orders(ids)} fue facturada" if ids else "O.S facturada", details)


def _head(value: Any) -> str:
    return f"cabecera {value}" if value not in (None, "") else "sin cabecera"


def _service_order_invoice_replaced(data: Mapping[str, Any]) -> HistoryText:
    ids = _ids(data.get("serviceOrderId"))
    title = f"Se reemitió el comprobante de la {_service_orders(ids)}" if ids else "Se reemitió un comprobante de O.S"
    details = [
        f"Comprobante anterior en invoice-mifact: {_head(data.get('oldInvoiceResultHeadId'))} (queda reemplazado)",
        f"Comprobante nuevo en invoice-mifact: {_head(data.get('newInvoiceResultHeadId'))}",
        *_comprobantes(data.get("attachmentIds")),
    ]
    if replaced := len(_ids(data.get("replacedAttachmentIds"))):
        details.append(f"PDF anteriores marcados como reemplazados: {replaced}")
    return HistoryText(title, details)


def _service_order_invoice_voided(data: Mapping[str, Any]) -> HistoryText:
    ids = _ids(data.get("serviceOrderId"))
    title = f"Se anuló el comprobante de la {_service_orders(ids)}" if ids else "Se anuló un comprobante de O.S"
    details = [f"Comprobante anulado en invoice-mifact: {_head(data.get('invoiceResultHeadId'))}"]
    if voided := len(_ids(data.get("attachmentIds"))):
        details.append(f"PDF marcados como anulados: {voided}")
    details.append("La O.S queda pendiente hasta que se reemita el comprobante")
    return HistoryText(title, [*details, *_sub_state_line(data)])


# Labels of the data keys the services write, for records read by `_fallback` (an older or newer
# shape): a key without a label stays out of the sentence (it is in the technical details).
KEY_LABELS = {
    "name": "Nombre",
    "stage": "Etapa",
    "subState": "Sub-estado de facturación",
    "via": "Forma de cierre",
    "case": "Caso",
    "serviceOrderId": "O.S",
    "serviceOrderIds": "O.S",
    "invoiceResultHeadId": "Cabecera en invoice-mifact",
    "oldInvoiceResultHeadId": "Cabecera anterior en invoice-mifact",
    "newInvoiceResultHeadId": "Cabecera nueva en invoice-mifact",
    "attachmentIds": "Comprobantes",
    "replacedAttachmentIds": "Comprobantes reemplazados",
    "reservationId": "Reserva (SV)",
    "meetingId": "Cita",
}


def _fallback(action: str, data: Any) -> HistoryText:
    label = ActionHistory.Action(action).label if action in ActionHistory.Action.values else f"Acción «{action}»"
    details = []
    if isinstance(data, Mapping):
        details = [
            f"{KEY_LABELS[key]}: {readable_value(value)}"
            for key, value in data.items()
            if key in KEY_LABELS and not isinstance(value, Mapping)
        ]
    return HistoryText(str(label), details)


def _invoice_attached(data: Mapping[str, Any]) -> HistoryText:
    return HistoryText("Adjuntó comprobantes de factura directa", _comprobantes(data.get("attachmentIds")))


DESCRIBE: dict[str, Callable[[Mapping[str, Any]], HistoryText]] = {
    ActionHistory.Action.OPPORTUNITY_UPDATED.value: _opportunity_updated,
    ActionHistory.Action.MEETING_CREATED.value: _meeting_created,
    ActionHistory.Action.MEETING_UPDATED.value: _meeting_updated,
    ActionHistory.Action.CLOSED_WON.value: _closed_won,
    ActionHistory.Action.INVOICE_ATTACHED.value: _invoice_attached,
    ActionHistory.Action.SERVICE_ORDERS_REGISTERED.value: _service_orders_registered,
    ActionHistory.Action.SERVICE_ORDER_INVOICED.value: _service_order_invoiced,
    ActionHistory.Action.SERVICE_ORDER_INVOICE_REPLACED.value: _service_order_invoice_replaced,
    ActionHistory.Action.SERVICE_ORDER_INVOICE_VOIDED.value: _service_order_invoice_voided,
}


def history_describe(*, action: str, data: Any) -> HistoryText:
    """The record `action` with `data` as Spanish text (see the module docstring)."""
    if not isinstance(data, Mapping):
        return _fallback(action, data)
    if action == ActionHistory.Action.OPPORTUNITY_CREATED:
        details = [f"Etapa: {data['stage']}"] if data.get("stage") else []
        return HistoryText(f"Creó la oportunidad «{data.get('name') or 'sin nombre'}»", details)
    describe = DESCRIBE.get(action)
    if describe is None:
        return _fallback(action, data)
    try:
        return describe(data)
    except (TypeError, ValueError, KeyError, AttributeError):
        return _fallback(action, data)


def history_user(record: ActionHistory) -> str:
    """Who did it: the user's name, or "Proceso automático" (the poller, the invoice checks)."""
    return record.user_name or PROCESS_USER


def history_raw(record: ActionHistory) -> str:
    """The record's stored data as indented JSON (for support)."""
    return json.dumps(record.data, ensure_ascii=False, indent=2, sort_keys=True)
