"""`manage.py attachments_check`: every attachment row's file is there with its size and SHA-256,
or is downloaded again from the row's source URL; what cannot be repaired is marked for staff
(docs/operations.md "What survives what").

It also sweeps what crashes leave: downloads whose process died (`download_dir_sweep`) and stored
files that no row points to once they are older than `ATTACHMENT_ORPHAN_GRACE_HOURS`
(`attachment_files_sweep`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import ClassVar

from django.conf import settings
from django.utils import timezone

from billing.comprobantes import comprobante_store
from billing.downloads import DownloadError, download_dir_sweep, download_pdf
from jobs.models import CommandRun
from jobs.summary import RunSummary
from opportunities.attachment_files import attachment_file_problem, attachment_files_sweep
from opportunities.models import Attachment

logger = logging.getLogger(__name__)

PROBLEM_SOURCE_CHANGED = "su dirección de origen ya entrega otro archivo"


@dataclass
class AttachmentCheckSummary(RunSummary):
    """Counts of one run: rows `checked`, of which `ok`, `repaired` and `unrepaired` (marked for
    staff); `orphans` stored files deleted, `downloads` leftover downloads deleted."""

    command: ClassVar[str] = "attachments_check"
    COUNTS: ClassVar[tuple[str, ...]] = ("checked", "ok", "repaired", "unrepaired", "orphans", "downloads")

    checked: int = 0
    ok: int = 0
    repaired: int = 0
    unrepaired: int = 0
    orphans: int = 0
    downloads: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return CommandRun.Outcome.PARTIAL if self.unrepaired else CommandRun.Outcome.OK


def attachment_file_repair(*, attachment: Attachment) -> str:
    """Download `attachment`'s PDF again from its source URL and store it; "" when repaired,
    otherwise why not (Spanish). The row is pointed at the new file only after it is stored."""
    try:
        pdf = download_pdf(attachment.source_url)
    except DownloadError as exc:
        return f"no se pudo descargar de nuevo: {exc.reason}"
    if pdf.sha256 != attachment.sha256 or pdf.size != attachment.size:
        pdf.discard()
        return PROBLEM_SOURCE_CHANGED
    try:
        stored = comprobante_store(pdf)
    except DownloadError as exc:
        return exc.reason
    Attachment.objects.filter(pk=attachment.pk).update(
        file=stored.name, file_problem="", file_checked_at=timezone.now()
    )
    return ""


def attachments_check(*, repair: bool = True, opportunity_id: str | None = None) -> AttachmentCheckSummary:
    """Check every attachment's file (of one opportunity when given). With `repair` (the default),
    download the missing or wrong ones again, mark those that cannot be repaired, and sweep
    leftover downloads and (for a whole run) orphan files; without it, only report, counting
    what would be repaired or deleted."""
    started = time.monotonic()
    summary = AttachmentCheckSummary()
    summary.downloads = download_dir_sweep(delete=repair)
    rows = Attachment.objects.order_by("id")
    if opportunity_id is not None:
        rows = rows.filter(opportunity_id=opportunity_id)
    fine: list[int] = []
    for attachment in rows.iterator(chunk_size=500):
        summary.checked += 1
        problem = attachment_file_problem(
            name=attachment.file.name or "", size=attachment.size, sha256=attachment.sha256
        )
        if not problem:
            summary.ok += 1
            fine.append(attachment.pk)
            continue
        if repair:
            why_not = attachment_file_repair(attachment=attachment)
            if not why_not:
                summary.repaired += 1
                logger.debug("Attachment %s repaired from its source URL (%s)", attachment.pk, problem)
                continue
            problem = f"{problem}; {why_not}"
        summary.unrepaired += 1
        summary.problems.append(f"comprobante {attachment.pk} ({attachment.file_name}): {problem}")
        if repair:
            Attachment.objects.filter(pk=attachment.pk).update(
                file_problem=problem[:200], file_checked_at=timezone.now()
            )
    if repair:
        now = timezone.now()
        for start in range(0, len(fine), 500):
            Attachment.objects.filter(pk__in=fine[start : start + 500]).update(file_problem="", file_checked_at=now)
    if opportunity_id is None:
        grace = dt.timedelta(hours=settings.ATTACHMENT_ORPHAN_GRACE_HOURS)
        summary.orphans = attachment_files_sweep(grace=grace, delete=repair)
    summary.seconds = time.monotonic() - started
    return summary
