"""Stopped O.S are visible and easy to resume (docs/admin.md, docs/operations.md "Polling
schedule"): list filters, the start page count, "Reanudar consultas", and `nextCheckAt`."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import OpportunityServiceOrder
from billing.services.poll import service_orders_poll
from devtools.admin_testing import message_texts, service_order_viewer_client

pytestmark = pytest.mark.django_db

OS_LIST = "admin:billing_opportunityserviceorder_changelist"
WAITING_LIST = "admin:billing_saleawaitinginvoice_changelist"


def _text(response: Any) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


@pytest.fixture
def aged(make_opportunity):
    """A pending O.S registered `days` ago (on its own sale)."""

    def make(service_order_id: int, days: float) -> OpportunityServiceOrder:
        opportunity = make_opportunity(
            name=f"Venta {service_order_id}",
            stage="Cierre ganado",
            c_clinic_history="HC",
            c_facturacion_sub_estado="orden_servicio_pendiente_factura",
        )
        row = OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=service_order_id)
        OpportunityServiceOrder.objects.filter(pk=row.pk).update(created_at=timezone.now() - dt.timedelta(days=days))
        row.refresh_from_db()
        return row

    return make


def test_the_lists_filter_the_stopped_orders(admin_client: Client, aged) -> None:
    old, young = aged(100, 120), aged(101, 2)
    aged(102, 89)
    listed = admin_client.get(reverse(OS_LIST), {"consultas": "detenidas"}).context["cl"].result_list
    assert [row.pk for row in listed] == [old.pk]
    active = admin_client.get(reverse(OS_LIST), {"consultas": "activas"}).context["cl"].result_list
    assert sorted(row.service_order_id for row in active) == [101, 102]
    sales = admin_client.get(reverse(WAITING_LIST), {"consultas": "detenidas"}).context["cl"].result_list
    assert [sale.pk for sale in sales] == [old.opportunity_id]
    others = admin_client.get(reverse(WAITING_LIST), {"consultas": "activas"}).context["cl"].result_list
    assert young.opportunity_id in {sale.pk for sale in others} and old.opportunity_id not in {s.pk for s in others}


def test_the_start_page_counts_the_stopped_orders_and_links_the_list(admin_client: Client, aged) -> None:
    aged(100, 120)
    aged(101, 95)
    aged(102, 3)
    with CaptureQueriesContext(connection) as few:
        response = admin_client.get("/admin/")
    assert "O.S sin factura tras 90 días (ya no se consultan solas): 2" in _text(response)
    invoices = response.context["start"].invoices
    assert invoices.stopped == 2
    assert admin_client.get(invoices.stopped_url).context["cl"].result_count == 2
    for i in range(10):
        aged(200 + i, 100 + i)
    with CaptureQueriesContext(connection) as more:
        assert admin_client.get("/admin/").context["start"].invoices.stopped == 12
    assert len(more.captured_queries) == len(few.captured_queries)


def test_resume_checks_now_and_restarts_the_schedule(admin_client: Client, aged, mifact) -> None:
    old = aged(456, 120)
    invoiced = aged(457, 120)
    assert service_orders_poll(workers=1).pending == 0  # stopped: the cron leaves them alone
    mifact.invoice(457)
    OpportunityServiceOrder.objects.filter(pk=invoiced.pk).update(facturado=True, invoiced_at=timezone.now())
    response = admin_client.post(
        reverse(OS_LIST), {"action": "resume_checks", "_selected_action": [old.pk, invoiced.pk]}, follow=True
    )
    texts = message_texts(response)
    assert any("reanudadas para 1 orden" in text for text in texts), texts
    assert any("consultadas: 1" in text for text in texts), texts
    assert mifact.status_calls == [456]
    old.refresh_from_db()
    assert old.checks_resumed_at is not None and old.last_checked_at is not None
    assert timezone.now() - old.checks_resumed_at < dt.timedelta(minutes=1)
    # The cron asks about it again in its runs.
    OpportunityServiceOrder.objects.filter(pk=old.pk).update(last_checked_at=timezone.now() - dt.timedelta(minutes=5))
    assert service_orders_poll(workers=1).pending == 1
    page = admin_client.get(reverse("admin:billing_opportunityserviceorder_change", args=[old.pk]))
    assert "en la próxima ejecución" in _text(page)


def test_resume_from_the_waiting_list_takes_the_sales_pending_orders(admin_client: Client, aged, mifact) -> None:
    old = aged(456, 200)
    response = admin_client.post(
        reverse(WAITING_LIST), {"action": "resume_checks", "_selected_action": [old.opportunity_id]}, follow=True
    )
    assert any("reanudadas para 1 orden" in text for text in message_texts(response))
    old.refresh_from_db()
    assert old.checks_resumed_at is not None and mifact.status_calls == [456]


def test_resume_needs_the_check_permission(django_user_model, aged, mifact) -> None:
    client = service_order_viewer_client(django_user_model)
    old = aged(456, 200)
    assert "resume_checks" not in client.get(reverse(OS_LIST)).text
    client.post(reverse(OS_LIST), {"action": "resume_checks", "_selected_action": [old.pk]})
    old.refresh_from_db()
    assert old.checks_resumed_at is None and mifact.status_calls == []


def test_the_stopped_page_says_how_to_resume(admin_client: Client, aged) -> None:
    old = aged(456, 200)
    page = admin_client.get(reverse("admin:billing_opportunityserviceorder_change", args=[old.pk]))
    assert "detenida (O.S sin factura tras 90 días): use «Reanudar consultas»" in _text(page)


def _next_check(api_client, opportunity_id: str) -> dict[int, Any]:
    body = api_client.get(f"/opportunity/{opportunity_id}/service-orders").json()
    return {item["serviceOrderId"]: item["nextCheckAt"] for item in body}


def test_next_check_at_in_the_service_orders_api(api_client, aged, settings) -> None:
    settings.TIME_ZONE = "UTC"
    young, hourly, stopped = aged(1, 1), aged(2, 10), aged(3, 100)
    now = timezone.now()
    OpportunityServiceOrder.objects.filter(pk=hourly.pk).update(last_checked_at=now - dt.timedelta(minutes=20))
    young_next = _next_check(api_client, young.opportunity_id)[1]
    assert young_next is not None
    assert abs(dt.datetime.fromisoformat(young_next).replace(tzinfo=dt.UTC) - now) < dt.timedelta(minutes=1)
    hourly_next = dt.datetime.fromisoformat(_next_check(api_client, hourly.opportunity_id)[2]).replace(tzinfo=dt.UTC)
    assert abs(hourly_next - (now + dt.timedelta(minutes=40))) < dt.timedelta(minutes=1)
    assert _next_check(api_client, stopped.opportunity_id)[3] is None
    # An invoiced O.S: its next follow-up check, then null once the follow-up window is over.
    OpportunityServiceOrder.objects.filter(pk=young.pk).update(facturado=True, invoiced_at=now, last_checked_at=now)
    follow_up = dt.datetime.fromisoformat(_next_check(api_client, young.opportunity_id)[1]).replace(tzinfo=dt.UTC)
    assert abs(follow_up - (now + dt.timedelta(minutes=settings.INVOICE_FOLLOW_UP_INTERVAL_MINUTES))) < dt.timedelta(
        minutes=1
    )
    OpportunityServiceOrder.objects.filter(pk=young.pk).update(invoiced_at=now - dt.timedelta(days=30))
    assert _next_check(api_client, young.opportunity_id)[1] is None


def test_next_check_at_is_in_the_schema(api_client) -> None:
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    found = [
        props["nextCheckAt"]
        for component in schema["components"]["schemas"].values()
        if "nextCheckAt" in (props := component.get("properties", {}))
    ]
    assert found and found[0].get("nullable") is True and "null una vez detenida" in found[0]["description"]
