"""Writes on service orders (O.S): registration, claiming, checking and completion.

Source document sections 2.3, 5, 6 and 7; CONTRACT.md sections 5 (items 7-8) and 7.

One unit of work is one O.S: `service_order_check` claims it, asks invoice-mifact for its
status (network, no transaction open), downloads the comprobantes when it is *facturado*
(network, no transaction open), then completes it in one short transaction that locks the row
and the opportunity. The PUT endpoint, the `poll_invoices` command and the admin action all go
through `service_order_check`, so two of them never complete the same O.S twice.
"""
from __future__ import annotations

import datetime as dt
import enum
import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from billing.downloads import DownloadedPdf, DownloadError
from billing.mifact import (
    InvoiceStatus,
    MifactBadResponse,
    MifactClient,
    MifactError,
    MifactNotConfigured,
    mifact_configuration_problem,
)
from billing.models import OpportunityServiceOrder
from crm.claims import claim_batch, claim_one
from opportunities.models import ActionHistory, FacturacionSubEstado, Opportunity
from opportunities.services import (
    CLOSE_COLUMNS,
    HistoryLog,
    attachment_store_pdfs,
    comprobantes_download,
    discard_pdfs,
    opportunity_close_won,
)

logger = logging.getLogger(__name__)

ERROR_NO_URLS = "facturado sin URLs de comprobante; se reintentará"


class CheckResult(enum.Enum):
    """What one check of one O.S ended in."""

    PENDING = "pending"  # asked; not facturado yet
    INVOICED = "invoiced"  # completed now: PDFs attached, opportunity updated
    ALREADY_DONE = "already_done"  # someone else completed it first
    SKIPPED = "skipped"  # claimed by another worker right now
    ERROR = "error"  # error recorded on the row; a later check retries
    SERVICE_ERROR = "service_error"  # invoice-mifact unreachable or refused us


@dataclass(frozen=True)
class CheckOutcome:
    """Result of `service_order_check`: the row's id, the result, the error text (or "") and the
    O.S id at invoice-mifact (None when unknown)."""

    service_order_pk: int
    result: CheckResult
    error: str = ""
    service_order_id: int | None = None


def _claim_seconds() -> int:
    return settings.POLL_CLAIM_SECONDS


def pending_service_orders() -> QuerySet[OpportunityServiceOrder]:
    """Every O.S with `facturado = false` (served by the partial index)."""
    return OpportunityServiceOrder.objects.filter(facturado=False)


# --- registration (inside the process-update transaction) -------------------------------------


def service_orders_register(
    *,
    opportunity: Opportunity,
    service_order_ids: Iterable[int],
    metadata: Mapping[int, Any] | None,
    log: HistoryLog,
) -> list[int]:
    """Store each O.S id once for `opportunity` with its metadata; return the ids newly added.

    Existing rows get their metadata replaced when the body carries metadata for them. Adds
    `service_orders_registered` to `log` when ids were added. Runs inside the caller's transaction.
    """
    metadata = metadata or {}
    wanted = list(dict.fromkeys(service_order_ids))
    existing = {
        row.service_order_id: row
        for row in OpportunityServiceOrder.objects.filter(opportunity=opportunity, service_order_id__in=wanted)
    }
    added = [service_order_id for service_order_id in wanted if service_order_id not in existing]
    OpportunityServiceOrder.objects.bulk_create(
        OpportunityServiceOrder(opportunity=opportunity, service_order_id=so, metadata=metadata.get(so)) for so in added
    )
    for service_order_id, row in existing.items():
        if service_order_id in metadata and row.metadata != metadata[service_order_id]:
            row.metadata = metadata[service_order_id]
            row.save(update_fields=["metadata", "updated_at"])
    if added:
        log.add(ActionHistory.Action.SERVICE_ORDERS_REGISTERED, {"serviceOrderIds": added})
    return added


def opportunity_close_with_service_orders(*, opportunity: Opportunity, log: HistoryLog) -> None:
    """*Cierre ganado* with O.S: sub-state `orden_servicio_pendiente_factura` unless already
    `factura_directa` (CONTRACT.md 5.7). Runs inside the caller's transaction."""
    sub_state = opportunity.c_facturacion_sub_estado
    if sub_state != FacturacionSubEstado.FACTURA_DIRECTA:
        sub_state = FacturacionSubEstado.ORDEN_SERVICIO_PENDIENTE_FACTURA
    opportunity_close_won(opportunity=opportunity, sub_state=sub_state, log=log, data={"via": "cOrdenesServicio"})


