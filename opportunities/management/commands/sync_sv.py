"""`manage.py sync_sv`: deliver due clinic-history rows of the SV outbox (cron, every 5 minutes;
docs/api.md "SV sync").

Prints one summary line on stdout. Exit status: 0 normally; 1 when it could deliver nothing
(SV unreachable, sign-in refused, `URL_SV` or credentials unset) while deliveries were due, with
the reason on stderr (and, when SV could not even be tried, on each due row), or when the database
connection was lost (one line on stderr; the run stops and frees its claims); 2 for a bad option.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from crm.commands import SpanishOptionsMixin, positive_int
from crm.database import DATABASE_LOST
from jobs.runs import command_run_under_cron
from opportunities.sv_outbox import SvSyncSummary, sv_deliveries_sync


class Command(SpanishOptionsMixin, BaseCommand):
    help = "Envía a SV las historias clínicas pendientes (reserva, paciente, pago), con reintentos espaciados."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=positive_int, metavar="N", help="intentar como máximo N envíos")

    def handle(self, *args: Any, limit: int | None, **options: Any) -> None:
        summary, unrecorded = command_run_under_cron(
            "sync_sv", lambda run: sv_deliveries_sync(limit=limit), summary=SvSyncSummary()
        )
        self.stdout.write(summary.line)
        if summary.database_lost or unrecorded:
            reason = summary.fatal or f"{DATABASE_LOST}: la ejecución no quedó registrada"
            self.stderr.write(f"sync_sv: {reason}; los envíos pendientes quedan para la próxima ejecución")
            sys.exit(1)
        if summary.due and summary.delivered == 0 and summary.fatal:
            self.stderr.write(
                f"sync_sv: {summary.fatal}; "
                + ("queda 1 envío pendiente" if summary.due == 1 else f"quedan {summary.due} envíos pendientes")
            )
            sys.exit(1)
