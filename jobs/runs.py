"""Recording the runs of the periodic commands (docs/operations.md "Monitoring").

    with command_run("poll_invoices") as run:
        summary = service_orders_poll(..., run=run.run)
        run.finish(outcome=..., counts={...}, fatal=summary.fatal)

The row is written before the work starts, with the host, pid and process start time; a thread
refreshes its `heartbeat_at` every `COMMAND_RUN_HEARTBEAT_SECONDS`. If the block raises (a crash,
Ctrl-C) the row is marked failed with the exception as its reason, and the exception goes on. A
run finished as `failed` raises `RunFailed` when the block ends, for the monitors around it.

The writes at the end are retried while the database connection is lost (`crm.database`); when
it stays lost, `RunRecorder.unrecorded` says so and the row stays `running` until a later run
marks it interrupted (`jobs.run_liveness`): each run starts by marking the `running` rows whose
process is gone. Each run also prunes the command's rows older than `COMMAND_RUNS_KEEP_DAYS`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections
from django.db.utils import Error as DatabaseError
from django.utils import timezone

from crm.database import DATABASE_LOST, connection_lost, database_retry
from crm.monitoring import cron_monitor
from crm.request_ids import request_id_for_run
from jobs.models import CommandRun
from jobs.run_liveness import process_start_ticks, run_interruption, this_host
from jobs.summary import RunSummary

logger = logging.getLogger(__name__)

Summary = TypeVar("Summary", bound=RunSummary)


class RunFailed(Exception):
    """Raised by `command_run` at the end of a block whose run was recorded `failed`, so that the
    context managers around it (the Sentry cron monitor) see a failed run; the command catches it."""


class RunRecorder:
    """The open run of a command; `finish()` records its outcome (once). `unrecorded` is True when
    the database stayed unreachable, so the outcome could not be written."""

    def __init__(self, run: CommandRun) -> None:
        self.run = run
        self.finished = False
        self.unrecorded = False

    def finish(self, *, outcome: str, counts: Mapping[str, Any], fatal: str = "") -> None:
        run = self.run
        run.outcome, run.counts, run.fatal, run.finished_at = outcome, dict(counts), fatal[:2000], timezone.now()
        self.finished = True
        try:
            database_retry(lambda: run.save(update_fields=["outcome", "counts", "fatal", "finished_at"]))
        except DatabaseError as exc:
            if not connection_lost(exc):
                raise
            self.unrecorded = True


class _Heartbeat(threading.Thread):
    """Refreshes the run's `heartbeat_at` until stopped, on its own connection; a failed beat
    (the database away) is skipped silently, the next one tries again."""

    def __init__(self, run_pk: int) -> None:
        super().__init__(name="run-heartbeat", daemon=True)
        self.run_pk = run_pk
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.COMMAND_RUN_HEARTBEAT_SECONDS):
                try:
                    CommandRun.objects.filter(pk=self.run_pk, outcome=CommandRun.Outcome.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError:
                    logger.debug("Run %s: heartbeat not written", self.run_pk)
                finally:
                    connections.close_all()  # never keep a connection the database may drop
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)


def runs_mark_interrupted(*, now: dt.datetime | None = None) -> int:
    """Mark failed, as interrupted, every `running` record whose process cannot be running any more
    (`jobs.run_liveness.run_interruption`); `finished_at` is its last sign of life. Returns how many."""
    now = now or timezone.now()
    marked = 0
    for run in CommandRun.objects.filter(outcome=CommandRun.Outcome.RUNNING):
        reason = run_interruption(run, now=now)
        if reason:
            marked += CommandRun.objects.filter(pk=run.pk, outcome=CommandRun.Outcome.RUNNING).update(
                outcome=CommandRun.Outcome.FAILED, fatal=reason, finished_at=run.heartbeat_at or run.started_at
            )
    return marked


def _prune(command: str) -> None:
    keep = dt.timedelta(days=settings.COMMAND_RUNS_KEEP_DAYS)
    try:
        CommandRun.objects.filter(command=command, started_at__lt=timezone.now() - keep).delete()
    except DatabaseError as exc:
        if not connection_lost(exc):
            raise  # the next run prunes when the database is back


@contextmanager
def command_run(command: str) -> Iterator[RunRecorder]:
    """Record one run of `command` (see the module docstring)."""
    runs_mark_interrupted()
    pid = os.getpid()
    now = timezone.now()
    run = CommandRun.objects.create(
        command=command, host=this_host(), pid=pid, process_started=process_start_ticks(pid), heartbeat_at=now
    )
    recorder = RunRecorder(run)
    heartbeat = _Heartbeat(run.pk)
    heartbeat.start()
    try:
        yield recorder
        if recorder.finished and run.outcome == CommandRun.Outcome.FAILED:
            raise RunFailed(run.fatal)
    except RunFailed:
        raise
    except BaseException as exc:
        if not recorder.finished:
            recorder.finish(
                outcome=CommandRun.Outcome.FAILED, counts={}, fatal=f"{exc.__class__.__name__}: {exc}".strip()
            )
        raise
    finally:
        heartbeat.stop()
        if not recorder.finished:
            recorder.finish(outcome=CommandRun.Outcome.FAILED, counts={}, fatal="la ejecución terminó sin resultado")
        if not recorder.unrecorded:
            _prune(command)


def command_run_under_cron(
    command: str, work: Callable[[RunRecorder], Summary], *, summary: Summary, before: Callable[[], None] | None = None
) -> tuple[Summary, bool]:
    """Run `work(run)` as one run of `command` as cron runs it: with its own request id, the Sentry cron
    monitor and the run record. Returns the run's summary and whether its outcome went unrecorded
    (the database stayed unreachable). A lost database connection, in `before` (checks that run
    first, outside the record) or in the run, marks `summary` `database_lost`; other errors go on."""
    unrecorded = False
    try:
        if before is not None:
            before()
        with request_id_for_run(), cron_monitor(command), command_run(command) as run:
            summary = work(run)
            run.finish(outcome=summary.outcome, counts=summary.counts, fatal=summary.fatal)
        unrecorded = run.unrecorded
    except RunFailed:
        unrecorded = run.unrecorded  # recorded and reported; the summary says why
    except DatabaseError as exc:
        if not connection_lost(exc):
            raise
        summary.database_lost, summary.fatal = True, DATABASE_LOST
    return summary, unrecorded


def last_runs(*, command: str, limit: int = 5) -> list[CommandRun]:
    """The newest runs of `command`, newest first."""
    return list(CommandRun.objects.filter(command=command).order_by("-started_at", "-id")[:limit])


def last_successful_run(*, command: str) -> CommandRun | None:
    """The newest run of `command` that reached its service (`ok` or `partial`), or None."""
    return (
        CommandRun.objects.filter(command=command, outcome__in=[CommandRun.Outcome.OK, CommandRun.Outcome.PARTIAL])
        .order_by("-started_at", "-id")
        .first()
    )