# --- claiming ---------------------------------------------------------------------------------


def service_order_claim(*, pk: int, now: dt.datetime | None = None) -> bool:
    """Claim one pending O.S for `POLL_CLAIM_SECONDS`; False when it is taken or already facturado."""
    now = now or timezone.now()
    until = now + dt.timedelta(seconds=_claim_seconds())
    return claim_one(pending_service_orders(), pk=pk, now=now, until=until)


def _due_service_orders(*, round_started_at: dt.datetime, opportunity_id: str | None) -> QuerySet:
    """The O.S of one poll round: pending and registered when the round started, and not checked
    since (by anyone: another run, a PUT, the admin). Of one opportunity when given."""
    due = pending_service_orders().filter(created_at__lte=round_started_at).filter(
        Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=round_started_at)
    )
    return due if opportunity_id is None else due.filter(opportunity_id=opportunity_id)


def service_orders_claim_batch(
    *,
    limit: int,
    round_started_at: dt.datetime,
    opportunity_id: str | None = None,
) -> list[OpportunityServiceOrder]:
    """Claim up to `limit` O.S of the round that started at `round_started_at` (pending then, not
    checked since), oldest check first.

    `crm.claims.claim_batch`: SKIP LOCKED on PostgreSQL, conditional updates elsewhere. Returns
    the claimed rows.
    """
    now = timezone.now()
    candidates = _due_service_orders(round_started_at=round_started_at, opportunity_id=opportunity_id).order_by(
        F("last_checked_at").asc(nulls_first=True), "id"
    )
    ids = claim_batch(candidates, limit=limit, now=now, until=now + dt.timedelta(seconds=_claim_seconds()))
    if not ids:
        return []
    return list(OpportunityServiceOrder.objects.filter(pk__in=ids).order_by("id"))


# --- checking and completing ------------------------------------------------------------------


def _record(pk: int, *, error: str, checked_at: dt.datetime, **extra: Any) -> None:
    OpportunityServiceOrder.objects.filter(pk=pk).update(
        last_checked_at=checked_at, last_error=error[:2000], claimed_until=None, updated_at=checked_at, **extra
    )


def service_order_complete(
    *, service_order_pk: int, status: InvoiceStatus, pdfs: list[tuple[str, DownloadedPdf]], checked_at: dt.datetime
) -> bool:
    """Complete an invoiced O.S in one transaction (source document section 6.1, last paragraph).

    Locks the row; when it is still pending: attaches `pdfs` with the O.S id, fills `facturado`,
    `invoice_result_head_id`, `url_soles`, `url_dolares`, sets the opportunity's
    `isPresaved = false` and sub-state `factura_directa` (stage *Cierre ganado*) and writes
    `service_order_invoiced`. Returns False (and discards `pdfs`) when it was already facturado.
    """
    try:
        opportunity_id = OpportunityServiceOrder.objects.values_list("opportunity_id", flat=True).get(
            pk=service_order_pk
        )
        with transaction.atomic():
            # Same lock order as the PUT (opportunity, then its O.S rows): no deadlock between them.
            opportunity = Opportunity.objects.select_for_update().get(pk=opportunity_id)
            row = OpportunityServiceOrder.objects.select_for_update().get(pk=service_order_pk)
            if row.facturado:
                discard_pdfs(pdfs)
                return False
            log = HistoryLog(opportunity=opportunity, user=None)
            attachments = attachment_store_pdfs(
                opportunity=opportunity, pdfs=pdfs, service_order_id=row.service_order_id
            )
            row.facturado = True
            row.invoice_result_head_id = status.invoice_result_head_id
            row.url_soles = status.url_soles
            row.url_dolares = status.url_dolares
            row.last_checked_at = checked_at
            row.last_error = ""
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
    except BaseException:
        discard_pdfs(pdfs)
        raise
    return True


def _outcome(service_order: OpportunityServiceOrder, result: CheckResult, error: str = "") -> CheckOutcome:
    return CheckOutcome(service_order.pk, result, error, service_order.service_order_id)


