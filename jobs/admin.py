"""The run records of the periodic commands in the admin: read-only, newest first."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from crm.admin_ui.display import clinic_datetime
from crm.admin_ui.readonly import ReadOnlyAdminMixin, pretty_json, short_text
from jobs.models import CommandRun

# The counts the commands record (billing/services/poll.py, opportunities/sv_outbox.py), for people.
COUNT_LABELS = {
    "pending": "pendientes",
    "checked": "consultadas",
    "invoiced": "facturadas",
    "errors": "con error",
    "left": "sin consultar",
    "followed_up": "facturadas revisadas de nuevo",
    "replaced": "comprobantes reemitidos",
    "voided": "comprobantes anulados",
    "deferred": "aplazadas",
    "pauses": "pausas",
    "paused_seconds": "segundos en pausa",
    "due": "por enviar",
    "delivered": "entregados",
    "retried": "por reintentar",
    "failed": "fallidos",
}


def counts_text(counts: dict[str, Any]) -> str:
    """A run's counts in Spanish, in the commands' order (PostgreSQL's jsonb does not keep it):
    "pendientes 4, consultadas 3"; "-" when there are none."""
    order = list(COUNT_LABELS)
    keys = sorted(counts, key=lambda key: (order.index(key) if key in order else len(order), key))
    return ", ".join(f"{COUNT_LABELS.get(key, key)} {counts[key]}" for key in keys) or "-"


@admin.register(CommandRun)
class CommandRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("started", "command", "outcome", "host", "duration", "counts_short", "fatal_short")
    list_display_links = ("started",)
    list_filter = ("command", "outcome", "started_at")
    search_fields = ("host", "fatal")
    search_help_text = "Buscar por servidor o motivo del fallo."
    list_per_page = 100
    ordering = ("-started_at", "-id")
    fields = ("command", "host", "started_at", "finished_at", "outcome", "counts_short", "counts_pretty", "fatal")
    readonly_fields = fields

    @admin.display(description="inicio", ordering="started_at")
    def started(self, obj: CommandRun) -> str:
        return clinic_datetime(obj.started_at)

    @admin.display(description="duración")
    def duration(self, obj: CommandRun) -> str:
        seconds = obj.seconds
        return "-" if seconds is None else f"{seconds:.1f} s"

    @admin.display(description="conteos")
    def counts_short(self, obj: CommandRun) -> str:
        return counts_text(obj.counts)

    @admin.display(description="motivo del fallo")
    def fatal_short(self, obj: CommandRun) -> str:
        return short_text(obj.fatal, 80)

    @admin.display(description="conteos (datos técnicos)")
    def counts_pretty(self, obj: CommandRun) -> str:
        return pretty_json(obj.counts)
