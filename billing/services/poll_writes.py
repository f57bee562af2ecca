"""What a poll run writes besides the checks themselves: the "not invoiced yet" answers, in
batches, and the claims it gives back (docs/api.md "Service orders and the poller").

Most checks of a run end with invoice-mifact saying the O.S is not invoiced yet; the row then
only records when it was checked (and that it has no error). One `UPDATE` per answer cost a
statement and a commit each, on the same database every app server uses; the run keeps those
answers and writes each batch in one statement. Until then the rows stay claimed by the run, so
no other run and no PUT takes them. A run killed before a write leaves those rows as they were
(never checked by it, and its claims end with it): the next run asks again, which is harmless.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading

from django.db.models import Case, DateTimeField, Value, When
from django.db.utils import Error as DatabaseError

from billing.models import OpportunityServiceOrder
from crm.database import connection_drop, connection_lost


class PendingAnswers:
    """Thread-safe buffer of (row pk -> check time) shared by a run's workers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[int, dt.datetime] = {}

    def add(self, pk: int, checked_at: dt.datetime) -> None:
        with self._lock:
            self._rows[pk] = checked_at

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    def flush(self) -> int:
        """Write what is buffered in one statement: each row's own check time, no error, no
        backoff, its claim ended (as `service_order_check_record` does for one row). Returns how
        many rows were written."""
        with self._lock:
            rows, self._rows = self._rows, {}
        if not rows:
            return 0
        checked = Case(*(When(pk=pk, then=Value(at)) for pk, at in rows.items()), output_field=DateTimeField())
        OpportunityServiceOrder.objects.filter(pk__in=list(rows)).update(
            last_checked_at=checked,
            updated_at=checked,
            last_error="",
            last_error_kind="",
            error_streak=0,
            retry_not_before=None,
            claimed_until=None,
        )
        return len(rows)


def release(rows: list[OpportunityServiceOrder]) -> None:
    """Give claimed rows that were not started back to the next run (with the database gone, the
    run's final release, or the end of the run, frees them)."""
    if not rows:
        return
    try:
        OpportunityServiceOrder.objects.filter(pk__in=[row.pk for row in rows]).update(claimed_until=None)
    except DatabaseError as exc:
        if not connection_lost(exc):
            raise
        connection_drop()


def drain(rows: queue.Queue[OpportunityServiceOrder | None]) -> list[OpportunityServiceOrder]:
    drained: list[OpportunityServiceOrder] = []
    while True:
        try:
            row = rows.get_nowait()
        except queue.Empty:
            return drained
        if row is not None:
            drained.append(row)