def service_order_check(
    *,
    service_order: OpportunityServiceOrder,
    client: MifactClient | None,
    claimed: bool = False,
) -> CheckOutcome:
    """Check one O.S against invoice-mifact and complete it when *facturado* (CONTRACT.md 7).

    Claims the row first unless `claimed`. `client` None means invoice-mifact is not configured
    (the error is recorded). Never raises for the service's or the download's failures: they are
    recorded in `last_error` (and `last_checked_at`) and reported in the outcome; the row stays
    pending so the next check retries.
    """
    pk = service_order.pk
    if not claimed and not service_order_claim(pk=pk):
        return _outcome(service_order, CheckResult.SKIPPED)
    checked_at = timezone.now()
    try:
        if client is None:
            raise MifactNotConfigured(mifact_configuration_problem() or "invoice-mifact no está configurado")
        status = client.get_invoice_status(service_order.service_order_id)
    except MifactBadResponse as exc:
        # invoice-mifact answered, about this O.S (e.g. 404 for a mistyped id): a row error,
        # not the service being down.
        _record(pk, error=f"invoice-mifact: {exc}", checked_at=checked_at)
        return _outcome(service_order, CheckResult.ERROR, error=str(exc))
    except MifactError as exc:
        _record(pk, error=f"invoice-mifact: {exc}", checked_at=checked_at)
        return _outcome(service_order, CheckResult.SERVICE_ERROR, error=str(exc))
    except Exception as exc:  # never let one O.S break a request or a poll run
        logger.exception("Unexpected error checking service order %s", pk)
        _record(pk, error=f"error inesperado: {exc.__class__.__name__}", checked_at=checked_at)
        return _outcome(service_order, CheckResult.ERROR, error=exc.__class__.__name__)

    if not status.facturado:
        _record(pk, error="", checked_at=checked_at)
        return _outcome(service_order, CheckResult.PENDING)
    if not status.urls:
        _record(pk, error=ERROR_NO_URLS, checked_at=checked_at)
        return _outcome(service_order, CheckResult.ERROR, error=ERROR_NO_URLS)
    try:
        pdfs = comprobantes_download(status.urls)
    except DownloadError as exc:
        message = f"descarga fallida: {exc}"
        _record(pk, error=message, checked_at=checked_at)
        return _outcome(service_order, CheckResult.ERROR, error=message)
    try:
        done = service_order_complete(service_order_pk=pk, status=status, pdfs=pdfs, checked_at=checked_at)
    except Exception as exc:
        logger.exception("Could not complete service order %s", pk)
        _record(pk, error=f"no se pudo completar: {exc.__class__.__name__}", checked_at=checked_at)
        return _outcome(service_order, CheckResult.ERROR, error=exc.__class__.__name__)
    return _outcome(service_order, CheckResult.INVOICED if done else CheckResult.ALREADY_DONE)


_client_lock = threading.Lock()
_shared_client: MifactClient | None = None
_shared_client_key: tuple[str, str, str, float] | None = None


def shared_mifact_client() -> MifactClient | None:
    """The process-wide client used by the PUT endpoint and the admin (token reused across
    requests), with the short `INVOICE_MIFACT_INLINE_TIMEOUT` and no retries: a user is waiting.

    None when `URL_INVOICE_MIFACT_V3` is unset. Rebuilt when its settings change.
    """
    global _shared_client, _shared_client_key
    key = (
        settings.URL_INVOICE_MIFACT_V3,
        settings.INVOICE_MIFACT_USERNAME,
        settings.INVOICE_MIFACT_PASSWORD,
        settings.INVOICE_MIFACT_INLINE_TIMEOUT,
    )
    with _client_lock:
        if mifact_configuration_problem():
            return None
        if _shared_client is None or _shared_client_key != key:
            if _shared_client is not None:
                _shared_client.close()
            _shared_client = MifactClient.from_settings(
                timeout=settings.INVOICE_MIFACT_INLINE_TIMEOUT, status_retries=0
            )
            _shared_client_key = key
        return _shared_client


def reset_shared_mifact_client() -> None:
    """Forget the shared client (and its token); the next use builds a new one."""
    global _shared_client, _shared_client_key
    with _client_lock:
        if _shared_client is not None:
            _shared_client.close()
        _shared_client, _shared_client_key = None, None


