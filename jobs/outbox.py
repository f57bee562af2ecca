"""One outbox for every message the CRM owes an outside system: the clinic history to SV
(`opportunities.sv_outbox`) and the signed events to webhook endpoints (`jobs.webhooks`)
(docs/decisions.md "One outbox").

A row (`jobs.models.OutboxRow`) is written in the transaction of the change it tells about, tried
once right after the commit with a short timeout, and delivered by a periodic command with
exponential backoff while the system fails, up to a number of attempts. Rows are claimed
(`jobs.claims.claim_one_per_key`), so two deliverers never send one row twice, and the rows that
share a key (an SV reservation; an event stream, one opportunity at one endpoint) are never in
flight at once, so the receiver gets them in the order they were sent. A channel (`OutboxChannel`)
says which table, which key, how to send one row, and its settings; everything else is here.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from django.db.models import Exists, F, Model, OuterRef, Q, QuerySet, Value
from django.db.models.expressions import Combinable
from django.db.utils import Error as DatabaseError
from django.utils import timezone

from crm.database import DATABASE_LOST, connection_drop, connection_lost, database_retry
from jobs.claims import claim_one_per_key
from jobs.models import CommandRun, OutboxRow
from jobs.summary import RunSummary

logger = logging.getLogger(__name__)


class OutboxAttempt(enum.Enum):
    """What one delivery attempt ended in."""

    DELIVERED = "delivered"
    RETRY = "retry"  # failed; next attempt scheduled with backoff
    FAILED = "failed"  # failed and out of attempts
    SKIPPED = "skipped"  # claimed elsewhere, not due, or no longer pending
    SERVICE_ERROR = "service_error"  # the system is unreachable or refused us (also scheduled)


class OutboxSendError(Exception):
    """A send failed: the message (Spanish, kept on the row) and whether the whole system is down
    (unreachable, credentials refused), rather than this one message refused."""

    def __init__(self, message: str, *, service_down: bool = False) -> None:
        super().__init__(message)
        self.service_down = service_down


class OutboxClient(Protocol):
    def close(self) -> None: ...


class OutboxChannel:
    """What one outbox delivers and how; subclasses fill it in.

    `model`: its table (an `OutboxRow`); `key`: the column whose rows are delivered one at a time,
    in order; `lock_namespace`: the PostgreSQL advisory-lock namespace of that key; `label`: the
    system's name in messages; `strict_order`: a row is not sent while an older row of its key is
    pending (events), rather than the older rows being superseded by the newer (SV).
    """

    model: ClassVar[type[OutboxRow]]
    key: ClassVar[str]
    lock_namespace: ClassVar[int]
    label: ClassVar[str]
    strict_order: ClassVar[bool] = False
    #: Newer rows of its key an inline attempt sends after its own (written while it was in flight).
    hand_off_limit: ClassVar[int] = 3

    def claim_seconds(self) -> float:
        raise NotImplementedError

    def max_attempts(self) -> int:
        raise NotImplementedError

    def backoff_seconds(self) -> tuple[int, int]:
        """The first retry's delay and the cap of the doubling delays."""
        raise NotImplementedError

    def configuration_problem(self) -> str:
        """Why nothing can be sent with the current settings (Spanish), or ""."""
        return ""

    def client(self, *, inline: bool) -> OutboxClient:
        """A client for a run of sends (`inline`: the short timeout of the attempt after a commit)."""
        raise NotImplementedError

    def send(self, row: Any, client: Any) -> None:
        """Send `row`; raise `OutboxSendError` when it was not accepted."""
        raise NotImplementedError

    def rows(self) -> QuerySet[Any]:
        """The queryset a row is read from to be sent (a channel may join what `send` needs)."""
        return self.model._default_manager.all()

    def status_after(self, status: str) -> Combinable:
        """The status an attempt writes: `status`, unless the channel keeps one of its own (SV:
        a row superseded while in flight stays superseded)."""
        return Value(status)

    # --- derived -------------------------------------------------------------------------------

    def pending(self) -> QuerySet[Any]:
        rows = self.model._default_manager.filter(status=OutboxRow.Status.PENDING)
        if self.strict_order:
            older = self.model._default_manager.filter(
                **{self.key: OuterRef(self.key)}, status=OutboxRow.Status.PENDING, pk__lt=OuterRef("pk")
            )
            rows = rows.exclude(Exists(older))
        return rows

    def backoff(self, attempts: int) -> dt.timedelta:
        base, cap = self.backoff_seconds()
        base = max(1, base)
        return dt.timedelta(seconds=min(max(base, cap), base * 2 ** max(0, attempts - 1)))

    def claim(self, rows: QuerySet[Any], *, limit: int) -> list[int]:
        """Claim up to `limit` of `rows` (in their order), one per key, none of a key in flight."""
        now = timezone.now()
        return claim_one_per_key(
            rows,
            key=self.key,
            lock_namespace=self.lock_namespace,
            limit=limit,
            now=now,
            until=now + dt.timedelta(seconds=self.claim_seconds()),
        )


