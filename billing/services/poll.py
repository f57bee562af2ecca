"""The poll run (`manage.py poll_invoices`): every service order (O.S) pending when the run starts
is checked once, by a pool of threads (docs/api.md "Service orders and the poller")."""

from __future__ import annotations

import datetime as dt
import logging
import math
import queue
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections
from django.db.models import F, Q, QuerySet
from django.db.utils import Error as DatabaseError
from django.utils import timezone

from billing.backoff import PauseGate
from billing.mifact import MifactClient, MifactError
from billing.models import OpportunityServiceOrder
from billing.schedule import PollSteps, backoff_over_q, due_q
from billing.selectors import service_orders_due_follow_up, service_orders_forced, service_orders_pending
from billing.services.checks import CheckOutcome, CheckResult
from billing.services.forced import forced_claim_batch, service_order_check_now
from billing.services.poll_summary import PollSummary
from billing.services.poll_writes import PendingAnswers, drain, release
from crm.database import DATABASE_LOST, connection_drop, connection_lost, database_retry
from jobs.claims import claim_batch, claims_release
from jobs.models import CommandRun

logger = logging.getLogger(__name__)


def _due_service_orders(*, round_started_at: dt.datetime, opportunity_id: str | None) -> QuerySet:
    """The O.S of one poll round: pending and registered when the round started, not checked
    since (by anyone: another run, a PUT, the admin), due by the polling schedule by age
    (`billing.schedule`) and with no error backoff running. Of one opportunity when given."""
    due = (
        service_orders_pending()
        .filter(created_at__lte=round_started_at)
        .filter(Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=round_started_at))
        .filter(due_q(now=round_started_at, steps=PollSteps.from_settings()))
        .filter(backoff_over_q(now=round_started_at))
    )
    return due if opportunity_id is None else due.filter(opportunity_id=opportunity_id)


def service_orders_claim_batch(
    *,
    limit: int,
    round_started_at: dt.datetime,
    opportunity_id: str | None = None,
    run: CommandRun | None = None,
) -> list[OpportunityServiceOrder]:
    """Claim up to `limit` O.S of the round that started at `round_started_at` (pending then, not
    checked since), oldest check first, for `run` when given (its claims end with it).

    `jobs.claims.claim_batch`: SKIP LOCKED on PostgreSQL, conditional updates elsewhere. Returns
    the claimed rows.
    """
    now = timezone.now()
    candidates = _due_service_orders(round_started_at=round_started_at, opportunity_id=opportunity_id).order_by(
        F("last_checked_at").asc(nulls_first=True), "id"
    )
    until = now + dt.timedelta(seconds=settings.POLL_CLAIM_SECONDS)
    ids = claim_batch(candidates, limit=limit, now=now, until=until, run=run)
    if not ids:
        return []
    return list(OpportunityServiceOrder.objects.filter(pk__in=ids).order_by("id"))


def follow_ups_claim_batch(
    *,
    limit: int,
    round_started_at: dt.datetime,
    opportunity_id: str | None = None,
    run: CommandRun | None = None,
) -> list[OpportunityServiceOrder]:
    """Claim up to `limit` invoiced O.S due a follow-up check in the round, least recently checked
    first (`billing.services.follow_up.service_orders_due_follow_up`)."""
    now = timezone.now()
    candidates = service_orders_due_follow_up(
        round_started_at=round_started_at, opportunity_id=opportunity_id
    ).order_by(F("last_checked_at").asc(nulls_first=True), "id")
    until = now + dt.timedelta(seconds=settings.POLL_CLAIM_SECONDS)
    ids = claim_batch(candidates, limit=limit, now=now, until=until, run=run)
    return list(OpportunityServiceOrder.objects.filter(pk__in=ids).order_by("id")) if ids else []


def _check_claimed(
    row: OpportunityServiceOrder, client: MifactClient, gate: PauseGate, answers: PendingAnswers
) -> CheckOutcome:
    """Check a claimed row once no pause holds the run's calls (a 429 or 503 with Retry-After
    pauses them all: `gate`), a "not invoiced yet" answer kept in `answers` (written in batches);
    a crash (a bug: `service_order_check` records its own errors) becomes an error outcome, so
    every claimed row yields exactly one outcome."""
    gate.wait()
    outcome = _check_claimed_now(row, client, answers)
    if outcome.throttled:
        gate.pause(outcome.retry_after)
    return outcome


def _check_claimed_now(row: OpportunityServiceOrder, client: MifactClient, answers: PendingAnswers) -> CheckOutcome:
    try:
        return service_order_check_now(service_order=row, client=client, claimed=True, record_pending=answers.add)
    except DatabaseError as exc:
        if not connection_lost(exc):
            logger.exception("Service order %s: check crashed", row.pk)
            return CheckOutcome(row.pk, CheckResult.ERROR, exc.__class__.__name__, row.service_order_id)
        connection_drop()  # never keep a dead connection: this thread's next query opens a new one
        return CheckOutcome(row.pk, CheckResult.DATABASE_ERROR, DATABASE_LOST, row.service_order_id)
    except Exception as exc:
        logger.exception("Service order %s: check crashed", row.pk)
        return CheckOutcome(row.pk, CheckResult.ERROR, exc.__class__.__name__, row.service_order_id)


