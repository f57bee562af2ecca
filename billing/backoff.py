"""How the poll backs off when invoice-mifact refuses (docs/operations.md "Polling schedule").

Two kinds of refusal:

- about one O.S: a 404 (an id it does not know) or another 4xx. The O.S's `error_streak` grows
  and the poll does not ask about it again before `retry_not_before`: `error_delay` after the
  answer, doubling with each refusal in a row, with jitter, capped. An answer resets both
  (`billing.services.checks.service_order_check_record`). A PUT or a check a person asks for
  asks anyway.
- about the service: a 429, or a 503 with `Retry-After`. Every call of the run waits that long
  (`PauseGate`, shared by the run's workers), capped, instead of hammering; the O.S that got it
  is left to the next run.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Callable

from django.conf import settings


def error_delay(
    *, streak: int, base: dt.timedelta, cap: dt.timedelta, rng: Callable[[], float] = random.random
) -> dt.timedelta:
    """How long the poll leaves an O.S alone after its `streak`-th refusal in a row: half of
    min(cap, base * 2^(streak - 1)) plus a random part up to the other half ("equal jitter": the
    O.S refused together do not come back together, and the wait never drops below half)."""
    exponent = max(0, streak - 1)
    full = cap if exponent >= 32 else min(cap, base * (2**exponent))
    return full / 2 + (full / 2) * rng()


def error_retry_not_before(*, streak: int, now: dt.datetime) -> dt.datetime:
    """`retry_not_before` of an O.S refused `streak` times in a row, with the settings' steps."""
    base = dt.timedelta(minutes=settings.POLL_ERROR_BACKOFF_MINUTES)
    cap = dt.timedelta(minutes=settings.POLL_ERROR_BACKOFF_MAX_MINUTES)
    return now + error_delay(streak=streak, base=base, cap=max(base, cap))


def _clock() -> float:
    return time.monotonic()


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


class PauseGate:
    """The pauses of one poll run, shared by its workers: `pause(seconds)` holds every `wait()`
    until then (a pause that starts while one runs extends it, it is not a second one); counts
    the pauses and the seconds paused. Each pause is capped at `POLL_RETRY_AFTER_MAX_SECONDS`;
    `exhausted` once the run has paused `POLL_PAUSE_BUDGET_SECONDS` in all (the run then stops
    and leaves the rest to the next one)."""

    def __init__(
        self,
        *,
        cap: float | None = None,
        budget: float | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.cap = settings.POLL_RETRY_AFTER_MAX_SECONDS if cap is None else cap
        self.budget = settings.POLL_PAUSE_BUDGET_SECONDS if budget is None else budget
        self._clock, self._sleep = clock or _clock, sleep or _sleep
        self._lock = threading.Lock()
        self._until = 0.0
        self.pauses = 0
        self.seconds = 0.0

    def pause(self, seconds: float | None) -> None:
        """Hold the run's calls for `seconds` (None: the cap) from now, at most the cap."""
        length = self.cap if seconds is None else max(0.0, min(seconds, self.cap))
        with self._lock:
            now = self._clock()
            until = now + length
            if until <= self._until:
                return
            if self._until <= now:
                self.pauses += 1
                self.seconds += length
            else:
                self.seconds += until - self._until
            self._until = until

    @property
    def exhausted(self) -> bool:
        with self._lock:
            return self.pauses > 0 and self.seconds >= self.budget

    def wait(self) -> None:
        """Return once no pause holds the run's calls."""
        while True:
            with self._lock:
                left = self._until - self._clock()
            if left <= 0:
                return
            self._sleep(left)
