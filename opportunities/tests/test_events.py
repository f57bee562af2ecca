"""The events built from the action history (opportunities/events.py, docs/api.md "Events"):
which records tell which event, with what data, written with the change."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from jobs.models import Event
from jobs.tests.webhook_receiver import Receiver
from opportunities.history import HistoryLog
from opportunities.models import ActionHistory, Opportunity, Stage

pytestmark = pytest.mark.django_db

Action = ActionHistory.Action


def flush(capture: Any, opportunity: Opportunity, *records: tuple[str, dict[str, Any]]) -> None:
    with capture(execute=True), transaction.atomic():
        log = HistoryLog(opportunity=opportunity, user=None)
        for action, data in records:
            log.add(action, data)
        log.flush()


def test_each_told_record_becomes_one_event_with_the_opportunity_id(
    receiver: Receiver, make_opportunity: Any, django_capture_on_commit_callbacks: Any
) -> None:
    opportunity = make_opportunity(stage=Stage.CIERRE_GANADO, c_facturacion_sub_estado="factura_directa")
    flush(
        django_capture_on_commit_callbacks,
        opportunity,
        (Action.OPPORTUNITY_CREATED, {"name": "x"}),
        (Action.MEETING_CREATED, {"reservationId": 1}),
        (Action.SERVICE_ORDER_INVOICED, {"serviceOrderId": 7, "invoiceResultHeadId": 70}),
        (Action.SERVICE_ORDER_INVOICE_VOIDED, {"serviceOrderId": 7, "invoiceResultHeadId": 70}),
        (Action.SERVICE_ORDER_INVOICE_REPLACED, {"serviceOrderId": 7, "newInvoiceResultHeadId": 71}),
    )
    bodies = receiver.verified()
    assert [body["type"] for body in bodies] == [
        "service_order.invoiced",
        "comprobante.voided",
        "comprobante.replaced",
    ]
    invoiced = bodies[0]
    assert invoiced["data"]["opportunityId"] == opportunity.pk
    assert invoiced["data"]["serviceOrderId"] == 7 and invoiced["data"]["subState"] == "factura_directa"
    assert invoiced["timestamp"].endswith("Z")
    history_ids = set(ActionHistory.objects.values_list("pk", flat=True))
    assert {body["data"]["historyId"] for body in bodies} <= history_ids
    assert receiver.ids() == list(Event.objects.order_by("pk").values_list("uid", flat=True))


def test_closed_won_is_told_once_per_sale(
    receiver: Receiver, make_opportunity: Any, django_capture_on_commit_callbacks: Any
) -> None:
    opportunity = make_opportunity()
    close = (Action.CLOSED_WON, {"stage": "Cierre ganado", "subState": "orden_servicio_pendiente_factura"})
    flush(django_capture_on_commit_callbacks, opportunity, close)
    invoiced = (Action.SERVICE_ORDER_INVOICED, {"serviceOrderId": 8})
    flush(
        django_capture_on_commit_callbacks, opportunity, (Action.CLOSED_WON, {"subState": "factura_directa"}), invoiced
    )
    assert receiver.types() == ["opportunity.closed_won", "service_order.invoiced"]
    assert receiver.verified()[0]["data"]["subState"] == "orden_servicio_pendiente_factura"


def test_a_put_tells_each_changed_field_old_and_new(
    receiver: Receiver, make_opportunity: Any, put_process: Any
) -> None:
    opportunity = make_opportunity(c_patientsname="Ana")
    response = put_process(opportunity.pk, {"cPatientsname": "Ana María", "cPatientDocument": "12345678"})
    assert response.status_code == 200
    (body,) = receiver.verified()
    assert body["type"] == "opportunity.updated"
    assert body["data"]["changes"] == {
        "cPatientsname": {"old": "Ana", "new": "Ana María"},
        "cPatientDocument": {"old": "", "new": "12345678"},
    }
    assert body["data"]["via"] == "api" and body["data"]["userName"]
    # The same body again changes nothing: no event.
    assert put_process(opportunity.pk, {"cPatientsname": "Ana María"}).status_code == 200
    assert len(receiver.received) == 1


@pytest.mark.django_db(transaction=True)
def test_events_cost_a_put_nothing_without_a_receiver_and_two_inserts_with_one(
    receiver: Receiver, make_opportunity: Any, api_client: Any, settings: Any
) -> None:
    """The PUT's statements (after a first PUT: the process's endpoint list is read once per
    WEBHOOK_ENDPOINTS_CACHE_SECONDS): without a receiver none more; with one, the event and its
    delivery inserted in the transaction and, after the commit, the delivery (claim, send, record:
    7 statements, 8 on PostgreSQL with its advisory lock)."""
    counts = []
    for url in ("", receiver.url):
        settings.WEBHOOK_URL = url
        opportunity = make_opportunity()
        path = f"/opportunity/update-opportunity-procces/{opportunity.pk}"
        assert api_client.put(path, {"cPatientsname": "A"}, format="json").status_code == 200
        with CaptureQueriesContext(connections["default"]) as captured:
            assert api_client.put(path, {"cPatientsname": "B"}, format="json").status_code == 200
        statements = [
            q["sql"] for q in captured if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))
        ]
        counts.append(len(statements))
        inserts = [sql.split('"')[1] for sql in statements if sql.startswith("INSERT")]
        assert inserts == (
            ["opportunity_action_history"]
            if not url
            else ["opportunity_action_history", "jobs_event", "jobs_webhookdelivery"]
        )
    assert counts[1] - counts[0] <= 2 + 8, counts
    assert len(receiver.received) == 2
