"""Follow-up checks of invoiced service orders: invoice-mifact answers with the last *valid*
comprobante of an O.S, so a completed O.S can later turn out reissued or voided (what each does:
docs/api.md "Voided and reissued comprobantes").

Like first invoices, the network work happens before a short transaction that locks the
opportunity and then the row, and re-reads the row: a change that another process already
applied is not applied twice.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.comprobantes import StoredPdf, attachment_store_pdfs
from billing.mifact import InvoiceStatus, MifactClient
from billing.models import OpportunityServiceOrder
from billing.selectors import service_orders_invoiced
from billing.services.checks import (
    CheckOutcome,
    CheckResult,
    comprobantes_fetch,
    invoice_status_fetch,
    service_order_check_outcome,
    service_order_check_record,
)
from jobs.claims import claim_one
from opportunities.history import HistoryLog
from opportunities.models import ActionHistory, Attachment, FacturacionSubEstado, Opportunity


def service_order_follow_up(
    *, service_order: OpportunityServiceOrder, client: MifactClient | None, claimed: bool = False
) -> CheckOutcome:
    """Ask again about an invoiced O.S and apply a reissue or a void (see the module docstring).
    Never raises for invoice-mifact's or the download's failures: they are recorded on the row
    (which stays facturado) and the next follow-up retries."""
    pk = service_order.pk
    now = timezone.now()
    until = now + dt.timedelta(seconds=settings.POLL_CLAIM_SECONDS)
    if not claimed and not claim_one(service_orders_invoiced(), pk=pk, now=now, until=until):
        return service_order_check_outcome(service_order, CheckResult.SKIPPED)
    checked_at = timezone.now()
    status = invoice_status_fetch(service_order=service_order, client=client, checked_at=checked_at)
    if isinstance(status, CheckOutcome):
        return status
    if status.facturado and status.invoice_result_head_id == service_order.invoice_result_head_id:
        service_order_check_record(pk, error="", checked_at=checked_at)
        return service_order_check_outcome(service_order, CheckResult.STILL_VALID)
    if status.facturado:
        pdfs = comprobantes_fetch(service_order=service_order, status=status, checked_at=checked_at)
        if isinstance(pdfs, CheckOutcome):
            return pdfs
        done = service_order_invoice_replace(
            service_order_pk=pk,
            seen_head_id=service_order.invoice_result_head_id,
            status=status,
            pdfs=pdfs,
            checked_at=checked_at,
        )
        return service_order_check_outcome(service_order, CheckResult.REPLACED if done else CheckResult.ALREADY_DONE)
    done = service_order_invoice_void(
        service_order_pk=pk, seen_head_id=service_order.invoice_result_head_id, checked_at=checked_at
    )
    return service_order_check_outcome(service_order, CheckResult.VOIDED if done else CheckResult.ALREADY_DONE)


def _lock(service_order_pk: int) -> tuple[Opportunity, OpportunityServiceOrder]:
    # Same lock order as the PUT and the completion: the opportunity, then its O.S row.
    opportunity_id = OpportunityServiceOrder.objects.values_list("opportunity_id", flat=True).get(pk=service_order_pk)
    opportunity = Opportunity.objects.select_for_update().get(pk=opportunity_id)
    return opportunity, OpportunityServiceOrder.objects.select_for_update().get(pk=service_order_pk)


def service_order_invoice_replace(
    *,
    service_order_pk: int,
    seen_head_id: int | None,
    status: InvoiceStatus,
    pdfs: list[tuple[str, StoredPdf]],
    checked_at: dt.datetime,
) -> bool:
    """Attach a reissued comprobante in one transaction; False when the
    row is no longer the invoiced `seen_head_id` (another process got there first; the stored
    PDFs then have no row and are swept later)."""
    with transaction.atomic():
        opportunity, row = _lock(service_order_pk)
        if not row.facturado or row.invoice_result_head_id != seen_head_id:
            return False
        attachments = attachment_store_pdfs(
            opportunity=opportunity,
            pdfs=pdfs,
            service_order_id=row.service_order_id,
            invoice_result_head_id=status.invoice_result_head_id,
        )
        new_hashes = {pdf.sha256 for _, pdf in pdfs}
        replaced = Attachment.objects.filter(
            opportunity=opportunity, service_order_id=row.service_order_id, status=Attachment.Status.VIGENTE
        ).exclude(sha256__in=new_hashes)
        replaced_ids = list(replaced.values_list("pk", flat=True))
        replaced.update(status=Attachment.Status.REEMPLAZADO, status_changed_at=checked_at)
        row.invoice_result_head_id = status.invoice_result_head_id
        row.url_soles, row.url_dolares = status.url_soles, status.url_dolares
        row.invoiced_at = row.last_checked_at = checked_at
        row.last_error, row.claimed_until = "", None
        row.error_streak, row.retry_not_before = 0, None
        row.save()
        log = HistoryLog(opportunity=opportunity, user=None)
        log.add(
            ActionHistory.Action.SERVICE_ORDER_INVOICE_REPLACED,
            {
                "serviceOrderId": row.service_order_id,
                "oldInvoiceResultHeadId": seen_head_id,
                "newInvoiceResultHeadId": status.invoice_result_head_id,
                "attachmentIds": [a.pk for a in attachments],
                "replacedAttachmentIds": replaced_ids,
            },
        )
        log.flush()
    return True


def service_order_invoice_void(*, service_order_pk: int, seen_head_id: int | None, checked_at: dt.datetime) -> bool:
    """Record that the comprobante of an invoiced O.S was voided, in one transaction; False when
    the row is no longer the invoiced `seen_head_id`."""
    with transaction.atomic():
        opportunity, row = _lock(service_order_pk)
        if not row.facturado or row.invoice_result_head_id != seen_head_id:
            return False
        voided = Attachment.objects.filter(
            opportunity=opportunity, service_order_id=row.service_order_id, status=Attachment.Status.VIGENTE
        )
        voided_ids = list(voided.values_list("pk", flat=True))
        voided.update(status=Attachment.Status.ANULADO, status_changed_at=checked_at)
        row.facturado = False
        # No valid comprobante until the reissue: the voided one stays in the history record
        # below and on its (voided) attachments, never as the O.S's current one.
        row.invoice_result_head_id = row.url_soles = row.url_dolares = None
        row.voided_at = row.last_checked_at = checked_at
        row.last_error, row.claimed_until = "", None
        row.error_streak, row.retry_not_before = 0, None
        row.save()
        if not opportunity.attachments.filter(status=Attachment.Status.VIGENTE).exists():
            opportunity.c_facturacion_sub_estado = FacturacionSubEstado.ORDEN_SERVICIO_PENDIENTE_FACTURA
            opportunity.is_presaved = True
            opportunity.save(update_fields=["c_facturacion_sub_estado", "is_presaved", "modified_at"])
        log = HistoryLog(opportunity=opportunity, user=None)
        log.add(
            ActionHistory.Action.SERVICE_ORDER_INVOICE_VOIDED,
            {
                "serviceOrderId": row.service_order_id,
                "invoiceResultHeadId": seen_head_id,
                "attachmentIds": voided_ids,
                "subState": opportunity.c_facturacion_sub_estado,
            },
        )
        log.flush()
    return True
