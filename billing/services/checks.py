"""Checking one service order (O.S) against invoice-mifact, and completing it when *facturado*.

One unit of work is one O.S: `service_order_check` claims it, asks invoice-mifact for its status
(network, no transaction open), downloads the comprobantes when it is *facturado* (network, no
transaction open), then completes it in one short transaction that locks the opportunity and the
row. The PUT, the poller and the admin all go through it, so two of them never complete the same
O.S twice. `service_orders_check_bounded` is the budgeted loop of the PUT and the admin
(docs/api.md "Service orders and the poller").
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.utils import Error as DatabaseError
from django.utils import timezone

from billing.backoff import error_retry_not_before
from billing.comprobantes import StoredPdf, attachment_store_pdfs, comprobantes_download
from billing.downloads import DownloadError
from billing.mifact import (
    InvoiceStatus,
    MifactBadResponse,
    MifactClient,
    MifactError,
    MifactNotConfigured,
    MifactRefusedServiceOrder,
    MifactThrottled,
    MifactUnavailable,
    mifact_configuration_problem,
    shared_mifact_client,
)
from billing.models import OpportunityServiceOrder, ServiceOrderErrorKind
from billing.problems import ERROR_NO_URLS, error_kind_for_exception
from billing.selectors import service_orders_pending
from crm.database import connection_lost
from jobs.claims import claim_one
from opportunities.history import HistoryLog
from opportunities.models import ActionHistory, FacturacionSubEstado, Opportunity
from opportunities.services import CLOSE_COLUMNS, opportunity_close_won

logger = logging.getLogger(__name__)


class CheckResult(enum.Enum):
    """What one check of one O.S ended in."""

    PENDING = "pending"  # asked; not facturado yet
    INVOICED = "invoiced"  # completed now: PDFs attached, opportunity updated
    ALREADY_DONE = "already_done"  # someone else completed it first
    SKIPPED = "skipped"  # claimed by another worker right now
    ERROR = "error"  # error recorded on the row; a later check retries
    SERVICE_ERROR = "service_error"  # invoice-mifact unreachable or refused us
    DATABASE_ERROR = "database_error"  # the database connection was lost (the poll run stops)
    # Follow-up checks of an invoiced O.S (billing.services.follow_up):
    STILL_VALID = "still_valid"  # the same comprobante is still the valid one
    REPLACED = "replaced"  # reissued: the new comprobantes attached, the earlier marked replaced
    VOIDED = "voided"  # voided: its comprobantes marked voided, the O.S pending again


@dataclass(frozen=True)
class CheckOutcome:
    """Result of `service_order_check`: the row's id, the result, the error text (or ""), the
    O.S id at invoice-mifact (None when unknown) and the error's `ServiceOrderErrorKind` (or "")."""

    service_order_pk: int
    result: CheckResult
    error: str = ""
    service_order_id: int | None = None
    error_kind: str = ""
    # invoice-mifact refused this O.S (a 4xx): the poll leaves it alone for a while.
    deferred: bool = False
    # invoice-mifact asked to wait (a 429, or a 503 with Retry-After): the poll pauses for
    # `retry_after` seconds (None: the cap). billing/backoff.py
    throttled: bool = False
    retry_after: float | None = None


def service_order_claim(*, pk: int, now: dt.datetime | None = None) -> bool:
    """Claim one pending O.S for `POLL_CLAIM_SECONDS`; False when it is taken or already facturado."""
    now = now or timezone.now()
    until = now + dt.timedelta(seconds=settings.POLL_CLAIM_SECONDS)
    return claim_one(service_orders_pending(), pk=pk, now=now, until=until)


def service_order_check_record(pk: int, *, error: str, kind: str = "", checked_at: dt.datetime, **extra: Any) -> None:
    """Record a check on the row and end its claim. An answer (no error) also ends an error
    backoff (billing/backoff.py)."""
    if not error:
        extra = {"error_streak": 0, "retry_not_before": None, **extra}
    OpportunityServiceOrder.objects.filter(pk=pk).update(
        last_checked_at=checked_at,
        last_error=error[:2000],
        last_error_kind=kind if error else "",
        claimed_until=None,
        updated_at=checked_at,
        **extra,
    )