def _due(now: dt.datetime) -> Q:
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)


def outbox_attempt(
    channel: OutboxChannel, *, pk: int, client: Any, force: bool = False, claimed: bool = False
) -> OutboxAttempt:
    """Claim one pending row and send it; record the outcome on the row. Skipped while another
    row of its key is in flight (or, with `strict_order`, an older one is pending).

    Success: `delivered` with `delivered_at`. Failure: `attempts + 1`, `last_error`, and the next
    attempt after an exponential backoff, or `failed` after the channel's `max_attempts()`.
    `force` ignores `next_attempt_at` (admin "retry now"); `claimed`: the caller holds the claim.
    Never raises for the system's failures.
    """
    model = channel.model
    due = channel.pending().filter(pk=pk)
    if not force:
        due = due.filter(_due(timezone.now()))
    if not claimed and not channel.claim(due, limit=1):
        return OutboxAttempt.SKIPPED
    row = channel.rows().get(pk=pk)
    rows = model._default_manager.filter(pk=pk)
    try:
        channel.send(row, client)
    except OutboxSendError as exc:
        attempts = row.attempts + 1
        gave_up = attempts >= channel.max_attempts()
        rows.update(
            attempts=attempts,
            last_error=str(exc)[:2000],
            status=channel.status_after(OutboxRow.Status.FAILED if gave_up else OutboxRow.Status.PENDING),
            next_attempt_at=None if gave_up else timezone.now() + channel.backoff(attempts),
            claimed_until=None,
            updated_at=timezone.now(),
        )
        if gave_up:
            logger.error("%s delivery %s failed for good after %s attempts: %s", channel.label, pk, attempts, exc)
            return OutboxAttempt.FAILED
        return OutboxAttempt.SERVICE_ERROR if exc.service_down else OutboxAttempt.RETRY
    rows.update(
        status=channel.status_after(OutboxRow.Status.DELIVERED),
        attempts=row.attempts + 1,
        last_error="",
        delivered_at=timezone.now(),
        next_attempt_at=None,
        claimed_until=None,
        updated_at=timezone.now(),
    )
    return OutboxAttempt.DELIVERED


def outbox_record_not_tried(rows: QuerySet[Any], reason: str) -> int:
    """Write on pending `rows` why they could not be tried (shown in the admin); their attempts
    and schedule are kept. Returns how many rows were marked."""
    return rows.filter(status=OutboxRow.Status.PENDING).update(
        last_error=f"no se intentó: {reason}"[:2000], updated_at=timezone.now()
    )


def outbox_attempt_inline(channel: OutboxChannel, *, pk: int) -> OutboxAttempt:
    """The attempt made right after a commit (`outbox_attempts_inline` with one row)."""
    return outbox_attempts_inline(channel, pks=[pk])[0]


def outbox_attempts_inline(channel: OutboxChannel, *, pks: Sequence[int]) -> list[OutboxAttempt]:
    """The attempts made right after a commit, in the order of `pks` (the rows that commit wrote),
    with one client and the short timeout; never raises (the request or run that committed must
    go on whatever the system does). Returns each row's result.

    Once a row of a key was not delivered, the later rows of that key are not tried (they would
    wait behind it, and a receiver that hangs must cost the request one timeout, not one per row).
    When a key's rows were delivered, its newer rows written meanwhile by other commits (and so
    skipped while these were in flight) are sent right after them, not at the next periodic run.
    """
    results = [OutboxAttempt.SKIPPED] * len(pks)
    try:
        manager = channel.model._default_manager
        keys = dict(manager.filter(pk__in=pks).values_list("pk", channel.key))
        stopped: set[Any] = set()
        client = channel.client(inline=True)
        try:
            for index, pk in enumerate(pks):
                if keys.get(pk) in stopped:
                    continue
                results[index] = outbox_attempt(channel, pk=pk, client=client)
                if results[index] is not OutboxAttempt.DELIVERED:
                    stopped.add(keys.get(pk))
            for key in dict.fromkeys(keys[pk] for pk in pks if pk in keys):
                if key in stopped:
                    continue
                waiting = manager.filter(**{channel.key: key}, status=OutboxRow.Status.PENDING, attempts=0)
                for newer in (
                    waiting.exclude(pk__in=pks)
                    .order_by("created_at", "id")
                    .values_list("pk", flat=True)[: channel.hand_off_limit]
                ):
                    if outbox_attempt(channel, pk=newer, client=client) is not OutboxAttempt.DELIVERED:
                        break
        finally:
            client.close()
    except Exception:  # the change has committed; a bug here must not turn it into a 500
        logger.exception("%s deliveries %s: inline attempt crashed; the periodic run will retry", channel.label, pks)
    return results


