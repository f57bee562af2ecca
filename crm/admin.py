"""django-axes' admin-login lockouts in Spanish (registered here instead of axes' English admin,
`AXES_ENABLE_ADMIN = False`)."""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest

from crm.admin_ui.display import clinic_datetime
from crm.admin_ui.readonly import ReadOnlyAdminMixin, short_text


def access_fields(own: str) -> tuple[str, ...]:
    """A record's page: who, from which address and path, when, the record's own field, the browser."""
    return ("username", "ip_address", "path_info", "attempt_time", own, "user_agent")


class AccessAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only lists of django-axes' records of admin logins."""

    search_fields = ("username__icontains", "ip_address__icontains", "path_info__icontains")
    search_help_text = "Buscar por usuario, dirección IP o ruta."
    list_per_page = 100
    ordering = ("-attempt_time",)
    list_display_links = ("when",)

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
    list_filter = ("attempt_time",)
    fields = readonly_fields = access_fields("failures_since_start")

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
    list_filter = ("attempt_time", "locked_out")
    fields = readonly_fields = access_fields("locked_out")


@admin.register(AccessLog)
class AccessLogAdmin(AccessAdmin):
    list_display = ("when", "logout", "username", "ip_address", "browser")
    list_filter = ("attempt_time", "logout_time")
    fields = readonly_fields = access_fields("logout_time")

    @admin.display(description="salida", ordering="logout_time")
    def logout(self, obj: AccessLog) -> str:
        return clinic_datetime(obj.logout_time)