def service_order_complete(
    *, service_order_pk: int, status: InvoiceStatus, pdfs: list[tuple[str, StoredPdf]], checked_at: dt.datetime
) -> bool:
    """Complete an invoiced O.S in one transaction (docs/api.md "invoice-mifact", last paragraph).

    Locks the row; when it is still pending: attaches `pdfs` with the O.S id, fills `facturado`,
    `invoice_result_head_id`, `url_soles`, `url_dolares`, sets the opportunity's
    `isPresaved = false` and sub-state `factura_directa` (stage *Cierre ganado*) and writes
    `service_order_invoiced`. Returns False when it was already facturado (the stored `pdfs` then
    have no row; the orphan sweep deletes them).
    """
    opportunity_id = OpportunityServiceOrder.objects.values_list("opportunity_id", flat=True).get(pk=service_order_pk)
    with transaction.atomic():
        # Same lock order as the PUT (opportunity, then its O.S rows): no deadlock between them.
        opportunity = Opportunity.objects.select_for_update().get(pk=opportunity_id)
        row = OpportunityServiceOrder.objects.select_for_update().get(pk=service_order_pk)
        if row.facturado:
            return False
        log = HistoryLog(opportunity=opportunity, user=None)
        attachments = attachment_store_pdfs(
            opportunity=opportunity,
            pdfs=pdfs,
            service_order_id=row.service_order_id,
            invoice_result_head_id=status.invoice_result_head_id,
        )
        row.facturado = True
        row.invoice_result_head_id = status.invoice_result_head_id
        row.url_soles = status.url_soles
        row.url_dolares = status.url_dolares
        row.last_checked_at = checked_at
        row.invoiced_at = checked_at  # the follow-up window starts here (also after a reissue)
        row.last_error = ""
        row.last_error_kind = ""
        row.error_streak, row.retry_not_before = 0, None
        row.claimed_until = None
        row.save()
        opportunity_close_won(
            opportunity=opportunity,
            sub_state=FacturacionSubEstado.FACTURA_DIRECTA,
            log=log,
            data={"via": "cOrdenesServicio", "serviceOrderId": row.service_order_id},
        )
        opportunity.save(update_fields=[*CLOSE_COLUMNS, "modified_at"])
        log.add(
            ActionHistory.Action.SERVICE_ORDER_INVOICED,
            {
                "serviceOrderId": row.service_order_id,
                "invoiceResultHeadId": status.invoice_result_head_id,
                "attachmentIds": [a.pk for a in attachments],
                "urls": {"soles": status.url_soles, "dolares": status.url_dolares},
            },
        )
        log.flush()
    return True


def service_order_check_outcome(
    service_order: OpportunityServiceOrder, result: CheckResult, error: str = "", kind: str = "", **flags: Any
) -> CheckOutcome:
    # DEBUG: under cron a good run prints only its summary line (`-v 2` lists the O.S).
    logger.debug(
        "Service order checked: %s %s",
        result.value,
        error,
        extra={"opportunity_id": service_order.opportunity_id, "service_order_id": service_order.service_order_id},
    )
    return CheckOutcome(service_order.pk, result, error, service_order.service_order_id, kind if error else "", **flags)


