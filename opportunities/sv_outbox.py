"""The SV outbox: the clinic history reaches the clinic system SV once per (reservation, clinic
history), even while SV is down (docs/api.md "SV sync").

A row is written in the process update's transaction, tried once right after the commit, and
delivered by `manage.py sync_sv` with exponential backoff while SV fails. Rows are claimed
(`jobs.claims`), so two runs never deliver one row twice, and one reservation's rows are never in
flight at once: SV applies them in the order they were sent, so it ends with the newest.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.db.utils import Error as DatabaseError
from django.utils import timezone

from crm.database import DATABASE_LOST, connection_drop, connection_lost, database_retry
from jobs.claims import claim_one_per_key
from jobs.models import CommandRun
from jobs.summary import RunSummary

from .models import Opportunity, SvDelivery
from .sv import SvAuthError, SvClient, SvError, SvUnavailable, sv_configuration_problem

logger = logging.getLogger(__name__)


class SvAttemptResult(enum.Enum):
    """What one delivery attempt ended in."""

    DELIVERED = "delivered"
    RETRY = "retry"  # failed; next attempt scheduled with backoff
    FAILED = "failed"  # failed and out of attempts
    SKIPPED = "skipped"  # claimed elsewhere, or no longer pending
    SERVICE_ERROR = "service_error"  # SV unreachable or refused our credentials (also scheduled)


#: Rows of its reservation an inline attempt sends after its own (written while it was in flight).
_SV_HAND_OFF_LIMIT = 3
#: Namespace of the PostgreSQL advisory locks taken per reservation while claiming ("SV").
_SV_RESERVATION_LOCKS = 0x5356


def _sv_claim_duration() -> dt.timedelta:
    return dt.timedelta(seconds=max(60, 3 * settings.SV_TIMEOUT))


def _sv_claim(deliveries: QuerySet[SvDelivery], *, limit: int) -> list[int]:
    """Claim up to `limit` of `deliveries` (in their order), one per reservation, none of a
    reservation with a delivery in flight (`jobs.claims.claim_one_per_key`)."""
    now = timezone.now()
    return claim_one_per_key(
        deliveries,
        key="reservation_id",
        lock_namespace=_SV_RESERVATION_LOCKS,
        limit=limit,
        now=now,
        until=now + _sv_claim_duration(),
    )


def _sv_unless_superseded(status: str) -> Case:
    """`status`, but a row superseded while it was in flight stays superseded: a retry or a
    "failed" must not bring back an older value than the one now waiting."""
    superseded = SvDelivery.Status.SUPERSEDED
    return Case(When(status=superseded, then=Value(superseded)), default=Value(status))


def _sv_backoff(attempts: int) -> dt.timedelta:
    base = max(1, settings.SV_SYNC_BACKOFF_SECONDS)
    cap = max(base, settings.SV_SYNC_BACKOFF_MAX_SECONDS)
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def sv_delivery_enqueue(*, opportunity: Opportunity) -> SvDelivery | None:
    """Write an outbox row when `opportunity` has a clinic history and a reservation id whose pair
    has not been delivered (or is not already waiting); return it, or None when nothing is due.

    Runs inside the process-update transaction (the opportunity row locked), so it is rolled back
    with the update. A new pair supersedes the reservation's older pending rows (SV must end with
    the newest clinic history); a failed row for the same pair is re-armed. After the commit one
    immediate attempt is made with `SV_INLINE_TIMEOUT`.
    """
    if not opportunity.c_clinic_history or not opportunity.reservation_id:
        return None
    current = list(
        SvDelivery.objects.filter(opportunity=opportunity, reservation_id=opportunity.reservation_id)
        .exclude(status=SvDelivery.Status.SUPERSEDED)
        .order_by("-created_at", "-id")
    )
    latest = current[0] if current else None
    now = timezone.now()
    # While SV cannot be called, the row says why it waits (the admin shows it).
    problem = sv_configuration_problem()
    not_tried = f"no se intentó: {problem}"[:2000] if problem else ""
    if latest is not None and latest.clinic_history == opportunity.c_clinic_history:
        if latest.status != SvDelivery.Status.FAILED:
            return None
        latest.status, latest.attempts, latest.next_attempt_at = SvDelivery.Status.PENDING, 0, now
        latest.last_error = not_tried or latest.last_error
        latest.save(update_fields=["status", "attempts", "next_attempt_at", "last_error", "updated_at"])
        delivery = latest
    else:
        waiting = [d.pk for d in current if d.status == SvDelivery.Status.PENDING]
        if waiting:
            SvDelivery.objects.filter(pk__in=waiting).update(status=SvDelivery.Status.SUPERSEDED, updated_at=now)
        delivery = SvDelivery.objects.create(
            opportunity=opportunity,
            reservation_id=opportunity.reservation_id,
            clinic_history=opportunity.c_clinic_history,
            next_attempt_at=now,
            last_error=not_tried,
        )
    if not problem:
        transaction.on_commit(partial(sv_delivery_attempt_inline, delivery_pk=delivery.pk))
    return delivery


def sv_delivery_attempt(
    *, delivery_pk: int, client: SvClient, force: bool = False, claimed: bool = False
) -> SvAttemptResult:
    """Claim one pending delivery and send it to SV; record the outcome on the row. Skipped while
    another delivery of its reservation is in flight (that one's deliverer then sends it).

    Success: `delivered` with `delivered_at`. Failure: `attempts + 1`, `last_error`, and the next
    attempt after an exponential backoff (`SV_SYNC_BACKOFF_SECONDS` doubling, capped at
    `SV_SYNC_BACKOFF_MAX_SECONDS`), or `failed` after `SV_SYNC_MAX_ATTEMPTS`. `force` ignores
    `next_attempt_at` (admin "retry now"); `claimed` means the caller already holds the claim.
    A row superseded while in flight keeps that status. Never raises for SV's failures.
    """
    now = timezone.now()
    due = SvDelivery.objects.filter(pk=delivery_pk, status=SvDelivery.Status.PENDING)
    if not force:
        due = due.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    if not claimed and not _sv_claim(due, limit=1):
        return SvAttemptResult.SKIPPED
    delivery = SvDelivery.objects.get(pk=delivery_pk)
    try:
        client.update_clinic_history(reservation_id=delivery.reservation_id, clinic_history=delivery.clinic_history)
    except SvError as exc:
        attempts = delivery.attempts + 1
        gave_up = attempts >= settings.SV_SYNC_MAX_ATTEMPTS
        SvDelivery.objects.filter(pk=delivery_pk).update(
            attempts=attempts,
            last_error=str(exc)[:2000],
            status=_sv_unless_superseded(SvDelivery.Status.FAILED if gave_up else SvDelivery.Status.PENDING),
            next_attempt_at=None if gave_up else timezone.now() + _sv_backoff(attempts),
            claimed_until=None,
            updated_at=timezone.now(),
        )
        if gave_up:
            logger.error("SV delivery %s failed for good after %s attempts: %s", delivery_pk, attempts, exc)
            return SvAttemptResult.FAILED
        if isinstance(exc, (SvUnavailable, SvAuthError)):
            return SvAttemptResult.SERVICE_ERROR
        return SvAttemptResult.RETRY
    SvDelivery.objects.filter(pk=delivery_pk).update(
        status=_sv_unless_superseded(SvDelivery.Status.DELIVERED),
        attempts=delivery.attempts + 1,
        last_error="",
        delivered_at=timezone.now(),
        next_attempt_at=None,
        claimed_until=None,
        updated_at=timezone.now(),
    )
    return SvAttemptResult.DELIVERED


def _sv_record_not_tried(deliveries: QuerySet[SvDelivery], reason: str) -> int:
    """Write on pending `deliveries` why they could not be tried (shown in the admin); their
    attempts and schedule are kept. Returns how many rows were marked."""
    return deliveries.filter(status=SvDelivery.Status.PENDING).update(
        last_error=f"no se intentó: {reason}"[:2000], updated_at=timezone.now()
    )


def sv_delivery_attempt_inline(*, delivery_pk: int) -> SvAttemptResult:
    """The attempt made right after a PUT commits: short timeout, never raises (the PUT must
    answer whatever SV does). Scheduled by `sv_delivery_enqueue` only while SV can be called.

    When it delivered, a newer row of the same reservation that was written meanwhile (and so
    skipped while this one was in flight) is sent right after it, not at the next `sync_sv`.
    """
    try:
        client = SvClient.from_settings(timeout=settings.SV_INLINE_TIMEOUT)
        try:
            result = sv_delivery_attempt(delivery_pk=delivery_pk, client=client)
            if result is SvAttemptResult.DELIVERED:
                reservation_id = SvDelivery.objects.values_list("reservation_id", flat=True).get(pk=delivery_pk)
                waiting = SvDelivery.objects.filter(
                    reservation_id=reservation_id, status=SvDelivery.Status.PENDING, attempts=0
                ).exclude(pk=delivery_pk)
                for pk in waiting.order_by("created_at", "id").values_list("pk", flat=True)[:_SV_HAND_OFF_LIMIT]:
                    sv_delivery_attempt(delivery_pk=pk, client=client)
            return result
        finally:
            client.close()
    except Exception:  # the PUT has committed; a bug here must not turn it into a 500
        logger.exception("SV delivery %s: inline attempt crashed; sync_sv will retry", delivery_pk)
        return SvAttemptResult.SKIPPED


@dataclass
class SvSyncSummary(RunSummary):
    """Counts of one `sync_sv` run; `fatal` says why nothing could be delivered, or ""."""

    command: ClassVar[str] = "sync_sv"
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


def sv_deliveries_sync(*, limit: int | None = None, batch_size: int = 50) -> SvSyncSummary:
    """Deliver every due outbox row (`manage.py sync_sv`).

    Rows are claimed in batches (`jobs.claims`), so two runs at once never deliver one row twice,
    and at most one row per reservation is in flight. Rows written while the run goes (never tried
    yet, e.g. skipped by their PUT while an older row of their reservation was in flight) are
    delivered by it too. With `URL_SV` unset nothing is done and `fatal` says so. A batch whose
    every attempt failed on SV itself (unreachable, credentials) ends the run; those rows keep
    their backoff.
    """
    started = time.monotonic()
    summary = SvSyncSummary()
    now = timezone.now()
    pending = SvDelivery.objects.filter(status=SvDelivery.Status.PENDING)
    due = pending.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    summary.due = due.count() if limit is None else min(limit, due.count())
    if summary.due == 0:
        summary.seconds = time.monotonic() - started
        return summary
    problem = sv_configuration_problem()
    if problem:
        _sv_record_not_tried(due, problem)
        summary.fatal = problem
        summary.seconds = time.monotonic() - started
        return summary
    client = SvClient.from_settings()
    done = 0
    try:
        while limit is None or done < limit:
            size = batch_size if limit is None else min(batch_size, limit - done)
            written_since = pending.filter(attempts=0, next_attempt_at__lte=timezone.now())
            ids = _sv_claim(
                (due | written_since).order_by(F("next_attempt_at").asc(nulls_first=True), "id"), limit=size
            )
            if not ids:
                break
            done += len(ids)
            service_errors = 0
            results: list[SvAttemptResult] = []
            try:
                for pk in ids:
                    results.append(sv_delivery_attempt(delivery_pk=pk, client=client, claimed=True))
            except DatabaseError as exc:
                if not connection_lost(exc):
                    raise
                _sv_release_after_database_loss(ids)
                summary.database_lost = True
            for result in results:
                if result is SvAttemptResult.DELIVERED:
                    summary.delivered += 1
                elif result is SvAttemptResult.FAILED:
                    summary.failed += 1
                elif result in (SvAttemptResult.RETRY, SvAttemptResult.SERVICE_ERROR):
                    summary.retried += 1
                    if result is SvAttemptResult.SERVICE_ERROR:
                        service_errors += 1
            if summary.database_lost:
                break
            if service_errors == len(ids):
                summary.fatal = "SV no disponible"
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


def _sv_release_after_database_loss(ids: list[int]) -> None:
    """Free the claims of a batch cut short by a lost database connection (retried while the
    database is away; if it stays away, the claims expire after their short duration)."""
    connection_drop()
    pending = SvDelivery.objects.filter(pk__in=ids, status=SvDelivery.Status.PENDING)
    try:
        database_retry(lambda: pending.update(claimed_until=None))
    except DatabaseError as exc:
        if not connection_lost(exc):
            raise


def sv_deliveries_retry_now(*, delivery_pks: Iterable[int]) -> dict[str, int]:
    """Admin "retry now": re-arm the given failed/pending rows and attempt each one now.

    Returns counts by result name. Raises `SvNotConfigured` when `URL_SV` is unset.
    """
    delivery_pks = list(delivery_pks)
    client = SvClient.from_settings()
    SvDelivery.objects.filter(pk__in=delivery_pks, status=SvDelivery.Status.FAILED).update(
        status=SvDelivery.Status.PENDING, attempts=0, updated_at=timezone.now()
    )
    counts: dict[str, int] = {}
    try:
        for pk in delivery_pks:
            result = sv_delivery_attempt(delivery_pk=pk, client=client, force=True)
            counts[result.value] = counts.get(result.value, 0) + 1
    finally:
        client.close()
    return counts
