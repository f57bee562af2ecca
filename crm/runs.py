"""Recording the runs of the periodic commands (docs/operations.md "Monitoring").

    with command_run("poll_invoices") as run:
        summary = service_orders_poll(...)
        run.finish(outcome=..., counts={...}, fatal=summary.fatal)

The row is written before the work starts; if the block raises (a crash, Ctrl-C) the row is
marked failed with the exception as its reason, and the exception goes on. A run finished as
`failed` raises `RunFailed` when the block ends, for the monitors around it. Each run also prunes
the command's rows older than `COMMAND_RUNS_KEEP_DAYS`.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.utils import timezone

from crm.models import CommandRun


class RunFailed(Exception):
    """Raised by `command_run` at the end of a block whose run was recorded `failed`, so that the
    context managers around it (the Sentry cron monitor) see a failed run; the command catches it."""


class RunRecorder:
    """The open run of a command; `finish()` records its outcome (once)."""

    def __init__(self, run: CommandRun) -> None:
        self.run = run
        self.finished = False

    def finish(self, *, outcome: str, counts: Mapping[str, Any], fatal: str = "") -> None:
        self.run.outcome = outcome
        self.run.counts = dict(counts)
        self.run.fatal = fatal[:2000]
        self.run.finished_at = timezone.now()
        self.run.save(update_fields=["outcome", "counts", "fatal", "finished_at"])
        self.finished = True


@contextmanager
def command_run(command: str) -> Iterator[RunRecorder]:
    """Record one run of `command` (see the module docstring)."""
    run = CommandRun.objects.create(command=command, host=socket.gethostname()[:255])
    recorder = RunRecorder(run)
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
        if not recorder.finished:
            recorder.finish(outcome=CommandRun.Outcome.FAILED, counts={}, fatal="la ejecución terminó sin resultado")
        keep = dt.timedelta(days=settings.COMMAND_RUNS_KEEP_DAYS)
        CommandRun.objects.filter(command=command, started_at__lt=timezone.now() - keep).delete()


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
