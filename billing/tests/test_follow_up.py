"""Follow-up checks of invoiced O.S: a voided or reissued comprobante is followed, not forgotten."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from billing.models import OpportunityServiceOrder
from opportunities.models import ActionHistory, Attachment, Opportunity

pytestmark = pytest.mark.django_db

SUMMARY = re.compile(r"followed_up=(\d+) replaced=(\d+) voided=(\d+)")


def poll(capture) -> tuple[int, int, int]:
    out = io.StringIO()
    with capture(execute=True):
        call_command("poll_invoices", "--workers", "1", stdout=out)
    match = SUMMARY.search(out.getvalue())
    assert match, out.getvalue()
    return tuple(int(g) for g in match.groups())  # type: ignore[return-value]


@pytest.fixture
def invoiced(mifact, make_opportunity, django_capture_on_commit_callbacks):
    """O.S 456 of a closed opportunity, invoiced (head 900, one PDF in soles) by a poll run."""
    opportunity = make_opportunity(
        stage="Cierre ganado", c_clinic_history="HC-1", c_facturacion_sub_estado="orden_servicio_pendiente_factura"
    )
    OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=456)
    mifact.invoice(456, head_id=900)
    poll(django_capture_on_commit_callbacks)
    row = OpportunityServiceOrder.objects.get()
    assert row.facturado and row.invoiced_at is not None
    return row


def later(minutes: float) -> time_machine.travel:
    return time_machine.travel(timezone.now() + dt.timedelta(minutes=minutes), tick=True)


def test_a_reissue_attaches_the_new_pdfs_once_and_marks_the_old_ones_replaced(
    invoiced, mifact, django_capture_on_commit_callbacks, media_root
):
    mifact.invoice(456, head_id=901, soles=True, dolares=True)
    with later(61):
        assert poll(django_capture_on_commit_callbacks) == (1, 1, 0)
        assert poll(django_capture_on_commit_callbacks) == (0, 0, 0)  # checked this round already
    row = OpportunityServiceOrder.objects.get()
    assert row.facturado and row.invoice_result_head_id == 901 and row.url_dolares
    statuses = sorted(Attachment.objects.values_list("status", "kind"))
    assert statuses == [
        ("reemplazado", "comprobante_soles"),
        ("vigente", "comprobante_dolares"),
        ("vigente", "comprobante_soles"),
    ]
    assert len(list(media_root.rglob("*.pdf"))) == 3  # the earlier PDF is kept
    record = ActionHistory.objects.get(action="service_order_invoice_replaced")
    assert (record.data["oldInvoiceResultHeadId"], record.data["newInvoiceResultHeadId"]) == (900, 901)
    opportunity = Opportunity.objects.get()
    assert (opportunity.stage, opportunity.c_facturacion_sub_estado) == ("Cierre ganado", "factura_directa")


def test_a_void_marks_the_pdfs_voided_and_a_later_reissue_completes_it(
    invoiced, mifact, django_capture_on_commit_callbacks
):
    mifact.void(456)
    with later(61):
        assert poll(django_capture_on_commit_callbacks) == (1, 0, 1)
    row = OpportunityServiceOrder.objects.get()
    assert not row.facturado and row.voided_at is not None
    # No current comprobante until the reissue; the voided one keeps its head id on its PDF.
    assert (row.invoice_result_head_id, row.url_soles, row.url_dolares) == (None, None, None)
    assert list(Attachment.objects.values_list("status", "invoice_result_head_id")) == [("anulado", 900)]
    opportunity = Opportunity.objects.get()
    assert opportunity.c_facturacion_sub_estado == "orden_servicio_pendiente_factura" and opportunity.is_presaved
    voided = ActionHistory.objects.get(action="service_order_invoice_voided")
    assert voided.data["invoiceResultHeadId"] == 900

    # Pending again: the next run asks about it as a pending O.S and completes the reissue.
    mifact.invoice(456, head_id=902)
    with later(62):
        out = io.StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("poll_invoices", "--workers", "1", stdout=out)
        assert "pending=1 checked=1 invoiced=1" in out.getvalue()
    row.refresh_from_db()
    opportunity.refresh_from_db()
    assert row.facturado and row.invoice_result_head_id == 902 and row.invoiced_at > row.voided_at
    assert sorted(Attachment.objects.values_list("status", "invoice_result_head_id")) == [
        ("anulado", 900),
        ("vigente", 902),
    ]
    assert (opportunity.c_facturacion_sub_estado, opportunity.is_presaved) == ("factura_directa", False)


def test_a_void_keeps_factura_directa_while_another_comprobante_is_valid(
    invoiced, mifact, django_capture_on_commit_callbacks, make_opportunity
):
    from billing.tests.fakes import BASE  # noqa: F401 - the fake's host serves the files

    opportunity = Opportunity.objects.get()
    Attachment.objects.create(
        opportunity=opportunity,
        kind="comprobante_soles",
        file="invoices/x/direct.pdf",
        file_name="direct.pdf",
        size=1,
        sha256="d" * 64,
        source_url="http://example.com/direct.pdf",
    )
    mifact.void(456)
    with later(61):
        assert poll(django_capture_on_commit_callbacks) == (1, 0, 1)
    opportunity.refresh_from_db()
    assert opportunity.c_facturacion_sub_estado == "factura_directa" and opportunity.is_presaved is False


def test_still_valid_changes_nothing_and_the_interval_is_honoured(invoiced, mifact, django_capture_on_commit_callbacks):
    calls = len(mifact.status_calls)
    with later(30):
        assert poll(django_capture_on_commit_callbacks) == (0, 0, 0)  # checked 30 min ago: not due
    assert len(mifact.status_calls) == calls and mifact.sign_ins == 1  # not even a sign-in
    with later(61):
        assert poll(django_capture_on_commit_callbacks) == (1, 0, 0)
    assert len(mifact.status_calls) == calls + 1
    assert ActionHistory.objects.filter(action__startswith="service_order_invoice_").count() == 0


def test_the_follow_up_window_ends_after_the_configured_days(
    invoiced, mifact, django_capture_on_commit_callbacks, settings
):
    settings.INVOICE_FOLLOW_UP_DAYS = 7
    calls = len(mifact.status_calls)
    with time_machine.travel(timezone.now() + dt.timedelta(days=7, hours=1), tick=True):
        assert poll(django_capture_on_commit_callbacks) == (0, 0, 0)
    assert len(mifact.status_calls) == calls


@pytest.mark.parametrize("setting", ["INVOICE_FOLLOW_UP_DAYS", "INVOICE_FOLLOW_UP_INTERVAL_MINUTES"])
def test_either_setting_at_0_turns_follow_ups_off(
    invoiced, mifact, django_capture_on_commit_callbacks, settings, setting
):
    setattr(settings, setting, 0)
    mifact.void(456)
    with later(120):
        assert poll(django_capture_on_commit_callbacks) == (0, 0, 0)
    assert OpportunityServiceOrder.objects.get().facturado


def test_follow_ups_run_after_the_pending_ones(invoiced, mifact, make_opportunity, django_capture_on_commit_callbacks):
    other = make_opportunity(stage="Cierre ganado", c_clinic_history="HC-2")
    OpportunityServiceOrder.objects.create(opportunity=other, service_order_id=457)
    before = len(mifact.status_calls)
    with later(61):
        poll(django_capture_on_commit_callbacks)
    assert mifact.status_calls[before:] == [457, 456]


def test_follow_up_queries_per_order_are_constant(
    mifact, make_opportunity, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    def invoiced_orders(count: int, start: int) -> None:
        for offset in range(count):
            opportunity = make_opportunity(stage="Cierre ganado", c_clinic_history="HC")
            OpportunityServiceOrder.objects.create(
                opportunity=opportunity,
                service_order_id=start + offset,
                facturado=True,
                invoice_result_head_id=1,
                invoiced_at=timezone.now(),
                last_checked_at=timezone.now() - dt.timedelta(hours=2),
            )
            mifact.invoice(start + offset, head_id=1)

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def run_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            poll(django_capture_on_commit_callbacks)
        return len(captured)

    invoiced_orders(2, 100)
    few = run_queries()
    invoiced_orders(12, 200)
    OpportunityServiceOrder.objects.update(last_checked_at=timezone.now() - dt.timedelta(hours=2))
    many = run_queries()
    per_order = (many - few) / 12
    assert per_order <= 2, (few, many)  # a still-valid follow-up: one UPDATE of the row (+ claim share)


def test_the_api_shows_the_status_of_each_comprobante_and_when_the_os_was_voided(
    invoiced, mifact, api_client, django_capture_on_commit_callbacks
):
    mifact.void(456)
    with later(61):
        poll(django_capture_on_commit_callbacks)
    opportunity_id = Opportunity.objects.get().pk
    (attachment,) = api_client.get(f"/opportunity/{opportunity_id}/attachments").json()
    assert attachment["status"] == "anulado" and attachment["statusChangedAt"]
    (order,) = api_client.get(f"/opportunity/{opportunity_id}/service-orders").json()
    assert order["facturado"] is False and order["voidedAt"] and order["invoicedAt"]


def poll_opportunity(capture, opportunity_id: str) -> str:
    out = io.StringIO()
    with capture(execute=True):
        call_command("poll_invoices", "--opportunity", opportunity_id, "-v", "2", stdout=out)
    return out.getvalue()


def test_poll_for_one_opportunity_sees_a_void_at_once_whatever_the_interval(
    invoiced, mifact, django_capture_on_commit_callbacks
):
    """A clerk told of a void asks for that sale: no waiting out INVOICE_FOLLOW_UP_INTERVAL_MINUTES."""
    mifact.void(456)
    with later(5):
        assert poll(django_capture_on_commit_callbacks) == (0, 0, 0)  # the cron: not due for 60 min
        out = poll_opportunity(django_capture_on_commit_callbacks, invoiced.opportunity_id)
    assert "O.S 456: comprobante anulado: la O.S espera la reemisión" in out
    assert "followed_up=1 replaced=0 voided=1" in out
    row = OpportunityServiceOrder.objects.get()
    assert not row.facturado and row.voided_at is not None

    # Reissued minutes later: the same forced check completes it as a pending O.S.
    mifact.invoice(456, head_id=903)
    with later(7):
        out = poll_opportunity(django_capture_on_commit_callbacks, invoiced.opportunity_id)
    assert "pending=1 checked=1 invoiced=1" in out
    row.refresh_from_db()
    assert row.facturado and row.invoice_result_head_id == 903


def test_poll_for_one_opportunity_ignores_the_follow_up_window_and_settings(
    invoiced, mifact, django_capture_on_commit_callbacks, settings
):
    """Invoiced long ago, follow-ups switched off: a person's check still asks, and sees a reissue."""
    settings.INVOICE_FOLLOW_UP_DAYS = 0
    mifact.invoice(456, head_id=904)
    with later(60 * 24 * 200):
        assert poll(django_capture_on_commit_callbacks) == (0, 0, 0)
        out = poll_opportunity(django_capture_on_commit_callbacks, invoiced.opportunity_id)
    assert "followed_up=1 replaced=1 voided=0" in out
    assert OpportunityServiceOrder.objects.get().invoice_result_head_id == 904


def test_poll_for_one_opportunity_checks_only_that_one(
    invoiced, mifact, make_opportunity, django_capture_on_commit_callbacks
):
    other = make_opportunity(stage="Cierre ganado", c_clinic_history="HC-2")
    OpportunityServiceOrder.objects.create(opportunity=other, service_order_id=999)
    calls = len(mifact.status_calls)
    with later(1):
        poll_opportunity(django_capture_on_commit_callbacks, invoiced.opportunity_id)
    assert mifact.status_calls[calls:] == [456]


def test_the_admin_check_now_sees_a_void_at_once(invoiced, mifact, django_capture_on_commit_callbacks, staff_client):
    from django.urls import reverse

    from devtools.admin_testing import message_texts

    mifact.void(456)
    with later(2), django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:opportunities_opportunity_changelist"),
            {"action": "check_invoice_status_now", "_selected_action": [invoiced.opportunity_id]},
        )
    assert message_texts(response)[0] == (
        "Órdenes de servicio consultadas: 1; facturadas: 0; con error: 0. "
        "Ya facturadas: comprobante vigente 0; anulado (espera reemisión) 1; reemitido 0."
    )
    assert OpportunityServiceOrder.objects.get().voided_at is not None