def invoice_status_fetch(
    *, service_order: OpportunityServiceOrder, client: MifactClient | None, checked_at: dt.datetime
) -> InvoiceStatus | CheckOutcome:
    """Ask invoice-mifact for the O.S's status; on failure, record the error on the row and return
    the outcome instead (a row error when the service answered about this O.S, a service error
    when it is down or refuses us). `client` None means invoice-mifact is not configured."""
    pk = service_order.pk
    try:
        if client is None:
            raise MifactNotConfigured(mifact_configuration_problem() or "invoice-mifact no está configurado")
        return client.get_invoice_status(service_order.service_order_id)
    except MifactRefusedServiceOrder as exc:
        # A 4xx about this O.S (e.g. 404 for a mistyped id): a row error, and the poll leaves the
        # O.S alone for a while, longer with each refusal in a row.
        kind, streak = error_kind_for_exception(exc), service_order.error_streak + 1
        retry_not_before = error_retry_not_before(streak=streak, now=checked_at)
        service_order_check_record(
            pk,
            error=f"invoice-mifact: {exc}",
            kind=kind,
            checked_at=checked_at,
            error_streak=streak,
            retry_not_before=retry_not_before,
        )
        return service_order_check_outcome(service_order, CheckResult.ERROR, str(exc), kind, deferred=True)
    except MifactBadResponse as exc:
        # invoice-mifact answered, about this O.S, something unreadable: a row error, not the
        # service being down.
        kind = error_kind_for_exception(exc)
        service_order_check_record(pk, error=f"invoice-mifact: {exc}", kind=kind, checked_at=checked_at)
        return service_order_check_outcome(service_order, CheckResult.ERROR, error=str(exc), kind=kind)
    except MifactError as exc:
        kind = error_kind_for_exception(exc)
        service_order_check_record(pk, error=f"invoice-mifact: {exc}", kind=kind, checked_at=checked_at)
        retry_after = exc.retry_after if isinstance(exc, MifactUnavailable) else None
        throttled = isinstance(exc, MifactThrottled) or retry_after is not None
        return service_order_check_outcome(
            service_order, CheckResult.SERVICE_ERROR, str(exc), kind, throttled=throttled, retry_after=retry_after
        )
    except Exception as exc:  # never let one O.S break a request or a poll run
        logger.exception("Unexpected error checking service order %s", pk)
        internal = ServiceOrderErrorKind.INTERNAL
        service_order_check_record(
            pk, error=f"error inesperado: {exc.__class__.__name__}", kind=internal, checked_at=checked_at
        )
        return service_order_check_outcome(
            service_order, CheckResult.ERROR, error=exc.__class__.__name__, kind=internal
        )


def comprobantes_fetch(
    *, service_order: OpportunityServiceOrder, status: InvoiceStatus, checked_at: dt.datetime
) -> list[tuple[str, StoredPdf]] | CheckOutcome:
    """Download and store the comprobantes of a *facturado* status (all or nothing); on failure (no
    URL, a refused download, storage failing) record the error on the row and return the outcome instead."""
    if not status.urls:
        no_urls = ServiceOrderErrorKind.NO_COMPROBANTE
        service_order_check_record(service_order.pk, error=ERROR_NO_URLS, kind=no_urls, checked_at=checked_at)
        return service_order_check_outcome(service_order, CheckResult.ERROR, error=ERROR_NO_URLS, kind=no_urls)
    try:
        return comprobantes_download(status.urls)
    except DownloadError as exc:
        message = f"descarga fallida: {exc}"
        download = ServiceOrderErrorKind.DOWNLOAD
        service_order_check_record(service_order.pk, error=message, kind=download, checked_at=checked_at)
        return service_order_check_outcome(service_order, CheckResult.ERROR, error=message, kind=download)


def service_order_check(
    *,
    service_order: OpportunityServiceOrder,
    client: MifactClient | None,
    claimed: bool = False,
    record_pending: Callable[[int, dt.datetime], None] | None = None,
) -> CheckOutcome:
    """Check one O.S against invoice-mifact and complete it when *facturado*.

    Claims the row first unless `claimed`. A "not invoiced yet" answer is recorded on the row, or
    handed to `record_pending(pk, checked_at)` when given (the poll writes those in batches,
    billing/services/poll_writes.py). `client` None means invoice-mifact is not configured
    (the error is recorded). Never raises for the service's or the download's failures: they are
    recorded in `last_error` (and `last_checked_at`) and reported in the outcome; the row stays
    pending so the next check retries.
    """
    pk = service_order.pk
    if not claimed and not service_order_claim(pk=pk):
        return service_order_check_outcome(service_order, CheckResult.SKIPPED)
    checked_at = timezone.now()
    status = invoice_status_fetch(service_order=service_order, client=client, checked_at=checked_at)
    if isinstance(status, CheckOutcome):
        return status
    if not status.facturado:
        if record_pending is not None:
            record_pending(pk, checked_at)
        else:
            service_order_check_record(pk, error="", checked_at=checked_at)
        return service_order_check_outcome(service_order, CheckResult.PENDING)
    pdfs = comprobantes_fetch(service_order=service_order, status=status, checked_at=checked_at)
    if isinstance(pdfs, CheckOutcome):
        return pdfs
    try:
        done = service_order_complete(service_order_pk=pk, status=status, pdfs=pdfs, checked_at=checked_at)
    except Exception as exc:
        if isinstance(exc, DatabaseError) and connection_lost(exc):
            raise  # nothing can be recorded without the database: the caller stops (billing.services.poll)
        logger.exception("Could not complete service order %s", pk)
        internal = ServiceOrderErrorKind.INTERNAL
        service_order_check_record(
            pk, error=f"no se pudo completar: {exc.__class__.__name__}", kind=internal, checked_at=checked_at
        )
        return service_order_check_outcome(
            service_order, CheckResult.ERROR, error=exc.__class__.__name__, kind=internal
        )
    return service_order_check_outcome(service_order, CheckResult.INVOICED if done else CheckResult.ALREADY_DONE)


