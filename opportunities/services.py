"""Writes on opportunities: create, and close as *Cierre ganado*. Keyword-only; the caller's
transaction (or one of their own) holds every write."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from .history import Actor, HistoryLog, jsonable
from .models import PROCESS_FIELDS, ActionHistory, FacturacionSubEstado, Opportunity, Stage
from .process_case import FIELD_COLUMNS
from .process_fields import Role


def opportunity_create(*, user: Actor, data: Mapping[str, Any]) -> Opportunity:
    """Create an opportunity from validated `POST /opportunity` data (camelCase keys).

    New opportunities start in `Prospección` with `isPresaved = true`.
    """
    values: dict[str, Any] = {"name": data["name"]}
    if "amount" in data:
        values["amount"] = data["amount"]
    for key, column in FIELD_COLUMNS.items():
        if key in data:
            values[column] = data[key]
    with transaction.atomic():
        opportunity = Opportunity.objects.create(**values)
        log = HistoryLog(opportunity=opportunity, user=user)
        log.add(ActionHistory.Action.OPPORTUNITY_CREATED, {"name": opportunity.name, "stage": opportunity.stage})
        log.flush()
    return opportunity


# The columns `opportunity_close_won` may change.
CLOSE_COLUMNS = frozenset({"stage", "c_facturacion_sub_estado", "is_presaved"})


def opportunity_close_won(
    *,
    opportunity: Opportunity,
    sub_state: str,
    log: HistoryLog,
    data: Mapping[str, Any],
) -> bool:
    """Put `opportunity` in *Cierre ganado* with billing `sub_state` (docs/api.md "Closing as Cierre ganado").

    `factura_directa` also sets `isPresaved = false`. Adds `closed_won` (with `data`) to `log`
    when the stage or sub-state changed; returns whether it did. The caller saves the opportunity.
    """
    changed = opportunity.stage != Stage.CIERRE_GANADO or opportunity.c_facturacion_sub_estado != sub_state
    opportunity.stage = Stage.CIERRE_GANADO
    opportunity.c_facturacion_sub_estado = sub_state
    if sub_state == FacturacionSubEstado.FACTURA_DIRECTA:
        opportunity.is_presaved = False
    if changed:
        log.add(ActionHistory.Action.CLOSED_WON, {"stage": Stage.CIERRE_GANADO.value, "subState": sub_state, **data})
    return changed


# Columns staff may correct by hand (the admin), with the API key used in the history record.
# Everything else changes only through the process update, which keeps meetings, closing and
# the SV delivery consistent.
CORRECTABLE_COLUMNS: dict[str, str] = {"name": "name", "amount": "amount"} | {
    field.column: field.key for field in PROCESS_FIELDS if Role.STAFF in field.roles
}


def opportunity_correct(*, opportunity: Opportunity, user: Actor, old_values: Mapping[str, Any]) -> list[str]:
    """Save staff's corrections, already set on `opportunity`: only the columns of
    `CORRECTABLE_COLUMNS` that `old_values` (column -> value before) names and that changed, and
    one `opportunity_updated` record (`"via": "admin"`, old and new values). Writing only those
    columns never undoes a concurrent PUT or poller write to the stage or sub-state. Returns the
    columns saved."""
    changed = [
        column
        for column, old in old_values.items()
        if column in CORRECTABLE_COLUMNS and getattr(opportunity, column) != old
    ]
    if not changed:
        return []
    with transaction.atomic():
        opportunity.save(update_fields=[*changed, "modified_at"])
        changes = {
            CORRECTABLE_COLUMNS[column]: {
                "old": jsonable(old_values[column]),
                "new": jsonable(getattr(opportunity, column)),
            }
            for column in changed
        }
        log = HistoryLog(opportunity=opportunity, user=user)
        log.add(ActionHistory.Action.OPPORTUNITY_UPDATED, {"via": "admin", "changes": changes})
        log.flush()
    return changed