def _worker(
    rows: queue.Queue[OpportunityServiceOrder | None],
    outcomes: queue.Queue[CheckOutcome],
    client: MifactClient,
    gate: PauseGate,
    answers: PendingAnswers,
) -> None:
    """One pool thread: check rows until it is handed None, then close its database connection."""
    try:
        while (row := rows.get()) is not None:
            outcomes.put(_check_claimed(row, client, gate, answers))
    finally:
        connections.close_all()


class _Run:
    """The counting and stopping rule of one poll run (see `service_orders_poll`)."""

    def __init__(
        self,
        summary: PollSummary,
        *,
        workers: int,
        limit: int | None,
        round_started_at: dt.datetime,
        opportunity_id: str | None,
        forced: bool,
        progress: Callable[[int, int], None] | None,
        on_outcome: Callable[[CheckOutcome], None] | None,
        run: CommandRun | None,
        gate: PauseGate,
    ) -> None:
        self.summary = summary
        self.gate = gate
        self.answers = PendingAnswers()
        self.run = run
        self.limit = limit
        self.round_started_at = round_started_at
        self.opportunity_id = opportunity_id
        self.forced = forced
        self.progress = progress
        self.on_outcome = on_outcome
        self.batch_size = max(1, settings.POLL_BATCH_SIZE)
        # Stop when this many checks in a row failed on invoice-mifact itself (down, or refusing
        # us) instead of waiting out a timeout per row.
        self.abort_after = max(self.batch_size, workers)
        self.claimed = self.done = self.service_errors_in_a_row = 0
        # Pending O.S first; once none is left, the invoiced ones due a follow-up check.
        self.following_up = False
        self.follow_up_pks: set[int] = set()
        self.taken: set[int] = set()  # forced runs: the O.S already claimed

    def claim(self) -> list[OpportunityServiceOrder]:
        if self.limit is not None and self.claimed >= self.limit:
            return []
        size = self.batch_size if self.limit is None else min(self.batch_size, self.limit - self.claimed)
        batch: list[OpportunityServiceOrder] = []
        if self.forced:  # every O.S of the opportunity, whatever the schedule (billing.services.forced)
            assert self.opportunity_id is not None
            batch = forced_claim_batch(opportunity_id=self.opportunity_id, limit=size, done=self.taken, run=self.run)
            self.taken.update(row.pk for row in batch)
            self.follow_up_pks.update(row.pk for row in batch if row.facturado)
        elif not self.following_up:
            batch = service_orders_claim_batch(
                limit=size, round_started_at=self.round_started_at, opportunity_id=self.opportunity_id, run=self.run
            )
            self.following_up = not batch
        if self.following_up and not self.forced:
            batch = follow_ups_claim_batch(
                limit=size, round_started_at=self.round_started_at, opportunity_id=self.opportunity_id, run=self.run
            )
            self.follow_up_pks.update(row.pk for row in batch)
        self.claimed += len(batch)
        return batch

    def record(self, outcome: CheckOutcome) -> bool:
        """Count one outcome; True when the run must stop: the database connection was lost, or
        invoice-mifact failed too often in a row to go on."""
        summary = self.summary
        self.done += 1
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        if outcome.result is CheckResult.DATABASE_ERROR:
            summary.database_lost = True
            return True
        summary.deferred += outcome.deferred
        if outcome.result is CheckResult.SERVICE_ERROR:
            summary.errors += 1
            summary.fatal = outcome.error or "invoice-mifact no disponible"
            # Asked to wait: the gate paused the run; it stops once it paused its budget.
            self.service_errors_in_a_row += not outcome.throttled
        else:
            self.service_errors_in_a_row = 0
            if outcome.service_order_pk in self.follow_up_pks:
                summary.followed_up += 1
                summary.replaced += outcome.result is CheckResult.REPLACED
                summary.voided += outcome.result is CheckResult.VOIDED
            else:
                summary.checked += 1
                summary.invoiced += outcome.result is CheckResult.INVOICED
            summary.errors += outcome.result is CheckResult.ERROR
        if self.progress is not None:
            self.progress(self.done, summary.pending)
        if len(self.answers) >= self.batch_size and not self.write_answers():
            return True
        return self.service_errors_in_a_row >= self.abort_after or self.gate.exhausted

    def write_answers(self) -> bool:
        """Write the buffered "not invoiced yet" answers; False (and `database_lost`) when the
        connection is lost (those rows stay as they were, for the next run)."""
        try:
            self.answers.flush()
        except DatabaseError as exc:
            if not connection_lost(exc):
                raise
            self.summary.database_lost = True
            return False
        return True

    def run_inline(self, client: MifactClient) -> None:
        """One worker: check each claimed row in this thread."""
        while batch := self.claim():
            for index, row in enumerate(batch):
                if self.record(_check_claimed(row, client, self.gate, self.answers)):
                    release(batch[index + 1 :])
                    return

    def run_pooled(self, client: MifactClient, workers: int) -> None:
        """`workers` threads take claimed rows from a queue; the next batch is claimed before the
        queue drains so that no worker idles."""
        rows: queue.Queue[OpportunityServiceOrder | None] = queue.Queue()
        outcomes: queue.Queue[CheckOutcome] = queue.Queue()
        in_flight = 0
        claiming = True
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll") as executor:
            for _ in range(workers):
                executor.submit(_worker, rows, outcomes, client, self.gate, self.answers)
            try:
                while True:
                    while claiming and in_flight < 2 * workers:
                        batch = self.claim()
                        claiming = bool(batch)
                        for row in batch:
                            rows.put(row)
                        in_flight += len(batch)
                    if in_flight == 0:
                        break
                    in_flight -= 1
                    if self.record(outcomes.get()) and claiming:
                        claiming = False
                        released = drain(rows)
                        in_flight -= len(released)
                        release(released)
            finally:
                release(drain(rows))
                for _ in range(workers):
                    rows.put(None)