def opportunity_check_service_orders(*, opportunity_id: str) -> list[CheckOutcome]:
    """Check the pending O.S of one opportunity now (CONTRACT.md 5.8), within a budget: at most
    `INLINE_CHECK_MAX_ORDERS` of them (least recently checked first), none started after
    `INLINE_CHECK_BUDGET_SECONDS`, and none after invoice-mifact itself failed (down, or
    refusing us). What is left waits for the 5-minute poller; the request never waits long.
    Never raises for invoice-mifact or download failures; O.S being checked by someone else
    right now are skipped."""

    limit = settings.INLINE_CHECK_MAX_ORDERS
    pending = list(
        pending_service_orders()
        .filter(opportunity_id=opportunity_id)
        .order_by(F("last_checked_at").asc(nulls_first=True), "id")[:limit]
    )
    if not pending:
        return []
    client = shared_mifact_client()
    deadline = time.monotonic() + settings.INLINE_CHECK_BUDGET_SECONDS
    outcomes: list[CheckOutcome] = []
    for row in pending:
        if time.monotonic() > deadline:
            break
        outcome = service_order_check(service_order=row, client=client)
        outcomes.append(outcome)
        if outcome.result is CheckResult.SERVICE_ERROR:
            break
    return outcomes


# --- the poll run (manage.py poll_invoices) ---------------------------------------------------


@dataclass
class PollSummary:
    """Counts of one poll run (docs: README "Polling").

    `pending`: O.S of the round (pending when the run started, not checked since; at most
    `limit`); `checked`: those invoice-mifact answered about; `invoiced`: completed in this run;
    `errors`: rows that got an error recorded; `left`: O.S of the round this run got no answer
    for (invoice-mifact failed, the run stopped early, or another run or a PUT had them);
    `fatal`: why invoice-mifact could not be used (not configured, credentials refused,
    unreachable) when that left O.S unchecked, or "".
    """

    pending: int = 0
    checked: int = 0
    invoiced: int = 0
    errors: int = 0
    left: int = 0
    seconds: float = 0.0
    fatal: str = ""

    @property
    def line(self) -> str:
        text = (
            f"poll_invoices: pending={self.pending} checked={self.checked} invoiced={self.invoiced} "
            f"errors={self.errors} left={self.left} seconds={self.seconds:.2f}"
        )
        return f"{text} fatal={self.fatal!r}" if self.fatal else text


class _CheckPool:
    """Runs `service_order_check` for claimed rows: inline with one worker, else on a thread pool
    that lives for the whole run (each thread keeps one database connection, closed at the end).
    """

    def __init__(self, client: MifactClient, workers: int) -> None:
        self.client = client
        self.workers = max(1, workers)
        self._pool: ThreadPoolExecutor | None = None
        self._futures: dict[Future[CheckOutcome], int] = {}
        self._ready: list[CheckOutcome] = []

    def __enter__(self) -> "_CheckPool":
        if self.workers > 1:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="poll")
        return self

    @property
    def in_flight(self) -> int:
        return len(self._futures) + len(self._ready)

    def submit(self, rows: list[OpportunityServiceOrder]) -> None:
        for row in rows:
            if self._pool is None:
                self._ready.append(service_order_check(service_order=row, client=self.client, claimed=True))
            else:
                future = self._pool.submit(service_order_check, service_order=row, client=self.client, claimed=True)
                self._futures[future] = row.pk

    def collect(self) -> list[CheckOutcome]:
        """Outcomes finished so far (waits for at least one when none is ready)."""
        if self._ready:
            ready, self._ready = self._ready, []
            return ready
        if not self._futures:
            return []
        done, _ = wait(list(self._futures), return_when=FIRST_COMPLETED)
        outcomes = []
        for future in done:
            pk = self._futures.pop(future)
            try:
                outcomes.append(future.result())
            except Exception as exc:  # service_order_check records its errors; this is a bug
                logger.exception("Service order %s: check crashed", pk)
                outcomes.append(CheckOutcome(pk, CheckResult.ERROR, exc.__class__.__name__))
        return outcomes

    def cancel_pending(self) -> list[int]:
        """Cancel the checks not started yet; return their row pks (still claimed)."""
        cancelled = [pk for future, pk in list(self._futures.items()) if future.cancel()]
        self._futures = {f: pk for f, pk in self._futures.items() if not f.cancelled()}
        return cancelled

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is None:
            return
        for future in list(self._futures):
            future.cancel()
        wait(list(self._futures))
        # One task per thread, held at a barrier, so that every thread closes its own connection.
        barrier = threading.Barrier(self.workers)

        def close_connection() -> None:
            try:
                barrier.wait(timeout=30)
            except threading.BrokenBarrierError:
                pass
            connections.close_all()

        for _ in range(self.workers):
            self._pool.submit(close_connection)
        self._pool.shutdown(wait=True)


