"""*Cierre ganado* with service orders through the PUT (docs/api.md "Closing as Cierre ganado",
"Service orders and the poller")."""

from __future__ import annotations

import hashlib

import pytest

from billing.models import OpportunityServiceOrder
from opportunities.models import ActionHistory, Attachment, Opportunity

pytestmark = pytest.mark.django_db


def os_body(*ids, **extra):
    return {"cClinicHistory": "HC-000123", "cOrdenesServicio": list(ids), **extra}


def test_service_orders_are_registered_and_the_opportunity_waits_for_the_invoice(
    make_opportunity, put_process, mifact, api_client
):
    opportunity = make_opportunity()
    response = put_process(
        opportunity.pk,
        os_body(456, 457, cOrdenesServicioMetadata={"456": {"descripcion": "Consulta", "numero_os": "OS-456"}}),
    )
    assert response.status_code == 200, response.content
    body = response.json()["opportunity"]
    assert body["stage"] == "Cierre ganado"
    assert body["cFacturacionSubEstado"] == "orden_servicio_pendiente_factura"
    assert body["isPresaved"] is True
    rows = {r.service_order_id: r for r in OpportunityServiceOrder.objects.all()}
    assert set(rows) == {456, 457}
    assert rows[456].metadata == {"descripcion": "Consulta", "numero_os": "OS-456"}
    assert rows[457].metadata is None
    assert all(not r.facturado and r.last_checked_at is not None and r.last_error == "" for r in rows.values())
    assert sorted(mifact.status_calls) == [456, 457]
    assert ActionHistory.objects.get(action="service_orders_registered").data == {"serviceOrderIds": [456, 457]}
    assert ActionHistory.objects.get(action="closed_won").data["subState"] == "orden_servicio_pendiente_factura"

    listed = api_client.get(f"/opportunity/{opportunity.pk}/service-orders").json()
    assert [item["serviceOrderId"] for item in listed] == [456, 457]
    assert listed[0]["metadata"]["numero_os"] == "OS-456"
    assert listed[0]["facturado"] is False


def test_an_already_invoiced_service_order_completes_the_close_in_the_same_request(
    make_opportunity, put_process, mifact, media_root
):
    served = mifact.invoice(456, soles=True, dolares=True, head_id=123)
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, os_body(456))
    body = response.json()["opportunity"]
    assert body["stage"] == "Cierre ganado"
    assert body["cFacturacionSubEstado"] == "factura_directa"
    assert body["isPresaved"] is False
    row = OpportunityServiceOrder.objects.get()
    assert row.facturado and row.invoice_result_head_id == 123
    assert row.url_soles and row.url_soles.endswith("456-123-soles.pdf")
    assert row.url_dolares and row.url_dolares.endswith("456-123-dolares.pdf")
    attachments = {a.kind: a for a in Attachment.objects.all()}
    assert attachments["comprobante_soles"].sha256 == hashlib.sha256(served["soles"]).hexdigest()
    assert attachments["comprobante_dolares"].service_order_id == 456
    assert len([p for p in media_root.rglob("*") if p.is_file()]) == 2
    assert ActionHistory.objects.get(action="service_order_invoiced").data["serviceOrderId"] == 456


def test_every_call_checks_pending_service_orders(make_opportunity, put_process, mifact):
    opportunity = make_opportunity()
    put_process(opportunity.pk, os_body(456))
    assert Opportunity.objects.get(pk=opportunity.pk).c_facturacion_sub_estado == "orden_servicio_pendiente_factura"
    mifact.invoice(456)
    # A later call that only touches patient data still checks the pending O.S.
    response = put_process(opportunity.pk, {"cPatientsname": "Lucía"})
    assert response.json()["opportunity"]["cFacturacionSubEstado"] == "factura_directa"
    assert mifact.status_calls == [456, 456]
    # Once facturado, it is not asked again.
    put_process(opportunity.pk, {"cPatientsname": "Lucía R."})
    assert mifact.status_calls == [456, 456]


def test_the_same_id_twice_is_stored_once_and_metadata_is_updated(make_opportunity, put_process, mifact):
    opportunity = make_opportunity()
    put_process(opportunity.pk, os_body(456, 456))
    put_process(opportunity.pk, os_body(456, cOrdenesServicioMetadata={"456": {"numero_os": "OS-1"}}))
    row = OpportunityServiceOrder.objects.get()
    assert row.metadata == {"numero_os": "OS-1"}
    assert ActionHistory.objects.filter(action="service_orders_registered").count() == 1