@dataclass
class OutboxSummary(RunSummary):
    """Counts of one run delivering an outbox; `fatal` says why nothing could be delivered, or ""."""

    COUNTS: ClassVar[tuple[str, ...]] = ("due", "delivered", "retried", "failed")

    due: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def outcome(self) -> str:
        """`failed` when nothing could be delivered while rows were due, `partial` when some rows
        failed, else `ok` (`jobs.models.CommandRun.Outcome`)."""
        if self.database_lost or (self.fatal and self.due and not self.delivered):
            return CommandRun.Outcome.FAILED
        if self.retried or self.failed:
            return CommandRun.Outcome.PARTIAL
        return CommandRun.Outcome.OK


def _count(summary: OutboxSummary, result: OutboxAttempt) -> None:
    if result is OutboxAttempt.DELIVERED:
        summary.delivered += 1
    elif result is OutboxAttempt.FAILED:
        summary.failed += 1
    elif result in (OutboxAttempt.RETRY, OutboxAttempt.SERVICE_ERROR):
        summary.retried += 1


def outbox_drain(
    channel: OutboxChannel, summary: OutboxSummary, *, limit: int | None = None, batch_size: int = 50
) -> OutboxSummary:
    """Deliver every due row of `channel` (the periodic command), counting into `summary`.

    Rows are claimed in batches, so two runs at once never deliver one row twice, and at most one
    row per key is in flight. Rows written while the run goes (never tried yet) are delivered by it
    too. With the channel unusable (`configuration_problem()`) nothing is sent, each due row says
    why, and `fatal` too. A batch whose every attempt failed on the system itself (unreachable,
    credentials) ends the run; those rows keep their backoff.
    """
    started = time.monotonic()
    now = timezone.now()
    pending = channel.pending()
    due = pending.filter(_due(now))
    summary.due = due.count() if limit is None else min(limit, due.count())
    if summary.due == 0:
        summary.seconds = time.monotonic() - started
        return summary
    problem = channel.configuration_problem()
    if problem:
        outbox_record_not_tried(due, problem)
        summary.fatal = problem
        summary.seconds = time.monotonic() - started
        return summary
    client = channel.client(inline=False)
    done = 0
    try:
        while limit is None or done < limit:
            size = batch_size if limit is None else min(batch_size, limit - done)
            written_since = pending.filter(attempts=0, next_attempt_at__lte=timezone.now())
            ids = channel.claim(
                (due | written_since).order_by(F("next_attempt_at").asc(nulls_first=True), "id"), limit=size
            )
            if not ids:
                break
            done += len(ids)
            results: list[OutboxAttempt] = []
            try:
                for pk in ids:
                    results.append(outbox_attempt(channel, pk=pk, client=client, claimed=True))
            except DatabaseError as exc:
                if not connection_lost(exc):
                    raise
                _release_after_database_loss(channel.model, ids)
                summary.database_lost = True
            for result in results:
                _count(summary, result)
            if summary.database_lost:
                break
            if sum(result is OutboxAttempt.SERVICE_ERROR for result in results) == len(ids):
                summary.fatal = f"{channel.label} no disponible"
                break
    finally:
        client.close()
    summary.due = max(summary.due, done)
    if summary.database_lost:
        summary.fatal = DATABASE_LOST
    elif summary.delivered:
        summary.fatal = ""
    summary.seconds = time.monotonic() - started
    return summary


def _release_after_database_loss(model: type[Model], ids: list[int]) -> None:
    """Free the claims of a batch cut short by a lost database connection (retried while the
    database is away; if it stays away, the claims expire after their short duration)."""
    connection_drop()
    pending = model._default_manager.filter(pk__in=ids, status=OutboxRow.Status.PENDING)
    try:
        database_retry(lambda: pending.update(claimed_until=None))
    except DatabaseError as exc:
        if not connection_lost(exc):
            raise


def outbox_retry_now(channel: OutboxChannel, *, pks: Iterable[int]) -> dict[str, int]:
    """Admin "Reintentar ahora": re-arm the given failed rows and attempt each given row now (in
    their order: oldest first). Returns counts by result name. Raises what the channel's
    `client()` raises when the system is not configured."""
    pks = sorted(pks)
    client = channel.client(inline=False)
    channel.model._default_manager.filter(pk__in=pks, status=OutboxRow.Status.FAILED).update(
        status=OutboxRow.Status.PENDING, attempts=0, updated_at=timezone.now()
    )
    counts: dict[str, int] = {}
    try:
        for pk in pks:
            result = outbox_attempt(channel, pk=pk, client=client, force=True)
            counts[result.value] = counts.get(result.value, 0) + 1
    finally:
        client.close()
    return counts
