"""`manage.py poll_invoices`: check every service order pending when it starts against
invoice-mifact (cron, every 5 minutes; docs/api.md "Service orders and the poller").

Prints one summary line on stdout (and, with `-v 2`, one line per O.S before it); when
invoice-mifact failed and left O.S unchecked, or the database connection was lost, the reason on
stderr too (one line). Exit status: 1 when O.S were pending and none could be checked (not
configured, credentials missing or refused, unreachable) or when the database connection was lost
(the run stops; docs/operations.md "Monitoring"); 2 for a bad option or an unknown
`--opportunity`; 0 otherwise.

`--opportunity ID` is a check a person asks for: every O.S of that opportunity, pending and
invoiced alike, now, whatever the follow-up schedule says (`billing.services.forced`).
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.downloads import download_dir_sweep
from billing.services.checks import CheckOutcome, CheckResult
from billing.services.poll import PollSummary, service_orders_poll
from crm.commands import SpanishOptionsMixin, positive_int
from crm.database import DATABASE_LOST
from jobs.runs import RunRecorder, command_run_under_cron
from opportunities.models import Opportunity

RESULTS = {
    CheckResult.PENDING: "sin factura todavía",
    CheckResult.INVOICED: "facturada: comprobantes adjuntados",
    CheckResult.ALREADY_DONE: "ya completada por otro proceso",
    CheckResult.SKIPPED: "en revisión por otro proceso",
    CheckResult.ERROR: "error",
    CheckResult.SERVICE_ERROR: "invoice-mifact falló",
    CheckResult.DATABASE_ERROR: "sin conexión con la base de datos",
    CheckResult.STILL_VALID: "facturada: su comprobante sigue vigente",
    CheckResult.REPLACED: "comprobante reemitido: el nuevo quedó adjuntado",
    CheckResult.VOIDED: "comprobante anulado: la O.S espera la reemisión",
}


class Command(SpanishOptionsMixin, BaseCommand):
    help = "Consulta en invoice-mifact-v3 las órdenes de servicio (O.S) pendientes y completa las facturadas."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--opportunity",
            metavar="ID",
            help=(
                "solo las O.S de esta oportunidad, todas y ahora (pendientes y facturadas, "
                "sin esperar el intervalo de seguimiento)"
            ),
        )
        parser.add_argument("--limit", type=positive_int, metavar="N", help="revisar como máximo N O.S")
        parser.add_argument(
            "--workers",
            type=positive_int,
            metavar="N",
            default=None,
            help="consultas en paralelo (por defecto: POLL_WORKERS)",
        )

    def handle(
        self,
        *args: Any,
        opportunity: str | None,
        limit: int | None,
        workers: int | None,
        verbosity: int = 1,
        **options: Any,
    ) -> None:
        workers = workers if workers is not None else settings.POLL_WORKERS
        download_dir_sweep()  # what killed runs and workers left
        show_progress = self.stdout.isatty() and verbosity == 1

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"\r{done}/{total} O.S revisadas", ending="")
            self.stdout.flush()

        def report(outcome: CheckOutcome) -> None:
            text = f"O.S {outcome.service_order_id}: {RESULTS[outcome.result]}"
            self.stdout.write(f"{text}: {outcome.error}" if outcome.error else text)

        def opportunity_exists() -> None:
            if opportunity is not None and not Opportunity.objects.filter(pk=opportunity).exists():
                raise CommandError(f"no existe la oportunidad {opportunity!r}", returncode=2)

        def poll(run: RunRecorder) -> PollSummary:
            return service_orders_poll(
                opportunity_id=opportunity,
                forced=opportunity is not None,
                limit=limit,
                workers=workers,
                progress=progress if show_progress else None,
                on_outcome=report if verbosity >= 2 else None,
                run=run.run,
            )

        summary, unrecorded = command_run_under_cron(
            "poll_invoices", poll, summary=PollSummary(), before=opportunity_exists
        )
        if show_progress and summary.pending:
            self.stdout.write("")
        self.stdout.write(summary.line)
        if summary.database_lost or unrecorded:
            reason = summary.fatal or f"{DATABASE_LOST}: la ejecución no quedó registrada"
            self.stderr.write(f"poll_invoices: {reason}; {_left(summary)} para la próxima ejecución")
            sys.exit(1)
        if summary.fatal:
            self.stderr.write(f"poll_invoices: {summary.fatal}; {_left(summary)} para la próxima ejecución")
            if summary.checked == 0:
                sys.exit(1)


def _left(summary: PollSummary) -> str:
    if not summary.pending and summary.database_lost:
        return "las O.S pendientes quedan"  # lost before the round was even counted
    return "queda 1 O.S" if summary.left == 1 else f"quedan {summary.left} O.S"
