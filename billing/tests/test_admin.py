"""The service-order admin: search, read-only rows and the "check invoice status now" action."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.models import OpportunityServiceOrder
from devtools.admin_testing import admin_action, service_order_viewer_client
from opportunities.models import ActionHistory, Attachment, Opportunity

pytestmark = pytest.mark.django_db


def test_service_order_changelist_searches_by_os_id_and_opportunity(admin_client: Client, closed: Opportunity) -> None:
    url = reverse("admin:billing_opportunityserviceorder_changelist")
    response = admin_client.get(url, {"q": "456"})
    assert [row.service_order_id for row in response.context["cl"].result_list] == [456]
    response = admin_client.get(url, {"q": closed.pk})
    assert sorted(row.service_order_id for row in response.context["cl"].result_list) == [455, 456]
    response = admin_client.get(url, {"q": "no-es-un-número"})
    assert response.status_code == 200 and list(response.context["cl"].result_list) == []
    response = admin_client.get(url, {"facturado__exact": "0"})
    assert [row.service_order_id for row in response.context["cl"].result_list] == [456]


def test_service_orders_are_read_only_in_admin(admin_client: Client, closed: Opportunity) -> None:
    row = OpportunityServiceOrder.objects.get(service_order_id=456)
    assert admin_client.get(reverse("admin:billing_opportunityserviceorder_add")).status_code == 403
    change_url = reverse("admin:billing_opportunityserviceorder_change", args=[row.pk])
    assert admin_client.post(change_url, {"facturado": "on"}).status_code == 403
    row.refresh_from_db()
    assert row.facturado is False


def test_check_action_completes_an_invoiced_service_order(
    staff_client: Client, closed: Opportunity, mifact: Any, django_capture_on_commit_callbacks: Any
) -> None:
    mifact.invoice(456, soles=True, head_id=901)
    mifact.invoice(455, soles=True, head_id=70)  # the invoiced one: still the same comprobante
    row = OpportunityServiceOrder.objects.get(service_order_id=456)
    invoiced = OpportunityServiceOrder.objects.get(service_order_id=455)

    texts = admin_action(
        staff_client,
        "billing_opportunityserviceorder",
        "check_invoice_status_now",
        [row.pk, invoiced.pk],
        on_commit=django_capture_on_commit_callbacks,
    )
    assert texts == [
        "Órdenes de servicio consultadas: 2; facturadas: 1; con error: 0. "
        "Ya facturadas: comprobante vigente 1; anulado (espera reemisión) 0; reemitido 0."
    ]
    assert mifact.status_calls == [456, 455]  # a person asked: the invoiced one is asked too, pending first
    row.refresh_from_db()
    assert row.facturado and row.invoice_result_head_id == 901 and row.last_checked_at is not None
    closed.refresh_from_db()
    assert (closed.c_facturacion_sub_estado, closed.is_presaved) == ("factura_directa", False)
    new_attachment = Attachment.objects.get(service_order_id=456)
    assert new_attachment.file.read().startswith(b"%PDF-")
    assert ActionHistory.objects.filter(action="service_order_invoiced").count() == 1


def test_check_action_reports_errors_when_invoice_mifact_is_down(
    admin_client: Client, closed: Opportunity, mifact: Any
) -> None:
    mifact.down = True
    row = OpportunityServiceOrder.objects.get(service_order_id=456)
    texts = admin_action(admin_client, "billing_opportunityserviceorder", "check_invoice_status_now", [row.pk])
    assert texts[0] == "Órdenes de servicio consultadas: 0; facturadas: 0; con error: 1."
    assert texts[1].startswith("O.S 456: No se pudo comunicar con el sistema de facturación")
    assert "Debe actuar: TI de la clínica." in texts[1] and "(Detalle: invoice-mifact respondió 503" in texts[1]
    row.refresh_from_db()
    assert not row.facturado and row.last_error and row.last_checked_at is not None


def test_check_action_stops_after_repeated_invoice_mifact_failures(
    admin_client: Client, closed: Opportunity, mifact: Any
) -> None:
    mifact.down = True
    for service_order_id in (457, 458, 459):
        OpportunityServiceOrder.objects.create(opportunity=closed, service_order_id=service_order_id)
    pending = OpportunityServiceOrder.objects.filter(facturado=False).order_by("id")
    texts = admin_action(
        admin_client, "billing_opportunityserviceorder", "check_invoice_status_now", [row.pk for row in pending]
    )
    assert texts[0] == "Órdenes de servicio consultadas: 0; facturadas: 0; con error: 3."
    assert any("se detuvo la consulta; 1 orden(es) quedaron sin consultar" in text for text in texts)
    assert list(pending.filter(last_checked_at__isnull=True).values_list("service_order_id", flat=True)) == [459]


def test_check_action_without_invoice_mifact_configured_checks_nothing(
    admin_client: Client, closed: Opportunity
) -> None:
    row = OpportunityServiceOrder.objects.get(service_order_id=456)
    texts = admin_action(admin_client, "billing_opportunityserviceorder", "check_invoice_status_now", [row.pk])
    assert "no está configurado" in texts[0]
    row.refresh_from_db()
    assert row.last_checked_at is None


def test_check_action_needs_the_service_order_change_permission(
    django_user_model: Any, closed: Opportunity, mifact: Any
) -> None:
    client = service_order_viewer_client(django_user_model)
    url = reverse("admin:billing_opportunityserviceorder_changelist")
    assert "check_invoice_status_now" not in client.get(url).text
    row = OpportunityServiceOrder.objects.get(service_order_id=456)
    client.post(url, {"action": "check_invoice_status_now", "_selected_action": [row.pk]})
    assert mifact.status_calls == []


def test_service_order_list_shows_registration_number_description_and_links(
    staff_client: Client, workspace: Any
) -> None:
    url = reverse("admin:billing_opportunityserviceorder_changelist")
    response = staff_client.get(url, {"q": "OS-456"})
    assert [row.service_order_id for row in response.context["cl"].result_list] == [456]
    page = response.content.decode()
    row = workspace.orders[456]
    assert "OS-456" in page and "Consulta dermatología" in page
    assert timezone.localtime(row.created_at).strftime("%d/%m/%Y %H:%M") in page  # registrada, Lima time
    assert reverse("admin:opportunities_opportunity_change", args=[workspace.lucia.pk]) in page
    assert "El CRM no tiene configurada la conexión con el sistema de facturación" in page
    assert "Debe actuar: TI de la clínica." in page


@pytest.mark.parametrize(
    ("typed", "found"),
    [("os-456", [456]), ("Os-456", [456]), ("OS-789", [789]), ("laser", [789]), ("lucia quispe", [456, 457])],
)
def test_service_order_search_ignores_case_and_accents(
    staff_client: Client, workspace: Any, typed: str, found: list[int]
) -> None:
    url = reverse("admin:billing_opportunityserviceorder_changelist")
    result = staff_client.get(url, {"q": typed}).context["cl"].result_list
    assert sorted(row.service_order_id for row in result) == found


def test_service_order_filters_by_who_must_act_and_waiting_time(staff_client: Client, workspace: Any) -> None:
    url = reverse("admin:billing_opportunityserviceorder_changelist")

    def ids(**query: str) -> list[int]:
        return sorted(row.service_order_id for row in staff_client.get(url, query).context["cl"].result_list)

    assert ids(problema="ti") == [456]
    assert ids(problema="facturacion") == [789]
    assert ids(problema="con_error") == [456, 789]
    assert ids(espera="lt1h") == [790]
    assert ids(espera="1h-24h") == [457]
    assert ids(espera="1d-7d") == [456]
    assert ids(espera="gt7d") == [789]  # O.S 455 is older but invoiced


def test_service_order_page_explains_the_problem_and_keeps_the_technical_message(
    staff_client: Client, workspace: Any
) -> None:
    row = workspace.orders[789]
    page = staff_client.get(reverse("admin:billing_opportunityserviceorder_change", args=[row.pk])).content.decode()
    assert "El sistema de facturación no conoce esta O.S" in page
    assert "Debe actuar: Facturación." in page
    assert "Verificar en invoice-mifact el número de la O.S registrada en la venta." in page
    assert "Detalle técnico: invoice-mifact: invoice-mifact respondió 404 para la O.S 789" in page
