"""The management command that drains an outbox (`sync_sv`, `send_events`; `jobs.outbox`): one
summary line on stdout and the run record, as cron runs it (docs/operations.md "Cron").

Exit status: 0 normally; 1 when it could deliver nothing while deliveries were due (the system
unreachable, credentials refused, not configured), with the reason on stderr, or when the database
connection was lost (one line on stderr; the run stops and frees its claims); 2 for a bad option.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandParser

from crm.commands import SpanishOptionsMixin, positive_int
from crm.database import DATABASE_LOST
from jobs.outbox import OutboxSummary
from jobs.runs import RunRecorder, command_run_under_cron


class OutboxCommand(SpanishOptionsMixin, BaseCommand):
    """Subclasses set `help`, `summary_class` and `drain(limit)` (the outbox's run)."""

    summary_class: ClassVar[type[OutboxSummary]]

    def drain(self, *, limit: int | None, run: RunRecorder) -> OutboxSummary:
        raise NotImplementedError

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=positive_int, metavar="N", help="intentar como máximo N envíos")

    def handle(self, *args: Any, limit: int | None, **options: Any) -> None:
        name = self.summary_class.command
        work: Callable[[RunRecorder], OutboxSummary] = lambda run: self.drain(limit=limit, run=run)  # noqa: E731
        summary, unrecorded = command_run_under_cron(name, work, summary=self.summary_class())
        self.stdout.write(summary.line)
        if summary.database_lost or unrecorded:
            reason = summary.fatal or f"{DATABASE_LOST}: la ejecución no quedó registrada"
            self.stderr.write(f"{name}: {reason}; los envíos pendientes quedan para la próxima ejecución")
            sys.exit(1)
        if summary.due and summary.delivered == 0 and summary.fatal:
            self.stderr.write(
                f"{name}: {summary.fatal}; "
                + ("queda 1 envío pendiente" if summary.due == 1 else f"quedan {summary.due} envíos pendientes")
            )
            sys.exit(1)
