"""What staff see about a voided comprobante, the same O.S on two sales and invoice-mifact being
unusable (docs/admin.md): the O.S list and page, both opportunity pages, the waiting list and
the start page."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from billing.models import OpportunityServiceOrder
from billing.outage import mifact_outage
from billing.selectors import service_orders_shared, shared_service_order_count
from jobs.models import CommandRun
from opportunities.models import Opportunity

pytestmark = pytest.mark.django_db

OS_LIST = "admin:billing_opportunityserviceorder_changelist"
WAITING = "admin:billing_saleawaitinginvoice_changelist"
UNREACHABLE = "invoice-mifact no respondió a tiempo (ConnectTimeout)"


def text(response: Any) -> str:
    assert response.status_code == 200
    return re.sub(r"\s+", " ", strip_tags(response.content.decode()))


def sale(name: str, *service_order_ids: int, **fields: Any) -> Opportunity:
    opportunity = Opportunity.objects.create(name=name, stage="Cierre ganado", c_clinic_history="HC-1", **fields)
    for service_order_id in service_order_ids:
        OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=service_order_id)
    return opportunity


def run(fatal: str, minutes_ago: int, outcome: str = CommandRun.Outcome.FAILED) -> CommandRun:
    started = timezone.now() - dt.timedelta(minutes=minutes_ago)
    return CommandRun.objects.create(
        command="poll_invoices", host="app-1", outcome=outcome, fatal=fatal, started_at=started, finished_at=started
    )


def test_a_voided_os_says_it_waits_for_the_reissue_on_the_list_and_its_page(staff_client: Client) -> None:
    opportunity = sale("Venta anulada", 456)
    now = timezone.now()
    OpportunityServiceOrder.objects.filter(service_order_id=456).update(
        invoiced_at=now - dt.timedelta(days=2), voided_at=now - dt.timedelta(hours=1)
    )
    sale("Venta pendiente", 457)
    listed = text(staff_client.get(reverse(OS_LIST)))
    assert listed.count("Comprobante anulado, esperando reemisión") == 1
    assert "Pendiente de factura" in listed
    row = OpportunityServiceOrder.objects.get(service_order_id=456)
    page = text(staff_client.get(reverse("admin:billing_opportunityserviceorder_change", args=[row.pk])))
    assert "Comprobante anulado, esperando reemisión" in page
    invoiced = timezone.localtime(row.invoiced_at).strftime("%d/%m/%Y %H:%M")
    voided = timezone.localtime(row.voided_at).strftime("%d/%m/%Y %H:%M")
    assert f"Facturada: {invoiced}" in page and f"Comprobante anulado: {voided}" in page
    assert "Comprobante anulado, esperando reemisión" in text(
        staff_client.get(reverse("admin:opportunities_opportunity_change", args=[opportunity.pk]))
    )


def test_the_same_os_on_two_sales_is_flagged_everywhere_staff_look(staff_client: Client) -> None:
    first = sale("Venta Lucía", 456, 457)
    second = sale("Venta Lucía (repetida)", 456)
    sale("Otra venta", 458)
    assert shared_service_order_count() == 1
    assert sorted(service_orders_shared().values_list("opportunity__name", flat=True)) == [
        "Venta Lucía",
        "Venta Lucía (repetida)",
    ]

    listed = text(staff_client.get(reverse(OS_LIST)))
    assert listed.count("También en otra venta (1)") == 2
    flagged = staff_client.get(reverse(OS_LIST), {"compartida": "si"}).context["cl"].result_list
    assert sorted((row.service_order_id, row.opportunity.name) for row in flagged) == [
        (456, "Venta Lucía"),
        (456, "Venta Lucía (repetida)"),
    ]
    # Both opportunity pages name the other sale; the O.S that is not shared is not flagged.
    for page_of, other in ((first, second), (second, first)):
        page = text(staff_client.get(reverse("admin:opportunities_opportunity_change", args=[page_of.pk])))
        assert page.count("Esta O.S también está registrada en otra venta") == 1
        assert f"otra venta: {other.name}." in page
    # The start page counts it and links to the flagged list.
    start = staff_client.get(reverse("admin:index"))
    assert "O.S registradas en más de una venta: 1" in text(start)
    assert "compartida=si" in start.content.decode()


def test_a_single_os_per_sale_flags_nothing(staff_client: Client) -> None:
    sale("Venta", 456)
    assert shared_service_order_count() == 0
    assert "También en otra venta" not in text(staff_client.get(reverse(OS_LIST)))
    assert "más de una venta:" not in text(staff_client.get(reverse("admin:index")))


def test_invoice_mifact_unreachable_is_said_at_the_top_of_both_lists_with_since_when_and_who(
    staff_client: Client,
) -> None:
    sale("Venta", 456)
    run("", 60, CommandRun.Outcome.OK)
    first_failed = run(UNREACHABLE, 30)
    run(UNREACHABLE, 25)
    run(UNREACHABLE, 20)
    outage = mifact_outage()
    assert outage is not None and outage.since == first_failed.started_at and outage.failed_runs == 3
    since = timezone.localtime(first_failed.started_at).strftime("%d/%m/%Y %H:%M")
    for name in (WAITING, OS_LIST):
        page = text(staff_client.get(reverse(name)))
        assert "No se pudo comunicar con el sistema de facturación (invoice-mifact)" in page, name
        assert f"Desde el {since} (hace 30 min): 3 consultas automáticas seguidas sin poder consultar" in page
        assert "Debe actuar: TI de la clínica." in page and UNREACHABLE in page


@pytest.mark.parametrize(
    ("runs", "expected"),
    [
        ([], None),
        ([(UNREACHABLE, 20), ("", 5)], None),  # it came back
        ([("se perdió la conexión con la base de datos", 5)], None),  # the database, not invoice-mifact
        ([("invoice-mifact: invoice-mifact respondió 404 para la O.S 1", 5)], None),  # one O.S, not the service
        ([("URL_INVOICE_MIFACT_V3 no está configurada", 5)], "configuration"),
        ([("invoice-mifact rechazó las credenciales", 5)], "credentials"),
    ],
)
def test_the_outage_is_on_only_while_the_newest_run_could_not_use_invoice_mifact(
    runs: list[tuple[str, int]], expected: str | None
) -> None:
    for fatal, minutes_ago in runs:
        run(fatal, minutes_ago)
    outage = mifact_outage()
    assert (outage.problem.kind if outage else None) == expected


def test_no_outage_no_notice(staff_client: Client) -> None:
    run("", 5, CommandRun.Outcome.OK)
    for name in (WAITING, OS_LIST):
        assert 'id="crm-mifact-outage"' not in staff_client.get(reverse(name)).content.decode()
