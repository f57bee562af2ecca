"""The admin of what runs behind the scenes, in Spanish: the run records of the periodic
commands (read-only, newest first) and django-axes' admin-login lockouts (registered here
instead of axes' English admin, `AXES_ENABLE_ADMIN = False`)."""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest

from crm.display import clinic_datetime
from crm.models import CommandRun
from crm.readonly_admin import ReadOnlyAdminMixin, pretty_json, short_text

# The counts the commands record (billing/services/poll.py, opportunities/sv_outbox.py), for people.
COUNT_LABELS = {
    "pending": "pendientes",
    "checked": "consultadas",
    "invoiced": "facturadas",
    "errors": "con error",
    "left": "sin consultar",
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


class AccessAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only lists of django-axes' records of admin logins."""

    search_fields = ("username__icontains", "ip_address__icontains", "path_info__icontains")
    search_help_text = "Buscar por usuario, dirección IP o ruta."
    list_per_page = 100
    ordering = ("-attempt_time",)

    @admin.display(description="fecha", ordering="attempt_time")
    def when(self, obj: Any) -> str:
        return clinic_datetime(obj.attempt_time)

    @admin.display(description="navegador")
    def browser(self, obj: Any) -> str:
        return short_text(obj.user_agent, 60)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(AccessAdmin):
    """Failed logins per username and address. Deleting a row lifts that lockout."""

    list_display = ("when", "username", "ip_address", "failures_since_start", "status", "browser")
    list_display_links = ("when",)
    list_filter = ("attempt_time",)
    fields = ("username", "ip_address", "path_info", "attempt_time", "failures_since_start", "user_agent")
    readonly_fields = fields

    @admin.display(description="estado")
    def status(self, obj: AccessAttempt) -> str:
        limit = settings.AXES_FAILURE_LIMIT
        if obj.failures_since_start >= limit:
            return "Bloqueado"
        return f"{limit - obj.failures_since_start} intentos restantes"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("axes.delete_accessattempt")


@admin.register(AccessFailureLog)
class AccessFailureLogAdmin(AccessAdmin):
    list_display = ("when", "username", "ip_address", "locked_out", "browser")
    list_display_links = ("when",)
    list_filter = ("attempt_time", "locked_out")
    fields = ("username", "ip_address", "path_info", "attempt_time", "locked_out", "user_agent")
    readonly_fields = fields


@admin.register(AccessLog)
class AccessLogAdmin(AccessAdmin):
    list_display = ("when", "logout", "username", "ip_address", "browser")
    list_display_links = ("when",)
    list_filter = ("attempt_time", "logout_time")
    fields = ("username", "ip_address", "path_info", "attempt_time", "logout_time", "user_agent")
    readonly_fields = fields

    @admin.display(description="salida", ordering="logout_time")
    def logout(self, obj: AccessLog) -> str:
        return clinic_datetime(obj.logout_time)