def service_orders_poll(
    *,
    opportunity_id: str | None = None,
    limit: int | None = None,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    on_outcome: Callable[[CheckOutcome], None] | None = None,
) -> PollSummary:
    """Check every O.S that is pending when the run starts, once (docs: README "Polling").

    The round is defined by the run itself: it takes the O.S registered before it started and
    not checked since, so an O.S that a PUT checked a moment earlier is checked again, while one
    that another run (or a PUT) checked after this run started is skipped: overlapping runs never
    check one O.S twice in a round. Rows are claimed in batches of `POLL_BATCH_SIZE` (so memory
    stays flat) and checked by `workers` threads sharing one client (one sign-in, one connection
    pool sized to the workers), each completion in its own short transaction; the next batch is
    claimed before the current one drains so no worker idles. After `max(POLL_BATCH_SIZE,
    workers)` consecutive failures of invoice-mifact itself the run stops claiming and releases
    what it had not started. With nothing pending it returns without signing in.
    `progress(done, total)` and `on_outcome(outcome)` are called as checks finish when given.
    Never raises for the service's failures: see `PollSummary.fatal`.
    """

    started = time.monotonic()
    summary = PollSummary()
    round_started_at = timezone.now()
    summary.pending = _due_service_orders(round_started_at=round_started_at, opportunity_id=opportunity_id).count()
    if limit is not None:
        summary.pending = min(summary.pending, limit)

    def finish() -> PollSummary:
        summary.left = max(0, summary.pending - summary.checked)
        if not summary.left:
            summary.fatal = ""
        summary.seconds = time.monotonic() - started
        return summary

    if summary.pending == 0:
        return finish()
    try:
        client = MifactClient.from_settings(pool_size=max(1, workers))
        client.sign_in()
    except MifactError as exc:
        summary.fatal = str(exc)
        return finish()

    batch_size = max(1, settings.POLL_BATCH_SIZE)
    # Abort when this many checks in a row failed on invoice-mifact itself (down, or refusing us).
    abort_after = max(batch_size, workers)
    claimed = done = consecutive_service_errors = 0
    exhausted = False
    try:
        with _CheckPool(client, workers) as pool:
            while True:
                # Keep every worker busy: claim the next batch before the current one drains.
                while not exhausted and pool.in_flight < 2 * workers and (limit is None or claimed < limit):
                    size = batch_size if limit is None else min(batch_size, limit - claimed)
                    batch = service_orders_claim_batch(
                        limit=size, round_started_at=round_started_at, opportunity_id=opportunity_id
                    )
                    if not batch:
                        exhausted = True
                        break
                    claimed += len(batch)
                    pool.submit(batch)
                if pool.in_flight == 0:
                    break
                for outcome in pool.collect():
                    done += 1
                    if on_outcome is not None:
                        on_outcome(outcome)
                    if outcome.result is CheckResult.SERVICE_ERROR:
                        summary.errors += 1
                        consecutive_service_errors += 1
                        summary.fatal = outcome.error or "invoice-mifact no disponible"
                        continue
                    consecutive_service_errors = 0
                    summary.checked += 1
                    if outcome.result is CheckResult.INVOICED:
                        summary.invoiced += 1
                    elif outcome.result is CheckResult.ERROR:
                        summary.errors += 1
                if progress is not None:
                    progress(done, summary.pending)
                if consecutive_service_errors >= abort_after and not exhausted:
                    # invoice-mifact is down: stop instead of waiting out a timeout per row; the
                    # rows not started are released for the next run.
                    exhausted = True
                    released = pool.cancel_pending()
                    OpportunityServiceOrder.objects.filter(pk__in=released).update(claimed_until=None)
    finally:
        client.close()
    return finish()
