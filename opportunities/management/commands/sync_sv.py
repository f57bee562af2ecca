"""`manage.py sync_sv`: deliver due clinic-history rows of the SV outbox (cron, every 5 minutes;
docs/api.md "SV sync"). Output and exit status: `jobs.outbox_command`.
"""

from __future__ import annotations

from jobs.outbox_command import OutboxCommand
from jobs.runs import RunRecorder
from opportunities.sv_outbox import SvSyncSummary, sv_deliveries_sync


class Command(OutboxCommand):
    help = "Envía a SV las historias clínicas pendientes (reserva, paciente, pago), con reintentos espaciados."
    summary_class = SvSyncSummary

    def drain(self, *, limit: int | None, run: RunRecorder) -> SvSyncSummary:
        return sv_deliveries_sync(limit=limit)
