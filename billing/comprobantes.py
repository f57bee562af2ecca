"""Comprobantes (invoice PDFs) of an opportunity: downloaded all or nothing and stored durably
before any row points to them (docs/operations.md "What survives what").

`comprobantes_download` downloads each PDF into the download folder and writes it to its final,
content-addressed place in storage (`opportunities.attachment_files`); only then does a caller
open the transaction that creates the attachment rows (`attachment_store_pdfs`). A process killed
at any point leaves either no row, or a row whose file is there: never a row without its file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from billing.downloads import DownloadedPdf, DownloadError, download_pdf
from billing.downloads.errors import REASON_STORAGE
from opportunities.attachment_files import attachment_file_put
from opportunities.models import Attachment, Opportunity

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredPdf:
    """A downloaded comprobante already stored under its content-addressed `name`."""

    name: str
    size: int
    sha256: str
    content_type: str
    file_name: str
    source_url: str

    def attachment_columns(self) -> dict[str, Any]:
        """The columns of the `Attachment` row that records this file."""
        return {
            "file": self.name,
            "file_name": self.file_name,
            "size": self.size,
            "sha256": self.sha256,
            "content_type": self.content_type,
            "source_url": self.source_url,
        }


def comprobante_store(pdf: DownloadedPdf) -> StoredPdf:
    """Write a downloaded PDF durably to storage and discard the download; a storage failure is a
    `DownloadError` (the URL is not at fault, but the caller reports it the same way)."""
    try:
        name = attachment_file_put(source=pdf.path, sha256=pdf.sha256)
    except Exception as exc:
        logger.exception("Could not store a downloaded comprobante")
        raise DownloadError(pdf.source_url, REASON_STORAGE) from exc
    finally:
        pdf.discard()
    return StoredPdf(
        name=name,
        size=pdf.size,
        sha256=pdf.sha256,
        content_type=pdf.content_type,
        file_name=pdf.file_name,
        source_url=pdf.source_url,
    )


def comprobantes_download(urls: Mapping[str, str]) -> list[tuple[str, StoredPdf]]:
    """Download every comprobante of `urls` (`{kind: url}`, soles first) through the safe
    downloader and store each; returns `[(kind, stored pdf)]`. All or nothing for the caller: on
    any failure the `DownloadError` (or other error) propagates, and what was already stored has
    no row (`attachment_files_sweep` deletes it after the grace period)."""
    stored: list[tuple[str, StoredPdf]] = []
    for kind in (Attachment.Kind.COMPROBANTE_SOLES, Attachment.Kind.COMPROBANTE_DOLARES):
        url = urls.get(kind.value)
        if url:
            stored.append((kind.value, comprobante_store(download_pdf(url))))
    return stored


def attachment_store_pdfs(
    *,
    opportunity: Opportunity,
    pdfs: Iterable[tuple[str, StoredPdf]],
    service_order_id: int | None = None,
    invoice_result_head_id: int | None = None,
) -> list[Attachment]:
    """Attach stored PDFs `(kind, pdf)` to `opportunity` (of the O.S `service_order_id` and the
    invoice-mifact comprobante `invoice_result_head_id`, when given); returns the attachments
    created. Must run inside the transaction that records the close.

    A PDF whose SHA-256 the opportunity already has gets no second row; the existing row is
    pointed at the file just stored (so a row whose file went missing is repaired by sending the
    same PDF again), and if it had been voided or replaced, it is valid again (`vigente`).
    """
    existing = {attachment.sha256: attachment for attachment in opportunity.attachments.all()}
    created: list[Attachment] = []
    for kind, pdf in pdfs:
        again = existing.get(pdf.sha256)
        if again is not None:
            fields = []
            if again.file.name != pdf.name:
                logger.debug("Attachment %s now points to its content-addressed file", again.pk)
                again.file.name = pdf.name
                fields.append("file")
            if again.status != Attachment.Status.VIGENTE:
                again.status, again.status_changed_at = Attachment.Status.VIGENTE, timezone.now()
                fields += ["status", "status_changed_at"]
            if invoice_result_head_id is not None and again.invoice_result_head_id != invoice_result_head_id:
                again.invoice_result_head_id = invoice_result_head_id
                fields.append("invoice_result_head_id")
            if again.file_problem:
                again.file_problem = ""
                fields.append("file_problem")
            if fields:
                again.save(update_fields=fields)
            continue
        attachment = Attachment.objects.create(
            opportunity=opportunity,
            kind=kind,
            service_order_id=service_order_id,
            invoice_result_head_id=invoice_result_head_id,
            **pdf.attachment_columns(),
        )
        existing[pdf.sha256] = attachment
        created.append(attachment)
    return created
