"""The run records of the periodic commands in the admin: read-only, newest first."""

from __future__ import annotations

from django.contrib import admin

from crm.models import CommandRun
from crm.readonly_admin import ReadOnlyAdminMixin, pretty_json


@admin.register(CommandRun)
class CommandRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("started_at", "command", "outcome", "host", "duration", "counts_short", "fatal_short")
    list_filter = ("command", "outcome", "started_at")
    search_fields = ("host", "fatal")
    search_help_text = "Buscar por servidor o motivo del fallo."
    list_per_page = 100
    ordering = ("-started_at", "-id")
    fields = ("command", "host", "started_at", "finished_at", "outcome", "counts_pretty", "fatal")
    readonly_fields = fields

    @admin.display(description="duración")
    def duration(self, obj: CommandRun) -> str:
        seconds = obj.seconds
        return "-" if seconds is None else f"{seconds:.1f} s"

    @admin.display(description="conteos")
    def counts_short(self, obj: CommandRun) -> str:
        return " ".join(f"{key}={value}" for key, value in obj.counts.items()) or "-"

    @admin.display(description="motivo del fallo")
    def fatal_short(self, obj: CommandRun) -> str:
        return obj.fatal if len(obj.fatal) <= 80 else obj.fatal[:79] + "…"

    @admin.display(description="conteos")
    def counts_pretty(self, obj: CommandRun) -> str:
        return pretty_json(obj.counts)