def test_the_same_id_on_two_opportunities_is_two_rows(make_opportunity, put_process, mifact):
    first, second = make_opportunity(), make_opportunity()
    put_process(first.pk, os_body(456))
    put_process(second.pk, os_body(456))
    assert OpportunityServiceOrder.objects.count() == 2


def test_service_orders_need_a_clinic_history(make_opportunity, put_process, mifact):
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, {"cOrdenesServicio": [456], "cPatientsname": "Ana"})
    assert response.status_code == 400
    assert "cClinicHistory" in response.json()["errors"]
    assert OpportunityServiceOrder.objects.count() == 0
    assert Opportunity.objects.get(pk=opportunity.pk).c_patientsname == ""
    assert mifact.status_calls == []


def test_an_empty_list_closes_nothing(make_opportunity, put_process, mifact):
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, os_body())
    assert response.json()["opportunity"]["stage"] == "Prospección"


def test_invoicing_service_down_never_fails_the_request(make_opportunity, put_process, mifact):
    mifact.down = True
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, os_body(456))
    assert response.status_code == 200
    assert response.json()["opportunity"]["cFacturacionSubEstado"] == "orden_servicio_pendiente_factura"
    row = OpportunityServiceOrder.objects.get()
    assert not row.facturado
    assert row.last_checked_at is not None
    assert "invoice-mifact" in row.last_error


def test_invoicing_service_not_configured_records_the_error(make_opportunity, put_process, settings):
    settings.URL_INVOICE_MIFACT_V3 = ""
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, os_body(456))
    assert response.status_code == 200
    assert "URL_INVOICE_MIFACT_V3" in OpportunityServiceOrder.objects.get().last_error


def test_direct_invoice_then_service_order_keeps_factura_directa(make_opportunity, put_process, mifact):
    mifact.files["direct.pdf"] = mifact.invoice(999)["soles"]  # any served PDF
    opportunity = make_opportunity()
    put_process(
        opportunity.pk,
        {"cClinicHistory": "HC-1", "cFacturas": {"comprobante_soles": "http://mifact.test/api/files/direct.pdf"}},
    )
    response = put_process(opportunity.pk, os_body(456))
    assert response.json()["opportunity"]["cFacturacionSubEstado"] == "factura_directa"


def test_query_count_does_not_grow_with_service_orders_or_attachments(make_opportunity, put_process, mifact):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    small, big = make_opportunity(), make_opportunity()
    put_process(small.pk, os_body(10))
    put_process(big.pk, os_body(*range(10, 40)))
    for opportunity in (small, big):
        for row in OpportunityServiceOrder.objects.filter(opportunity=opportunity):
            row.facturado = True
            row.save()
    counts = []
    for opportunity in (small, big):
        with CaptureQueriesContext(connection) as queries:
            put_process(opportunity.pk, {"cPatientsname": "Ana", "cOrdenesServicio": [10]})
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_a_put_checks_a_bounded_number_of_service_orders(make_opportunity, put_process, mifact, settings):
    settings.INLINE_CHECK_MAX_ORDERS = 3
    opportunity = make_opportunity()
    put_process(opportunity.pk, os_body(*range(100, 108)))
    assert len(mifact.status_calls) == 3
    # The next PUT checks the least recently checked ones.
    put_process(opportunity.pk, {"cPatientsname": "Ana"})
    assert len(set(mifact.status_calls)) == 6


def test_a_put_stops_checking_when_invoice_mifact_is_down(make_opportunity, put_process, mifact):
    mifact.down = True
    opportunity = make_opportunity()
    response = put_process(opportunity.pk, os_body(1, 2, 3))
    assert response.status_code == 200
    checked = OpportunityServiceOrder.objects.exclude(last_checked_at=None).count()
    assert checked == 1  # the first failure stops the checks; the poller does the rest


def test_an_unknown_service_order_at_invoice_mifact_is_a_row_error_not_an_outage(
    orders_with_404, mifact, django_capture_on_commit_callbacks
):
    from billing.services.poll import service_orders_poll

    with django_capture_on_commit_callbacks(execute=True):  # the PDF moves follow the commit
        summary = service_orders_poll(workers=1)
    assert summary.fatal == ""
    assert summary.checked == 60 and summary.invoiced == 1 and summary.errors == 59


@pytest.fixture
def orders_with_404(make_opportunity, mifact, settings):
    """59 O.S that invoice-mifact does not know (404), then one invoiced, in that order."""
    settings.POLL_BATCH_SIZE = 20
    opportunity = make_opportunity(c_clinic_history="HC", stage="Cierre ganado")
    for so in range(1, 61):
        OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=so)
    mifact.invoice(60)
    mifact.unknown = set(range(1, 60))
    return opportunity
