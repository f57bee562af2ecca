"""The events other systems receive about an opportunity (docs/api.md "Events"), built from the
action-history records of a change and written in its transaction: an event exists if and only
if the change committed. Delivered by `jobs.webhooks`.

| history record | event |
| --- | --- |
| `opportunity_updated` | `opportunity.updated` (each changed field's old and new value) |
| `closed_won`, the opportunity's first | `opportunity.closed_won` |
| `service_order_invoiced` | `service_order.invoiced` |
| `service_order_invoice_voided` | `comprobante.voided` |
| `service_order_invoice_replaced` | `comprobante.replaced` |

A later `closed_won` record (the sub-state moving from O.S pending to invoiced, or back after a
void) is no new event: the sale was won once; the O.S events carry the sub-state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from jobs.models import Event, EventType
from jobs.webhooks import events_publish

from .models import ActionHistory, Opportunity

EVENT_TYPES: dict[str, str] = {
    ActionHistory.Action.OPPORTUNITY_UPDATED: EventType.OPPORTUNITY_UPDATED,
    ActionHistory.Action.CLOSED_WON: EventType.OPPORTUNITY_CLOSED_WON,
    ActionHistory.Action.SERVICE_ORDER_INVOICED: EventType.SERVICE_ORDER_INVOICED,
    ActionHistory.Action.SERVICE_ORDER_INVOICE_VOIDED: EventType.COMPROBANTE_VOIDED,
    ActionHistory.Action.SERVICE_ORDER_INVOICE_REPLACED: EventType.COMPROBANTE_REPLACED,
}


def event_timestamp(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z` (Standard Webhooks' payload format)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_body(*, event_type: str, record: ActionHistory, opportunity: Opportunity) -> dict[str, Any]:
    """The JSON body of the event told by `record`: `type`, `timestamp` (the change's) and `data`
    (the opportunity's id, stage and sub-state after the change, who made it, and the record's own
    data: `changes` for an update, the O.S and comprobante ids for the others)."""
    data: dict[str, Any] = {
        "opportunityId": opportunity.pk,
        "stage": opportunity.stage,
        "subState": opportunity.c_facturacion_sub_estado,
        **record.data,
        "userName": record.user_name,
        "historyId": record.pk,
    }
    if event_type == EventType.OPPORTUNITY_UPDATED:
        data["via"] = record.data.get("via", "api")
    return {"type": event_type, "timestamp": event_timestamp(record.created_at), "data": data}


def events_record(*, opportunity: Opportunity, records: Sequence[ActionHistory]) -> list[Event]:
    """Write the events of `records` (just written, in the caller's transaction) and their
    deliveries (`jobs.webhooks.events_publish`); returns the events, none when no receiver wants
    them. No query when no record tells an event; one (the endpoints) when no receiver is configured."""
    told = [record for record in records if record.action in EVENT_TYPES]
    if any(record.action == ActionHistory.Action.CLOSED_WON for record in told):
        earlier = ActionHistory.objects.filter(opportunity=opportunity, action=ActionHistory.Action.CLOSED_WON)
        if earlier.exclude(pk__in=[record.pk for record in told]).exists():
            told = [record for record in told if record.action != ActionHistory.Action.CLOSED_WON]
    events = [
        Event(
            type=EVENT_TYPES[record.action],
            opportunity_id=opportunity.pk,
            body=event_body(event_type=EVENT_TYPES[record.action], record=record, opportunity=opportunity),
        )
        for record in told
    ]
    deliveries = events_publish(events)
    return [event for event in events if event.pk is not None] if deliveries else []
