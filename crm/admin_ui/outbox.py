"""The admin list of an outbox (`jobs.outbox`: SV deliveries, event deliveries): read-only rows
with their status, attempts, next try and last error, and the action "Reintentar ahora" for who
holds the model's change permission (docs/decisions.md "One outbox").

A model admin sets `retry_permission` ("app.change_model"), `retry_description` (the action's
label), `not_configured_errors` and `not_configured_message` (what "retry now" says when the
system is not configured), and `outbox_retry(pks)` (the channel's retry; counts by result name).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from crm.admin_ui.display import clinic_datetime
from crm.admin_ui.readonly import ReadOnlyAdminMixin, short_text

# The retry action calls the outside system once per row, in the request: keep a click short.
ADMIN_RETRY_MAX_ROWS = 20

#: The statuses "Reintentar ahora" acts on (`jobs.models.OutboxRow.Status`).
RETRIABLE = ("pending", "failed")

#: The list columns every outbox shows after its channel's own ones.
OUTBOX_LIST_DISPLAY = ("status", "attempts", "next_attempt", "last_error_short")
#: The columns every outbox row has (`jobs.models.OutboxRow`), shown after its channel's own ones.
OUTBOX_FIELDS = ("status", "attempts", "next_attempt_at", "delivered_at", "last_error", "created_at", "updated_at")


class OutboxAdminMixin(ReadOnlyAdminMixin):
    """Columns and the "Reintentar ahora" action shared by the outboxes' admin lists."""

    retry_permission: ClassVar[str]
    retry_description: ClassVar[str] = "Reintentar ahora"
    not_configured_errors: ClassVar[tuple[type[Exception], ...]] = ()
    not_configured_message: ClassVar[str] = ""
    actions: Any = ("retry_now",)

    def outbox_retry(self, pks: Iterable[int]) -> dict[str, int]:
        raise NotImplementedError

    @admin.display(description="creada", ordering="created_at")
    def when(self, obj: Any) -> str:
        return clinic_datetime(obj.created_at)

    @admin.display(description="próximo intento", ordering="next_attempt_at")
    def next_attempt(self, obj: Any) -> str:
        return clinic_datetime(obj.next_attempt_at)

    @admin.display(description="último error")
    def last_error_short(self, obj: Any) -> str:
        return short_text(obj.last_error, 80)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        # The change permission (rows stay read-only): Supervisión sees rows, Facturación retries them.
        return bool(request.user.is_staff and request.user.has_perm(self.retry_permission))

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)  # type: ignore[misc]
        if "retry_now" in actions:
            function, name, _ = actions["retry_now"]
            actions["retry_now"] = (function, name, self.retry_description)
        return actions

    @admin.action(description="Reintentar ahora", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        retriable = list(
            queryset.filter(status__in=RETRIABLE).order_by("pk").values_list("pk", flat=True)[:ADMIN_RETRY_MAX_ROWS]
        )
        if not retriable:
            messages.warning(request, "Ninguno de los envíos seleccionados está pendiente o fallido.")
            return
        try:
            counts = self.outbox_retry(retriable)
        except self.not_configured_errors:
            messages.error(request, self.not_configured_message)
            return
        delivered = counts.get("delivered", 0)
        skipped = counts.get("skipped", 0)
        failed = len(retriable) - delivered - skipped
        level = messages.SUCCESS if failed == 0 else messages.WARNING
        messages.add_message(
            request,
            level,
            f"Reintentados: {len(retriable)}. Entregados: {delivered}. Con error: {failed}. "
            f"En curso por otro proceso: {skipped}.",
        )
