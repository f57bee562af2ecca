"""`manage.py attachments_check`: verify that every comprobante's file is stored with its size and
SHA-256, download the missing or wrong ones again from their source URL, and sweep what crashes
left behind (cron, daily; docs/operations.md "What survives what").

Prints one summary line on stdout and one line per comprobante it could not repair on stderr.
Exit status: 1 when some comprobante could not be repaired (staff see them on the start page),
2 for a bad option or an unknown `--opportunity`, 0 otherwise.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.services.attachment_check import AttachmentCheckSummary, attachments_check
from crm.commands import SpanishOptionsMixin
from crm.database import DATABASE_LOST
from jobs.runs import command_run_under_cron
from opportunities.models import Opportunity


class Command(SpanishOptionsMixin, BaseCommand):
    help = (
        "Verifica que el PDF de cada comprobante esté guardado y completo (tamaño y SHA-256), lo "
        "descarga de nuevo de su dirección de origen cuando falta o no coincide, y borra lo que "
        "dejaron los procesos interrumpidos."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--opportunity", metavar="ID", help="solo los comprobantes de esta oportunidad")
        parser.add_argument("--dry-run", action="store_true", help="solo informar: no descargar, marcar ni borrar nada")

    def handle(self, *args: Any, opportunity: str | None, dry_run: bool, **options: Any) -> None:
        if opportunity is not None and not Opportunity.objects.filter(pk=opportunity).exists():
            raise CommandError(f"no existe la oportunidad {opportunity!r}", returncode=2)
        if dry_run:  # changes nothing, so records no run
            summary = attachments_check(repair=False, opportunity_id=opportunity)
            unrecorded = False
        else:
            summary, unrecorded = command_run_under_cron(
                "attachments_check",
                lambda run: attachments_check(repair=True, opportunity_id=opportunity),
                summary=AttachmentCheckSummary(),
            )
        self.stdout.write(summary.line)
        if summary.database_lost or unrecorded:
            reason = summary.fatal or f"{DATABASE_LOST}: la ejecución no quedó registrada"
            self.stderr.write(f"attachments_check: {reason}; la verificación queda para la próxima ejecución")
            sys.exit(1)
        for problem in summary.problems:
            self.stderr.write(f"attachments_check: {problem}")
        if summary.unrepaired:
            self.stderr.write(
                "attachments_check: "
                + (
                    "1 comprobante con el archivo ausente o dañado no se pudo reparar; el personal lo ve"
                    if summary.unrepaired == 1
                    else f"{summary.unrepaired} comprobantes con el archivo ausente o dañado no se pudieron "
                    "reparar; el personal los ve"
                )
                + " en la página de inicio"
            )
            sys.exit(1)
