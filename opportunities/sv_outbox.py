"""The SV outbox: the clinic history reaches the clinic system SV once per (reservation, clinic
history), even while SV is down (docs/api.md "SV sync").

A row is written in the process update's transaction, tried once right after the commit, and
delivered by `manage.py sync_sv` with exponential backoff while SV fails: the project's one
outbox (`jobs.outbox`), with the reservation as the key, so SV applies one reservation's rows in
the order they were sent and ends with the newest. A newer value supersedes the older rows still
pending instead of waiting behind them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Value, When
from django.db.models.expressions import Combinable
from django.utils import timezone

from jobs.outbox import (
    OutboxAttempt,
    OutboxChannel,
    OutboxSendError,
    OutboxSummary,
    outbox_attempt,
    outbox_attempt_inline,
    outbox_drain,
    outbox_retry_now,
)

from .models import Opportunity, SvDelivery
from .sv import SvAuthError, SvClient, SvError, SvUnavailable, sv_configuration_problem

#: What one delivery attempt ended in (the outbox's results).
SvAttemptResult = OutboxAttempt


class SvChannel(OutboxChannel):
    """SV's outbox: one reservation's clinic history per row, sent by `SvClient`."""

    model = SvDelivery
    key = "reservation_id"
    lock_namespace = 0x5356  # "SV"
    label = "SV"

    def claim_seconds(self) -> float:
        return max(60, 3 * settings.SV_TIMEOUT)

    def max_attempts(self) -> int:
        return settings.SV_SYNC_MAX_ATTEMPTS

    def backoff_seconds(self) -> tuple[int, int]:
        return settings.SV_SYNC_BACKOFF_SECONDS, settings.SV_SYNC_BACKOFF_MAX_SECONDS

    def configuration_problem(self) -> str:
        return sv_configuration_problem()

    def client(self, *, inline: bool) -> SvClient:
        return SvClient.from_settings(timeout=settings.SV_INLINE_TIMEOUT if inline else None)

    def send(self, row: SvDelivery, client: SvClient) -> None:
        try:
            client.update_clinic_history(reservation_id=row.reservation_id, clinic_history=row.clinic_history)
        except SvError as exc:
            raise OutboxSendError(str(exc), service_down=isinstance(exc, (SvUnavailable, SvAuthError))) from exc

    def status_after(self, status: str) -> Combinable:
        # A row superseded while it was in flight stays superseded: a retry or a "failed" must not
        # bring back an older value than the one now waiting.
        superseded = SvDelivery.Status.SUPERSEDED
        return Case(When(status=superseded, then=Value(superseded)), default=Value(status))


SV_CHANNEL = SvChannel()


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
    """Claim one pending delivery and send it to SV (`jobs.outbox.outbox_attempt`): backoff of
    `SV_SYNC_BACKOFF_SECONDS` doubling up to `SV_SYNC_BACKOFF_MAX_SECONDS`, `failed` after
    `SV_SYNC_MAX_ATTEMPTS`. Never raises for SV's failures."""
    return outbox_attempt(SV_CHANNEL, pk=delivery_pk, client=client, force=force, claimed=claimed)


def sv_delivery_attempt_inline(*, delivery_pk: int) -> SvAttemptResult:
    """The attempt made right after a PUT commits, with `SV_INLINE_TIMEOUT`; never raises.
    Scheduled by `sv_delivery_enqueue` only while SV can be called."""
    return outbox_attempt_inline(SV_CHANNEL, pk=delivery_pk)


@dataclass
class SvSyncSummary(OutboxSummary):
    """Counts of one `sync_sv` run; `fatal` says why nothing could be delivered, or ""."""

    command: ClassVar[str] = "sync_sv"


def sv_deliveries_sync(*, limit: int | None = None, batch_size: int = 50) -> SvSyncSummary:
    """Deliver every due outbox row (`manage.py sync_sv`; `jobs.outbox.outbox_drain`). With
    `URL_SV` unset nothing is done and `fatal` says so."""
    summary = outbox_drain(SV_CHANNEL, SvSyncSummary(), limit=limit, batch_size=batch_size)
    assert isinstance(summary, SvSyncSummary)
    return summary


def sv_deliveries_retry_now(*, delivery_pks: Iterable[int]) -> dict[str, int]:
    """Admin "retry now": re-arm the given failed/pending rows and attempt each one now.

    Returns counts by result name. Raises `SvNotConfigured` when `URL_SV` is unset.
    """
    return outbox_retry_now(SV_CHANNEL, pks=delivery_pks)
