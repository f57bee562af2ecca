"""Completing an invoiced O.S: all or nothing, idempotent (docs/api.md "Service orders and the poller")."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.mifact import InvoiceStatus, MifactClient
from billing.models import OpportunityServiceOrder
from billing.services import checks as services
from billing.services.checks import CheckResult, service_order_check
from billing.tests.fakes import BASE
from opportunities.attachment_files import attachment_files_sweep
from opportunities.models import ActionHistory, Attachment, Opportunity

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(make_opportunity):
    opportunity = make_opportunity(
        stage="Cierre ganado", c_facturacion_sub_estado="orden_servicio_pendiente_factura", c_clinic_history="HC-1"
    )
    return OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=456)


@pytest.fixture
def client(mifact):
    return MifactClient(base_url=BASE, username="admin", password="secreto", retries=0)


def check(row, client, capture):
    with capture(execute=True):
        return service_order_check(service_order=row, client=client)


def files_in(root):
    return [p for p in root.rglob("*") if p.is_file()]


def orphans_swept(root):
    """The files no row points to are deleted by the sweep (with no grace period); returns what is left."""
    attachment_files_sweep(grace=dt.timedelta(0))
    return files_in(root)


def test_pending_service_order_is_completed_when_invoiced(
    pending, client, mifact, media_root, django_capture_on_commit_callbacks
):
    mifact.invoice(456, soles=True, head_id=77)
    outcome = check(pending, client, django_capture_on_commit_callbacks)
    assert outcome.result is CheckResult.INVOICED
    pending.refresh_from_db()
    assert pending.facturado and pending.invoice_result_head_id == 77 and pending.url_dolares is None
    opportunity = Opportunity.objects.get(pk=pending.opportunity_id)
    assert (opportunity.stage, opportunity.c_facturacion_sub_estado, opportunity.is_presaved) == (
        "Cierre ganado",
        "factura_directa",
        False,
    )
    record = ActionHistory.objects.get(action="service_order_invoiced")
    assert record.user_name is None
    assert record.data["invoiceResultHeadId"] == 77
    assert Attachment.objects.get().service_order_id == 456
    assert len(files_in(media_root)) == 1


def test_completing_twice_changes_nothing(pending, client, mifact, media_root, django_capture_on_commit_callbacks):
    mifact.invoice(456)
    check(pending, client, django_capture_on_commit_callbacks)
    status = InvoiceStatus(service_order_id=456, facturado=True, url_soles=f"{BASE}/files/456-900-soles.pdf")
    from billing.comprobantes import comprobantes_download
    from billing.services.checks import service_order_complete

    pdfs = comprobantes_download(status.urls)
    from django.utils import timezone

    with django_capture_on_commit_callbacks(execute=True):
        assert (
            service_order_complete(service_order_pk=pending.pk, status=status, pdfs=pdfs, checked_at=timezone.now())
            is False
        )
    assert Attachment.objects.count() == 1
    assert ActionHistory.objects.filter(action="service_order_invoiced").count() == 1
    assert len(files_in(media_root)) == 1
    # And a new check of an invoiced row does not even ask the service.
    calls = list(mifact.status_calls)
    assert check(pending, client, django_capture_on_commit_callbacks).result is CheckResult.SKIPPED
    assert mifact.status_calls == calls


def test_failed_download_stays_pending_with_the_error(
    pending, client, mifact, media_root, django_capture_on_commit_callbacks
):
    mifact.invoice(456, soles=True, dolares=True, broken=True)
    outcome = check(pending, client, django_capture_on_commit_callbacks)
    assert outcome.result is CheckResult.ERROR
    pending.refresh_from_db()
    assert not pending.facturado
    assert "descarga fallida" in pending.last_error
    assert pending.last_checked_at is not None and pending.claimed_until is None
    assert Attachment.objects.count() == 0 and files_in(media_root) == []
    assert (
        Opportunity.objects.get(pk=pending.opportunity_id).c_facturacion_sub_estado
        == "orden_servicio_pendiente_factura"
    )
    # The next check retries and succeeds once the PDFs are served.
    mifact.invoice(456, soles=True, dolares=True)
    assert check(pending, client, django_capture_on_commit_callbacks).result is CheckResult.INVOICED
    pending.refresh_from_db()
    assert pending.facturado and pending.last_error == ""
    assert Attachment.objects.count() == 2


def test_one_bad_url_of_two_keeps_nothing(pending, client, mifact, media_root, django_capture_on_commit_callbacks):
    mifact.invoice(456, soles=True, dolares=True)
    del mifact.files["456-900-dolares.pdf"]
    assert check(pending, client, django_capture_on_commit_callbacks).result is CheckResult.ERROR
    # The soles PDF was stored before the dollars one failed: a file without a row, swept later.
    assert Attachment.objects.count() == 0 and len(files_in(media_root)) == 1
    assert orphans_swept(media_root) == []


def test_facturado_without_urls_stays_pending(pending, client, mifact, django_capture_on_commit_callbacks):
    mifact.invoice(456, soles=False, dolares=False)
    outcome = check(pending, client, django_capture_on_commit_callbacks)
    assert outcome.result is CheckResult.ERROR
    pending.refresh_from_db()
    assert not pending.facturado
    assert pending.last_error == services.ERROR_NO_URLS


def test_a_claimed_row_is_skipped(pending, client, mifact, django_capture_on_commit_callbacks):
    assert services.service_order_claim(pk=pending.pk)
    assert check(pending, client, django_capture_on_commit_callbacks).result is CheckResult.SKIPPED
    assert mifact.status_calls == []


def test_an_expired_claim_is_taken_over(pending, client, mifact, django_capture_on_commit_callbacks):
    from django.utils import timezone

    OpportunityServiceOrder.objects.filter(pk=pending.pk).update(claimed_until=timezone.now() - dt.timedelta(seconds=1))
    assert check(pending, client, django_capture_on_commit_callbacks).result is CheckResult.PENDING


def test_an_error_inside_the_completion_leaves_no_row_and_no_change(
    pending, client, mifact, media_root, monkeypatch, django_capture_on_commit_callbacks
):
    mifact.invoice(456)

    def fail(self):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(services.HistoryLog, "flush", fail)
    outcome = check(pending, client, django_capture_on_commit_callbacks)
    assert outcome.result is CheckResult.ERROR
    pending.refresh_from_db()
    assert not pending.facturado and "RuntimeError" in pending.last_error
    assert Attachment.objects.count() == 0 and orphans_swept(media_root) == []


def test_a_storage_failure_leaves_the_order_pending_and_nothing_behind(
    pending, client, mifact, media_root, monkeypatch, django_capture_on_commit_callbacks
):
    """The file is stored before any row: a disk that fails leaves the O.S pending, with no row and
    no download behind, and the next check stores it."""
    from opportunities import attachment_files

    mifact.invoice(456)

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(attachment_files, "_local_put", disk_full)
    check(pending, client, django_capture_on_commit_callbacks)
    pending.refresh_from_db()
    assert not pending.facturado and "no se pudo guardar" in pending.last_error
    assert Attachment.objects.count() == 0 and files_in(media_root) == []
    monkeypatch.undo()
    assert check(pending, client, django_capture_on_commit_callbacks).result is CheckResult.INVOICED
    assert Attachment.objects.count() == 1 and len(files_in(media_root)) == 1
