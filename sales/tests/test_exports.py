"""Exports of the staff lists (crm/admin_ui/export.py, docs/admin.md "Exports"): the list's
columns and the rows its filters and search leave, as XLSX (read back with openpyxl) and as CSV
in UTF-8 with a BOM; allowed per role."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
import pytest
from django.test import Client
from django.urls import reverse

from devtools.admin_testing import role_client
from devtools.workspace_data import Workspace
from sales.roles import BILLING, SALES, SUPERVISION

pytestmark = pytest.mark.django_db

XLSX, CSV = "0", "1"  # the format's index in the export form (ListExportMixin.export_formats)


def export(client: Client, name: str, query: str, file_format: str) -> Any:
    return client.post(f"{reverse(f'admin:{name}_export')}?{query}", {"format": file_format, "resource": "0"})


def xlsx_rows(response: Any) -> list[list[Any]]:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert sheet.title != "Tablib Dataset", "the sheet is named after the list"
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def test_the_waiting_list_exports_its_columns_and_filtered_rows_to_xlsx(
    django_user_model: Any, workspace: Workspace
) -> None:
    client = role_client(django_user_model, BILLING)
    rows = xlsx_rows(export(client, "billing_saleawaitinginvoice", "problema=facturacion", XLSX))
    assert rows[0] == [
        "Venta",
        "Paciente",
        "Historia clínica",
        "O.S pendientes",
        "Esperando desde",
        "Última consulta",
        "Último error",
    ]
    workbook = openpyxl.load_workbook(io.BytesIO(export(client, "billing_saleawaitinginvoice", "", XLSX).content))
    assert workbook.active.title == "Ventas esperando factura"
    assert len(rows) == 2  # the filter: only José's sale is for billing staff
    sale, patient, history, orders, waiting, checked, error = rows[1]
    assert (sale, patient, history, orders) == ("Procedimiento láser - José Peña", "José Peña", "HC-000456", "OS-789")
    assert waiting.startswith("10 días") and "/" in waiting
    assert "El sistema de facturación no conoce esta O.S" in error and "<" not in error

    # Without a filter, every waiting sale, longest first, as on the list.
    everything = xlsx_rows(export(client, "billing_saleawaitinginvoice", "", XLSX))
    assert [row[0] for row in everything[1:]] == [
        "Procedimiento láser - José Peña",
        "Consulta dermatología - Lucía Quispe",
        "Control - Ramón Núñez",
    ]


def test_the_service_order_list_exports_the_search_as_csv_that_excel_reads_with_accents(
    django_user_model: Any, workspace: Workspace
) -> None:
    client = role_client(django_user_model, SUPERVISION)
    response = export(client, "billing_opportunityserviceorder", "q=lucia", CSV)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="ordenes-de-servicio-')
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == [
        "O.S (invoice-mifact)",
        "Número O.S",
        "Descripción",
        "Oportunidad",
        "Estado",
        "Registrada",
        "Última consulta",
        "Problema",
    ]
    assert sorted(row[0] for row in rows[1:]) == ["456", "457"]  # Lucía's two O.S only
    assert all(
        row[3] == "Consulta dermatología - Lucía Quispe" and row[4].startswith("Pendiente de factura")
        for row in rows[1:]
    )


def test_the_opportunity_list_exports_with_its_filter(django_user_model: Any, workspace: Workspace) -> None:
    client = role_client(django_user_model, SALES)
    rows = xlsx_rows(export(client, "opportunities_opportunity", "esperando_factura=si", XLSX))
    assert rows[0][:3] == ["Nombre", "Paciente", "Historia clínica"]
    assert sorted(row[0] for row in rows[1:]) == [
        "Consulta dermatología - Lucía Quispe",
        "Control - Ramón Núñez",
        "Procedimiento láser - José Peña",
    ]


@pytest.mark.parametrize(
    ("role", "name", "allowed"),
    [
        (SALES, "opportunities_opportunity", True),
        (SALES, "billing_saleawaitinginvoice", False),
        (BILLING, "billing_opportunityserviceorder", True),
        (BILLING, "opportunities_opportunity", False),
        (SUPERVISION, "billing_saleawaitinginvoice", True),
    ],
)
def test_exports_are_allowed_per_role(
    django_user_model: Any, workspace: Workspace, role: str, name: str, allowed: bool
) -> None:
    client = role_client(django_user_model, role)
    listing = client.get(reverse(f"admin:{name}_changelist"))
    assert response_has_export_link(listing, name) is allowed if listing.status_code == 200 else not allowed
    response = export(client, name, "", XLSX)
    assert response.status_code == (200 if allowed else 403)


def response_has_export_link(response: Any, name: str) -> bool:
    return reverse(f"admin:{name}_export") in response.content.decode()


def test_a_formula_or_a_control_character_in_a_name_does_not_reach_excel_as_such(
    django_user_model: Any, workspace: Workspace
) -> None:
    workspace.prospect.name = '=HYPERLINK("http://x.test","Ana")\x01Torres'
    workspace.prospect.save(update_fields=["name"])
    client = role_client(django_user_model, SUPERVISION)
    rows = xlsx_rows(export(client, "opportunities_opportunity", "", XLSX))
    names = [row[0] for row in rows[1:]]
    assert 'HYPERLINK("http://x.test","Ana")\ufffdTorres' in names
    assert not any(str(name).startswith("=") for name in names)


def test_the_export_page_offers_xlsx_already_chosen_and_no_empty_format(
    django_user_model: Any, workspace: Workspace
) -> None:
    client = role_client(django_user_model, BILLING)
    page = client.get(reverse("admin:billing_saleawaitinginvoice_export")).content.decode()
    assert 'value=""' not in page.split('name="format"', 1)[1].split("</select>", 1)[0]
    assert '<option value="0" selected>xlsx</option>' in page
