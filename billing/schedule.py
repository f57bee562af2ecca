"""The polling schedule by age of a pending service order (docs/operations.md "Polling schedule").

A pending O.S is asked in every poll run while it is younger than `POLL_EVERY_RUN_DAYS`, at most
once an hour until `POLL_HOURLY_UNTIL_DAYS`, at most once a day until `POLL_DAILY_UNTIL_DAYS`, and
after that not at all (*stopped*) until staff resume it. Its age counts from `checks_resumed_at`
when staff resumed it, else from `created_at`. Only facts are stored (when it was registered,
last checked, resumed; when an error backoff ends): changing the steps needs no migration.

The schedule is applied by the cron's selection of due O.S only (`due_q`, used by
`billing.services.poll`); a PUT, `poll_invoices --opportunity` and the admin's checks ask
whatever the age. `next_check_at` is the same rule for one O.S in Python (the API's
`nextCheckAt`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Q

if TYPE_CHECKING:
    from billing.models import OpportunityServiceOrder

HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)


@dataclass(frozen=True)
class Band:
    """Ages from `since` (inclusive) to `until` (exclusive) in which an O.S is asked at most once
    per `interval` (zero: in every run)."""

    since: dt.timedelta
    until: dt.timedelta
    interval: dt.timedelta


@dataclass(frozen=True)
class PollSteps:
    """The schedule's steps, in days (the settings of the same names, lower-cased)."""

    every_run_days: float
    hourly_until_days: float
    daily_until_days: float

    @classmethod
    def from_settings(cls) -> PollSteps:
        return cls(settings.POLL_EVERY_RUN_DAYS, settings.POLL_HOURLY_UNTIL_DAYS, settings.POLL_DAILY_UNTIL_DAYS)

    @property
    def bands(self) -> tuple[Band, ...]:
        """The bands in order of age; a band whose end is not after the previous one is empty
        and dropped (e.g. `POLL_HOURLY_UNTIL_DAYS` = `POLL_EVERY_RUN_DAYS`: no hourly step)."""
        ends = (
            (dt.timedelta(days=self.every_run_days), dt.timedelta(0)),
            (dt.timedelta(days=self.hourly_until_days), HOUR),
            (dt.timedelta(days=self.daily_until_days), DAY),
        )
        bands: list[Band] = []
        since = dt.timedelta(0)
        for until, interval in ends:
            if until > since:
                bands.append(Band(since, until, interval))
                since = until
        return tuple(bands)

    @property
    def stops_after(self) -> dt.timedelta:
        """The age from which the poll no longer asks."""
        bands = self.bands
        return bands[-1].until if bands else dt.timedelta(0)


def schedule_start(*, created_at: dt.datetime, resumed_at: dt.datetime | None) -> dt.datetime:
    """When the O.S's age starts counting: its resumption, else its registration."""
    return created_at if resumed_at is None or resumed_at < created_at else resumed_at


def next_check_at(
    *,
    created_at: dt.datetime,
    last_checked_at: dt.datetime | None,
    resumed_at: dt.datetime | None,
    now: dt.datetime,
    steps: PollSteps,
    retry_not_before: dt.datetime | None = None,
) -> dt.datetime | None:
    """The earliest moment, not before `now`, from which the poll takes this pending O.S (`now`:
    the next run); None when it is stopped by then. In a band with an interval it is due once
    that long has passed since its last check; an error backoff (`retry_not_before`) delays it."""
    start = schedule_start(created_at=created_at, resumed_at=resumed_at)
    for band in steps.bands:
        candidates = [now, start + band.since]
        if last_checked_at is not None:
            candidates.append(last_checked_at + band.interval)
        if retry_not_before is not None:
            candidates.append(retry_not_before)
        moment = max(candidates)
        if moment < start + band.until:
            return moment
    return None


def service_order_next_check_at(row: OpportunityServiceOrder, *, now: dt.datetime) -> dt.datetime | None:
    """When the cron asks about `row` next (the API's `nextCheckAt`): for a pending O.S, by the
    schedule by age (`now`: in the next run; None once stopped); for an invoiced one, its next
    follow-up check for a void or a reissue (`INVOICE_FOLLOW_UP_*`; None once its window is over
    or with follow-ups off). An error backoff delays both."""
    if not row.facturado:
        return next_check_at(
            created_at=row.created_at,
            last_checked_at=row.last_checked_at,
            resumed_at=row.checks_resumed_at,
            now=now,
            steps=PollSteps.from_settings(),
            retry_not_before=row.retry_not_before,
        )
    days, minutes = settings.INVOICE_FOLLOW_UP_DAYS, settings.INVOICE_FOLLOW_UP_INTERVAL_MINUTES
    if days <= 0 or minutes <= 0 or row.invoiced_at is None:
        return None
    candidates = [now]
    if row.last_checked_at is not None:
        candidates.append(row.last_checked_at + dt.timedelta(minutes=minutes))
    if row.retry_not_before is not None:
        candidates.append(row.retry_not_before)
    moment = max(candidates)
    return moment if moment <= row.invoiced_at + dt.timedelta(days=days) else None


def is_stopped(*, created_at: dt.datetime, resumed_at: dt.datetime | None, now: dt.datetime, steps: PollSteps) -> bool:
    """True when the poll no longer asks about this pending O.S by itself."""
    return now - schedule_start(created_at=created_at, resumed_at=resumed_at) >= steps.stops_after


def _started_after(moment: dt.datetime) -> Q:
    """O.S whose age counts from after `moment` (`checks_resumed_at` is never before `created_at`)."""
    return Q(checks_resumed_at__isnull=True, created_at__gt=moment) | Q(checks_resumed_at__gt=moment)


def _started_by(moment: dt.datetime) -> Q:
    return Q(checks_resumed_at__isnull=True, created_at__lte=moment) | Q(checks_resumed_at__lte=moment)


def due_q(*, now: dt.datetime, steps: PollSteps) -> Q:
    """The pending O.S that the schedule lets the poll ask at `now` (one condition on the
    database: no per-row work), before the round's own rule (not checked since it started) and
    the error backoff, which the caller adds."""
    due = Q(pk__in=[])
    for band in steps.bands:
        in_band = _started_after(now - band.until) & _started_by(now - band.since)
        if band.interval:
            checked = now - band.interval
            in_band &= Q(last_checked_at__isnull=True) | Q(last_checked_at__lte=checked)
        due |= in_band
    return due


def stopped_q(*, now: dt.datetime, steps: PollSteps) -> Q:
    """The O.S (pending ones, with the caller's filter) that the poll no longer asks by itself."""
    return _started_by(now - steps.stops_after)


def stopped_label() -> str:
    """How staff name the stopped O.S: "O.S sin factura tras 90 días" (with the setting's days)."""
    days = PollSteps.from_settings().stops_after.total_seconds() / 86400
    return f"O.S sin factura tras {days:g} días"


def backoff_over_q(*, now: dt.datetime) -> Q:
    """O.S with no error backoff running at `now` (billing/backoff.py)."""
    return Q(retry_not_before__isnull=True) | Q(retry_not_before__lte=now)
