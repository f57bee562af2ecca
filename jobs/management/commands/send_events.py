"""`manage.py send_events`: deliver the signed events still due to their receivers (cron, every
minute; docs/api.md "Events"), then delete the events older than `WEBHOOK_EVENTS_KEEP_DAYS` that
nothing waits for. Output and exit status: `jobs.outbox_command`.
"""

from __future__ import annotations

from jobs.outbox_command import OutboxCommand
from jobs.runs import RunRecorder
from jobs.webhooks import SendEventsSummary, events_send


class Command(OutboxCommand):
    help = "Envía los eventos firmados pendientes a sus destinos (webhooks), con reintentos espaciados."
    summary_class = SendEventsSummary

    def drain(self, *, limit: int | None, run: RunRecorder) -> SendEventsSummary:
        return events_send(limit=limit)
