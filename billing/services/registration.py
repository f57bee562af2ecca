"""Service orders (O.S) entering the CRM: registered by a process update, which closes the
opportunity as *Cierre ganado* waiting for the invoice (docs/api.md "Service orders and the
poller"). Runs inside the caller's transaction, with the opportunity row locked."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from billing.models import OpportunityServiceOrder
from opportunities.history import HistoryLog
from opportunities.models import ActionHistory, FacturacionSubEstado, Opportunity
from opportunities.services import opportunity_close_won


def service_orders_register(
    *,
    opportunity: Opportunity,
    service_order_ids: Iterable[int],
    metadata: Mapping[int, Any] | None,
    log: HistoryLog,
) -> list[int]:
    """Store each O.S id once for `opportunity` with its metadata; return the ids newly added.

    Existing rows get their metadata replaced when the body carries metadata for them. Adds
    `service_orders_registered` to `log` when ids were added. Runs inside the caller's transaction.
    """
    metadata = metadata or {}
    wanted = list(dict.fromkeys(service_order_ids))
    existing = {
        row.service_order_id: row
        for row in OpportunityServiceOrder.objects.filter(opportunity=opportunity, service_order_id__in=wanted)
    }
    added = [service_order_id for service_order_id in wanted if service_order_id not in existing]
    OpportunityServiceOrder.objects.bulk_create(
        OpportunityServiceOrder(opportunity=opportunity, service_order_id=so, metadata=metadata.get(so)) for so in added
    )
    for service_order_id, row in existing.items():
        if service_order_id in metadata and row.metadata != metadata[service_order_id]:
            row.metadata = metadata[service_order_id]
            row.save(update_fields=["metadata", "updated_at"])
    if added:
        log.add(ActionHistory.Action.SERVICE_ORDERS_REGISTERED, {"serviceOrderIds": added})
    return added


def opportunity_close_with_service_orders(
    *, opportunity: Opportunity, log: HistoryLog, service_order_ids: Iterable[int] = ()
) -> None:
    """*Cierre ganado* with O.S: sub-state `orden_servicio_pendiente_factura` unless already
    `factura_directa`. The `closed_won` record names the O.S ids
    the close was made with. Runs inside the caller's transaction."""
    sub_state = opportunity.c_facturacion_sub_estado
    if sub_state != FacturacionSubEstado.FACTURA_DIRECTA:
        sub_state = FacturacionSubEstado.ORDEN_SERVICIO_PENDIENTE_FACTURA
    opportunity_close_won(
        opportunity=opportunity,
        sub_state=sub_state,
        log=log,
        data={"via": "cOrdenesServicio", "serviceOrderIds": list(dict.fromkeys(service_order_ids))},
    )
