"""`manage.py load_sample_day`: a clinic day in the development database with the users to look
at it, replaced (not doubled) when run again, refused without DEBUG."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from billing.models import OpportunityServiceOrder
from devtools.workspace_data import SAMPLE_OPPORTUNITY_IDS
from opportunities.models import ActionHistory, Attachment, Opportunity

pytestmark = pytest.mark.django_db


def test_it_loads_a_clinic_day_and_the_users_and_replaces_it_when_run_again(
    settings: Any, django_user_model: Any
) -> None:
    settings.DEBUG = True
    Opportunity.objects.create(id="mine", name="Una venta mía")
    out = io.StringIO()
    call_command("load_sample_day", stdout=out)
    call_command("load_sample_day", stdout=out)
    assert "Día de ejemplo cargado: 6 oportunidades, 5 O.S, 1 comprobante (reemplazó el anterior)" in out.getvalue()
    assert set(Opportunity.objects.values_list("id", flat=True)) == {*SAMPLE_OPPORTUNITY_IDS, "mine"}
    assert OpportunityServiceOrder.objects.count() == 5
    assert django_user_model.objects.get(username="demo").is_superuser
    assert set(django_user_model.objects.filter(is_staff=True).values_list("username", flat=True)) >= {
        "demo",
        "ventas",
        "facturacion",
        "supervision",
    }


def test_it_refuses_without_debug(settings: Any) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("load_sample_day")
    assert not Opportunity.objects.exists()


def test_the_invoiced_order_has_its_comprobante_to_open(settings: Any, api_client: Any) -> None:
    """O.S 455 is invoiced in the sample: its PDF is stored and opens through the API, and the
    history's invoiced record names that comprobante (not a placeholder)."""
    settings.DEBUG = True
    call_command("load_sample_day", stdout=io.StringIO())
    call_command("load_sample_day", stdout=io.StringIO())  # run again: still one, still whole
    attachment = Attachment.objects.get()
    assert attachment.service_order_id == 455 and attachment.file_problem == ""
    opportunity_id = attachment.opportunity_id
    orders = api_client.get(f"/opportunity/{opportunity_id}/service-orders").json()
    (order,) = [row for row in orders if row["serviceOrderId"] == 455]
    assert order["invoicedAt"] and order["invoiceResultHeadId"] == 901
    assert order["urlSoles"] == attachment.source_url
    listed = api_client.get(f"/opportunity/{opportunity_id}/attachments").json()
    assert [row["id"] for row in listed] == [attachment.pk]
    pdf = api_client.get(f"/opportunity/{opportunity_id}/attachments/{attachment.pk}/download")
    assert pdf.status_code == 200 and b"".join(pdf.streaming_content).startswith(b"%PDF")
    record = ActionHistory.objects.get(opportunity_id=opportunity_id, action="service_order_invoiced")
    assert record.data["attachmentIds"] == [attachment.pk]