def _release_run(run: CommandRun, summary: PollSummary) -> None:
    """Free what `run` still holds (rows it claimed and did not finish)."""
    if summary.database_lost:
        connection_drop()
    try:
        database_retry(lambda: claims_release(OpportunityServiceOrder.objects.all(), run=run))
    except DatabaseError as exc:
        if not connection_lost(exc):
            raise
        summary.database_lost = True


def service_orders_poll(
    *,
    opportunity_id: str | None = None,
    forced: bool = False,
    limit: int | None = None,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    on_outcome: Callable[[CheckOutcome], None] | None = None,
    run: CommandRun | None = None,
) -> PollSummary:
    """Check every O.S that is pending when the run starts, once.

    The round is defined by the run itself: it takes the O.S registered before it started and
    not checked since, so an O.S that a PUT checked a moment earlier is checked again, while one
    that another run (or a PUT) checked after this run started is skipped: overlapping runs never
    check one O.S twice in a round. Rows are claimed in batches of `POLL_BATCH_SIZE` (so memory
    stays flat) and checked by `workers` threads sharing one client (one sign-in, one connection
    pool sized to the workers), each completion in its own short transaction. After
    `max(POLL_BATCH_SIZE, workers)` consecutive failures of invoice-mifact itself the run stops
    and releases what it had not started. With nothing pending it returns without signing in.
    `progress(done, total)` and `on_outcome(outcome)` are called as checks finish when given.
    Never raises for the service's failures: see `PollSummary.fatal`.

    `forced` (with `opportunity_id`): instead of what is due, every O.S of that opportunity,
    pending and invoiced alike, now (`billing.services.forced`; `pending` counts its pending ones).

    Claims are made for `run` (the command's run record) when given. When the database connection
    is lost the run stops claiming, lets the checks in flight end, and frees every claim `run`
    still holds (retried for `COMMAND_DB_RETRY_SECONDS`; if the database stays away, the claims
    end with the run anyway, `jobs.claims`); `database_lost` and `fatal` say so. Only a loss
    before the first claim (counting the round) raises.
    """
    started = time.monotonic()
    summary = PollSummary()
    round_started_at = timezone.now()
    if forced:
        everything = service_orders_forced(opportunity_id=opportunity_id or "")
        summary.pending, anything = everything.filter(facturado=False).count(), everything.exists()
    else:
        summary.pending = _due_service_orders(round_started_at=round_started_at, opportunity_id=opportunity_id).count()
        anything = bool(summary.pending) or (
            service_orders_due_follow_up(round_started_at=round_started_at, opportunity_id=opportunity_id).exists()
        )
    if limit is not None:
        summary.pending = min(summary.pending, limit)
    # With nothing to ask (no pending O.S, no follow-up due) the run does not even sign in.
    if anything:
        try:
            client = MifactClient.from_settings(pool_size=max(1, workers))
            client.sign_in()
        except MifactError as exc:
            summary.fatal = str(exc)
        else:
            gate = PauseGate()
            poll = _Run(
                summary,
                workers=workers,
                limit=limit,
                round_started_at=round_started_at,
                opportunity_id=opportunity_id,
                forced=forced,
                progress=progress,
                on_outcome=on_outcome,
                run=run,
                gate=gate,
            )
            try:
                if workers > 1 and not forced:  # a forced run is one opportunity's few O.S: inline
                    poll.run_pooled(client, workers)
                else:
                    poll.run_inline(client)
            except DatabaseError as exc:
                if not connection_lost(exc):
                    raise
                summary.database_lost = True
            finally:
                client.close()
                summary.pauses, summary.paused_seconds = gate.pauses, math.ceil(gate.seconds)
                if not summary.database_lost:
                    poll.write_answers()
            if run is not None:
                _release_run(run, summary)
    summary.left = max(0, summary.pending - summary.checked)
    if summary.database_lost:
        summary.fatal = DATABASE_LOST
    elif not summary.left:
        summary.fatal = ""
    summary.seconds = time.monotonic() - started
    return summary
