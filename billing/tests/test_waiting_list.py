"""The admin's "Ventas esperando factura": which sales, in which order, what each row says, the
check-now action, filters, search, permissions and a flat query count."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import OpportunityServiceOrder
from devtools.admin_testing import grant, message_texts
from devtools.workspace_data import Workspace

pytestmark = pytest.mark.django_db

URL = reverse("admin:billing_saleawaitinginvoice_changelist")


def rows(client: Client, **query: Any) -> list[str]:
    response = client.get(URL, query)
    assert response.status_code == 200
    return [sale.pk for sale in response.context["cl"].result_list]


def row_texts(response: Any) -> list[str]:
    body = response.content.decode()
    return [
        re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", row))).strip()
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.split('id="result_list"')[1], re.S)[1:]
    ]


def test_it_lists_the_sales_with_pending_service_orders_longest_waiting_first(
    staff_client: Client, workspace: Workspace
) -> None:
    assert rows(staff_client) == [workspace.jose.pk, workspace.lucia.pk, workspace.ramon.pk]
    # The waiting column sorts the other way too (newest first).
    response = staff_client.get(URL)
    waiting_column = response.context["cl"].list_display.index("waiting")
    assert rows(staff_client, o=f"-{waiting_column}") == [workspace.ramon.pk, workspace.lucia.pk, workspace.jose.pk]


def test_each_row_says_who_what_since_when_and_why(staff_client: Client, workspace: Workspace) -> None:
    response = staff_client.get(URL)
    jose, lucia, ramon = row_texts(response)
    assert "Procedimiento láser - José Peña" in jose and "José Peña" in jose and "HC-000456" in jose
    assert "OS-789" in jose and "10 días" in jose
    assert "OS-789: El sistema de facturación no conoce esta O.S" in jose and "Debe actuar: Facturación." in jose
    assert "OS-456, O.S 457" not in lucia and "OS-456 , 457" in lucia  # numero_os, else the id
    assert "3 días" in lucia
    assert "OS-456: El CRM no tiene configurada la conexión" in lucia and "Debe actuar: TI de la clínica." in lucia
    assert "Ramón Núñez" in ramon and "nunca" in ramon and ramon.endswith("-")  # never checked, no error
    page = response.content.decode()
    # The sale and each O.S are links.
    assert reverse("admin:opportunities_opportunity_change", args=[workspace.jose.pk]) in page
    for number in (456, 457, 789, 790):
        assert reverse("admin:billing_opportunityserviceorder_change", args=[workspace.orders[number].pk]) in page
    assert "Ventas esperando factura (la que más espera primero)" in page
    assert 'value="check_invoice_status_now"' in page


def test_it_filters_by_who_must_act(staff_client: Client, workspace: Workspace) -> None:
    assert rows(staff_client, problema="ti") == [workspace.lucia.pk]
    assert rows(staff_client, problema="facturacion") == [workspace.jose.pk]
    assert rows(staff_client, problema="con_error") == [workspace.jose.pk, workspace.lucia.pk]
    assert rows(staff_client, problema="sin_error") == [workspace.ramon.pk]


@pytest.mark.parametrize(
    ("typed", "found"),
    [("OS-789", "jose"), ("os-456", "lucia"), ("790", "ramon"), ("ramon nunez", "ramon"), ("HC-000123", "lucia")],
)
def test_it_finds_sales_as_people_type(staff_client: Client, workspace: Workspace, typed: str, found: str) -> None:
    assert rows(staff_client, q=typed) == [getattr(workspace, found).pk]


def test_the_check_action_checks_the_selected_sales_pending_orders(
    staff_client: Client, workspace: Workspace, mifact: Any, django_capture_on_commit_callbacks: Any
) -> None:
    mifact.invoice(790, soles=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            URL, {"action": "check_invoice_status_now", "_selected_action": [workspace.ramon.pk, workspace.jose.pk]}
        )
    assert response.status_code == 302
    texts = message_texts(response)
    assert texts[0] == "Órdenes de servicio consultadas: 2; facturadas: 1; con error: 0."
    assert sorted(mifact.status_calls) == [789, 790]
    assert OpportunityServiceOrder.objects.get(service_order_id=790).facturado
    assert rows(staff_client) == [workspace.jose.pk, workspace.lucia.pk]  # Ramón's sale no longer waits


def test_staff_need_the_opportunity_and_service_order_view_permissions(
    django_user_model: Any, workspace: Workspace
) -> None:
    user = grant(
        django_user_model.objects.create_user(username="solo-ventas", password="x", is_staff=True),
        "opportunities.view_opportunity",
    )
    client = Client()
    client.force_login(user)
    assert client.get(URL).status_code == 403
    assert "Ventas esperando factura" not in client.get("/admin/").content.decode()
    grant(user, "billing.view_opportunityserviceorder")
    client.force_login(user)
    assert client.get(URL).status_code == 200
    assert 'value="check_invoice_status_now"' not in client.get(URL).content.decode()  # no change permission


def test_a_sale_opens_on_its_opportunity_page(staff_client: Client, workspace: Workspace) -> None:
    url = reverse("admin:billing_saleawaitinginvoice_change", args=[workspace.lucia.pk])
    response = staff_client.get(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:opportunities_opportunity_change", args=[workspace.lucia.pk])


def _queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL).status_code == 200
    return len(queries.captured_queries)


def test_the_query_count_does_not_grow_with_rows(
    staff_client: Client, workspace: Workspace, make_opportunity: Any
) -> None:
    few = _queries(staff_client)
    for i in range(20):
        opportunity = make_opportunity(name=f"Venta {i}", c_clinic_history=f"HC-{i}")
        for j in range(2):
            OpportunityServiceOrder.objects.create(
                opportunity=opportunity, service_order_id=20_000 + 2 * i + j, last_error="x", last_error_kind="internal"
            )
    assert _queries(staff_client) == few