@dataclass
class BoundedCheckReport:
    """What `service_orders_check_bounded` did: the outcomes of the O.S it checked, and how many it
    did not start because of each bound."""

    outcomes: list[CheckOutcome] = field(default_factory=list)
    over_max_rows: int = 0
    out_of_time: int = 0
    after_service_failures: int = 0

    @property
    def not_started(self) -> int:
        return self.over_max_rows + self.out_of_time + self.after_service_failures


def service_orders_check_bounded(
    *,
    rows: Iterable[OpportunityServiceOrder],
    client: MifactClient | None,
    max_rows: int,
    budget_seconds: float,
    max_service_failures: int,
    check: Callable[..., CheckOutcome] | None = None,
) -> BoundedCheckReport:
    """Check `rows` one after another while a person waits: at most `max_rows` of them, none
    started after `budget_seconds`, and none after `max_service_failures` failures of
    invoice-mifact itself in a row (down, or refusing us). What is not started is left to the
    5-minute poller. Rows being checked by someone else right now are skipped; errors are recorded
    on the rows. Never raises for invoice-mifact or download failures. `check` checks one row
    (default `service_order_check`, pending O.S; the admin passes
    `billing.services.forced.service_order_check_now`, any O.S)."""
    check = check or service_order_check
    rows = list(rows)
    report = BoundedCheckReport(over_max_rows=max(0, len(rows) - max_rows))
    batch = rows[:max_rows]
    deadline = time.monotonic() + budget_seconds
    failures_in_a_row = 0
    for index, row in enumerate(batch):
        if time.monotonic() > deadline:
            report.out_of_time = len(batch) - index
            break
        outcome = check(service_order=row, client=client)
        report.outcomes.append(outcome)
        if outcome.result is not CheckResult.SERVICE_ERROR:
            failures_in_a_row = 0
            continue
        failures_in_a_row += 1
        if failures_in_a_row >= max_service_failures:
            report.after_service_failures = len(batch) - index - 1
            break
    return report


def opportunity_check_service_orders(*, opportunity_id: str) -> list[CheckOutcome]:
    """Check the pending O.S of one opportunity now, as a PUT does after its commit: at most
    `INLINE_CHECK_MAX_ORDERS` (least recently checked first), within
    `INLINE_CHECK_BUDGET_SECONDS`, and none after one failure of invoice-mifact itself; the
    request never waits long. Returns the outcomes (empty when nothing is pending)."""
    limit = settings.INLINE_CHECK_MAX_ORDERS
    pending = list(
        service_orders_pending()
        .filter(opportunity_id=opportunity_id)
        .order_by(F("last_checked_at").asc(nulls_first=True), "id")[:limit]
    )
    if not pending:
        return []
    return service_orders_check_bounded(
        rows=pending,
        client=shared_mifact_client(),
        max_rows=limit,
        budget_seconds=settings.INLINE_CHECK_BUDGET_SECONDS,
        max_service_failures=1,
    ).outcomes
