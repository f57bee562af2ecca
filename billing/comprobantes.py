"""Comprobantes (invoice PDFs) of an opportunity: downloaded all or nothing, then stored after
the commit that records them (docs/api.md "Downloading comprobantes").

A PDF reaches `MEDIA_ROOT` (or the configured storage) only after the attachment row that
references it is committed; a row whose file cannot be stored is removed again, so there is
never a row without its file nor a file without its row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from functools import partial

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from billing.downloads import DownloadedPdf, download_pdf
from billing.models import OpportunityServiceOrder, ServiceOrderErrorKind
from opportunities.models import Attachment, Opportunity

logger = logging.getLogger(__name__)


def _store_file_after_commit(attachment_id: int, name: str, pdf: DownloadedPdf) -> None:
    try:
        with pdf.path.open("rb") as handle:
            saved = default_storage.save(name, File(handle, name=pdf.file_name))
        if saved != name:
            Attachment.objects.filter(pk=attachment_id).update(file=saved)
    except Exception as exc:
        # A row without its file would be served as a broken download: drop the row. When the
        # PDF came from an O.S, put the O.S back to pending so the poller downloads it again
        # (a direct invoice is sent again by the front-end; the same PDF is then accepted).
        logger.exception("Could not store attachment %s; removing its row", attachment_id)
        attachment = Attachment.objects.filter(pk=attachment_id).first()
        if attachment is not None:
            if attachment.service_order_id is not None:
                OpportunityServiceOrder.objects.filter(
                    opportunity_id=attachment.opportunity_id, service_order_id=attachment.service_order_id
                ).update(
                    facturado=False,
                    last_error=f"no se pudo guardar el comprobante: {exc.__class__.__name__}; se reintentará",
                    last_error_kind=ServiceOrderErrorKind.INTERNAL,
                    updated_at=timezone.now(),
                )
            attachment.delete()
    finally:
        pdf.discard()


def attachment_store_pdfs(
    *,
    opportunity: Opportunity,
    pdfs: Iterable[tuple[str, DownloadedPdf]],
    service_order_id: int | None = None,
) -> list[Attachment]:
    """Attach downloaded PDFs `(kind, pdf)` to `opportunity`; returns the attachments created.

    A PDF whose SHA-256 the opportunity already has is not stored again; if that attachment had
    been voided or replaced, the same comprobante is valid again (`vigente`). Must run inside a
    transaction: each file is moved from its temporary path into storage only after that
    transaction commits (and its temp file deleted); on rollback the caller discards the PDFs.
    """
    existing = {attachment.sha256: attachment for attachment in opportunity.attachments.all()}
    created: list[Attachment] = []
    for kind, pdf in pdfs:
        if pdf.sha256 in existing:
            again = existing[pdf.sha256]
            if again.status != Attachment.Status.VIGENTE:
                again.status, again.status_changed_at = Attachment.Status.VIGENTE, timezone.now()
                again.save(update_fields=["status", "status_changed_at"])
            transaction.on_commit(pdf.discard)
            continue
        name = f"invoices/{opportunity.pk}/{pdf.sha256[:16]}-{pdf.file_name}"
        attachment = Attachment.objects.create(
            opportunity=opportunity,
            kind=kind,
            file=name,
            file_name=pdf.file_name,
            size=pdf.size,
            sha256=pdf.sha256,
            content_type=pdf.content_type,
            source_url=pdf.source_url,
            service_order_id=service_order_id,
        )
        existing[pdf.sha256] = attachment
        transaction.on_commit(partial(_store_file_after_commit, attachment.pk, name, pdf))
        created.append(attachment)
    return created


def discard_pdfs(pdfs: Iterable[tuple[str, DownloadedPdf]]) -> None:
    """Delete the temporary files of downloaded PDFs (used when their transaction fails)."""
    for _kind, pdf in pdfs:
        pdf.discard()


def comprobantes_download(urls: Mapping[str, str]) -> list[tuple[str, DownloadedPdf]]:
    """Download every comprobante of `urls` (`{kind: url}`, soles first) through the safe
    downloader; returns `[(kind, pdf)]` in temporary files. All or nothing: on any failure the
    files already downloaded are deleted and the `DownloadError` (or other error) propagates."""
    downloaded: list[tuple[str, DownloadedPdf]] = []
    try:
        for kind in (Attachment.Kind.COMPROBANTE_SOLES, Attachment.Kind.COMPROBANTE_DOLARES):
            url = urls.get(kind.value)
            if url:
                downloaded.append((kind.value, download_pdf(url)))
    except BaseException:
        discard_pdfs(downloaded)
        raise
    return downloaded
