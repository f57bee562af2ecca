"""The staff's opportunity page in the admin: list, search, filters, read-only inlines, corrections
with history, the "check invoicing now" action on opportunities, the changelist query counts."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import OpportunityServiceOrder
from devtools.admin_testing import admin_action, attach_pdf, sv_delivery
from opportunities.models import ActionHistory, Attachment, Opportunity

pytestmark = pytest.mark.django_db


def test_opportunity_changelist_searches_by_clinic_history(
    admin_client: Client, closed: Opportunity, make_opportunity: Any
) -> None:
    other = make_opportunity(name="Venta cardiología", c_clinic_history="HC-000111")
    url = reverse("admin:opportunities_opportunity_changelist")

    response = admin_client.get(url)
    assert response.status_code == 200
    assert closed.pk in response.text and other.pk in response.text

    response = admin_client.get(url, {"q": "HC-778899"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [closed]
    assert "Venta dermatología" in response.text


def test_opportunity_changelist_filters_by_stage_and_sub_state(
    admin_client: Client, closed: Opportunity, make_opportunity: Any
) -> None:
    make_opportunity(name="Prospecto")
    url = reverse("admin:opportunities_opportunity_changelist")
    response = admin_client.get(
        url,
        {
            "stage": "Cierre ganado",
            "c_facturacion_sub_estado": "orden_servicio_pendiente_factura",
            "is_presaved__exact": "1",
        },
    )
    assert list(response.context["cl"].result_list) == [closed]


def test_change_page_shows_read_only_inlines(staff_client: Client, closed: Opportunity) -> None:
    attachment = Attachment.objects.get()
    response = staff_client.get(reverse("admin:opportunities_opportunity_change", args=[closed.pk]))
    assert response.status_code == 200
    text = response.text
    assert "456" in text and "455" in text  # service orders
    assert "F001-455.pdf" in text  # attachment
    assert reverse("admin:opportunities_attachment_download", args=[attachment.pk]) in text
    assert "Cita: Rosa (Dermatología)" in text  # meeting
    assert "Registró la O.S 456" in text  # history, as a Spanish sentence
    # Nothing in the inlines can be added, edited or deleted.
    for prefix in ("service_orders", "attachments", "meetings", "history"):
        assert f'name="{prefix}-0-DELETE"' not in text
        assert f'name="{prefix}-__prefix__-id"' not in text  # no "add another" template
    assert 'name="service_orders-0-facturado"' not in text
    assert 'name="history-0-data"' not in text
    assert 'name="file"' not in text


def test_valid_comprobantes_and_voided_or_replaced_ones_are_shown_apart(
    staff_client: Client, closed: Opportunity
) -> None:
    valid = Attachment.objects.get()
    voided = attach_pdf(closed, tag="F001-300")
    Attachment.objects.filter(pk=voided.pk).update(status=Attachment.Status.ANULADO)
    response = staff_client.get(reverse("admin:opportunities_opportunity_change", args=[closed.pk]))
    sections = {
        str(inline.opts.verbose_name_plural): list(inline.formset.queryset)
        for inline in response.context["inline_admin_formsets"]
        if inline.opts.model is Attachment
    }
    assert sections == {
        "comprobantes vigentes": [valid],
        "comprobantes anulados o reemplazados (ya no valen)": [voided],
    }
    # Every column of both sections is read-only: no form field for any of them.
    for inline in response.context["inline_admin_formsets"]:
        if inline.opts.model is Attachment:
            assert f'name="{inline.formset.prefix}-0-kind"' not in response.text
            assert list(inline.formset.forms[0].fields) == ["id", "opportunity"]  # the hidden keys only


def test_admin_edit_saves_only_changed_fields_and_records_history(staff_client: Client, closed: Opportunity) -> None:
    url = reverse("admin:opportunities_opportunity_change", args=[closed.pk])
    page = staff_client.get(url).context
    form = page["adminform"].form
    data = {name: ("" if value is None else value) for name, value in form.initial.items() if name in form.fields}
    # What the browser posts for the read-only inlines: management forms and hidden ids.
    for inline in page["inline_admin_formsets"]:
        formset = inline.formset
        data.update({f"{formset.prefix}-{k}": v for k, v in formset.management_form.initial.items()})
        for index, inline_form in enumerate(formset.initial_forms):
            data[f"{formset.prefix}-{index}-id"] = inline_form.instance.pk
            data[f"{formset.prefix}-{index}-opportunity"] = closed.pk
    data.update({"name": "Venta dermatología (corregida)", "stage": "Prospección"})  # stage is read-only
    # A concurrent writer (the poller) changes the sub-state while the page is open.
    Opportunity.objects.filter(pk=closed.pk).update(c_facturacion_sub_estado="factura_directa")

    response = staff_client.post(url, data)

    assert response.status_code == 302, getattr(response, "context", None) and response.context["adminform"].form.errors
    closed.refresh_from_db()
    assert closed.name == "Venta dermatología (corregida)"
    assert closed.stage == "Cierre ganado"
    assert closed.c_facturacion_sub_estado == "factura_directa"  # not overwritten by the stale form
    record = ActionHistory.objects.get(action="opportunity_updated")
    assert record.user_name == "recepcion"
    assert record.data == {
        "via": "admin",
        "changes": {"name": {"old": "Venta dermatología", "new": "Venta dermatología (corregida)"}},
    }


def test_opportunities_cannot_be_added_or_deleted_in_admin(admin_client: Client, closed: Opportunity) -> None:
    assert admin_client.get(reverse("admin:opportunities_opportunity_add")).status_code == 403
    assert admin_client.get(reverse("admin:opportunities_opportunity_delete", args=[closed.pk])).status_code == 403
    assert Opportunity.objects.filter(pk=closed.pk).exists()


def test_check_action_on_opportunities_checks_all_their_service_orders(
    staff_client: Client,
    closed: Opportunity,
    make_opportunity: Any,
    mifact: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    other = make_opportunity(
        name="Otra",
        stage="Cierre ganado",
        c_clinic_history="HC-2",
        c_facturacion_sub_estado="orden_servicio_pendiente_factura",
    )
    OpportunityServiceOrder.objects.create(opportunity=other, service_order_id=789)
    untouched = make_opportunity(name="No seleccionada")
    OpportunityServiceOrder.objects.create(opportunity=untouched, service_order_id=999)
    mifact.invoice(789, soles=True)
    mifact.invoice(455, soles=True, head_id=70)  # `closed`'s invoiced O.S: still valid

    texts = admin_action(
        staff_client,
        "opportunities_opportunity",
        "check_invoice_status_now",
        [closed.pk, other.pk],
        on_commit=django_capture_on_commit_callbacks,
    )
    assert texts == [
        "Órdenes de servicio consultadas: 3; facturadas: 1; con error: 0. "
        "Ya facturadas: comprobante vigente 1; anulado (espera reemisión) 0; reemitido 0."
    ]
    assert sorted(mifact.status_calls) == [455, 456, 789]  # every O.S of the selected sales, the invoiced too
    assert OpportunityServiceOrder.objects.get(service_order_id=789).facturado
    assert not OpportunityServiceOrder.objects.get(service_order_id=456).facturado


def _changelist_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:opportunities_opportunity_changelist",
        "admin:billing_opportunityserviceorder_changelist",
        "admin:opportunities_actionhistory_changelist",
        "admin:opportunities_attachment_changelist",
    ],
)
def test_changelist_query_count_does_not_grow_with_rows(
    staff_client: Client, make_opportunity: Any, django_assert_max_num_queries: Any, url_name: str
) -> None:
    def add_rows(count: int) -> None:
        for i in range(count):
            opportunity = make_opportunity(name=f"Venta {i}", c_clinic_history=f"HC-{i}")
            OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=1000 + i)
            ActionHistory.objects.create(opportunity=opportunity, action="opportunity_created")
            attach_pdf(opportunity, tag=f"F-{i}")

    url = reverse(url_name)
    add_rows(2)
    few = _changelist_queries(staff_client, url)
    add_rows(20)
    with django_assert_max_num_queries(few):
        staff_client.get(url)


def test_opportunity_page_shows_its_sv_deliveries(admin_client, make_opportunity):
    opportunity = make_opportunity()
    sv_delivery(opportunity, status="pending", attempts=2, last_error="SV no respondió a tiempo")
    page = admin_client.get(reverse("admin:opportunities_opportunity_change", args=[opportunity.pk]))
    assert page.status_code == 200
    assert "envíos de historia clínica a sv" in page.content.decode().lower()
    assert "SV no respondió a tiempo" in page.content.decode()


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("Lucia", ["lucia"]),
        ("LUCÍA quispe", ["lucia"]),
        ("jose pena", ["jose"]),
        ("Núñez", ["ramon"]),
        ("71234567", ["lucia"]),
        ("hc-000456", ["jose"]),
        ("OS-456", ["lucia"]),
    ],
)
def test_opportunity_search_ignores_case_and_accents(
    staff_client: Client, workspace: Any, typed: str, found: list[str]
) -> None:
    url = reverse("admin:opportunities_opportunity_changelist")
    result = staff_client.get(url, {"q": typed}).context["cl"].result_list
    assert sorted(o.pk for o in result) == sorted(getattr(workspace, name).pk for name in found)
    assert staff_client.get(url, {"q": workspace.lucia.pk}).context["cl"].result_list[0] == workspace.lucia


def test_opportunity_list_says_pending_or_closed_and_how_long_it_waits(staff_client: Client, workspace: Any) -> None:
    url = reverse("admin:opportunities_opportunity_changelist")
    response = staff_client.get(url)
    page = response.content.decode()
    assert "<th" in page and "pre-guardada" not in page.lower()
    assert "Pendiente de cierre" in page and "Cerrada" in page
    assert "icon-yes.svg" not in page and "icon-no.svg" not in page  # no icons that read backwards
    assert "10 días" in page and "Con error: debe actuar Facturación" in page
    assert "Con error: debe actuar TI de la clínica" in page

    def names(**query: str) -> set[str]:
        return {o.name for o in staff_client.get(url, query).context["cl"].result_list}

    assert names(cierre="cerrada") == {workspace.maria.name, workspace.carlos.name}
    assert workspace.prospect.name in names(cierre="pendiente")
    assert names(esperando_factura="si") == {workspace.lucia.name, workspace.jose.name, workspace.ramon.name}
    maria = staff_client.get(reverse("admin:opportunities_opportunity_change", args=[workspace.maria.pk]))
    assert "Cerrada (comprobante adjunto)" in maria.content.decode()


def test_opportunity_page_shows_the_history_as_sentences(staff_client: Client, workspace: Any) -> None:
    page = staff_client.get(reverse("admin:opportunities_opportunity_change", args=[workspace.lucia.pk])).content
    text = page.decode()
    assert "Actualizó los datos del paciente y la cita desde el sistema de ventas" in text
    assert "Historia clínica: (vacío) → HC-000123" in text
    assert "Doctor: Dra. Paredes → Dr. Rojas" in text
    assert "Cerrada como Cierre ganado con O.S 456, 457" in text
    assert "Corrigió datos en la administración" in text
    assert "Apellido materno del paciente: Mamani → Mamaní" in text
    assert "<details" in text and "Datos técnicos" in text  # the stored data one click away
    assert "&quot;cClinicHistory&quot;" in text  # (inside the closed <details>)
    assert "recepcion" in text and "ventas" in text
