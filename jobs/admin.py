"""The run records of the periodic commands in the admin: read-only, newest first; the signed
events, their receivers (webhook endpoints) and their deliveries (docs/admin.md "Events")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from crm.admin_ui.display import clinic_datetime
from crm.admin_ui.outbox import OUTBOX_FIELDS, OUTBOX_LIST_DISPLAY, OutboxAdminMixin
from crm.admin_ui.readonly import ReadOnlyAdminMixin, pretty_json, short_text
from jobs.models import CommandRun, Event, EventType, WebhookDelivery, WebhookEndpoint, new_webhook_secret
from jobs.webhooks import webhook_deliveries_retry_now

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
    "pruned": "eventos antiguos borrados",
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


def _masked(secret: str) -> str:
    return f"{secret[:10]}…{secret[-4:]}" if secret else "-"


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        label="tipos de evento",
        choices=EventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Ninguno marcado: recibe todos los tipos de evento.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "description", "active", "event_types")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Receivers of the signed events (docs/admin.md "Events"). The secret is generated, shown in
    full once (the message after adding it, or after "Generar un secreto nuevo"), masked after.
    An endpoint is switched off (`active`), not deleted."""

    form = WebhookEndpointForm
    list_display = ("url", "description", "active", "types", "secret_masked", "created")
    list_filter = ("active",)
    search_fields = ("url", "description")
    readonly_fields = ("secret_masked",)
    actions = ("new_secret",)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Switched off, never deleted: its deliveries are the record of what was sent, and the
        # processes' endpoint lists (cached for seconds) may still name it.
        return False

    @admin.display(description="tipos de evento")
    def types(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.event_types) or "todos"

    @admin.display(description="secreto de firma")
    def secret_masked(self, obj: WebhookEndpoint) -> str:
        return _masked(obj.secret)

    @admin.display(description="creado", ordering="created_at")
    def created(self, obj: WebhookEndpoint) -> str:
        return clinic_datetime(obj.created_at)

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            messages.warning(request, f"Secreto de firma de {obj.url} (se muestra solo esta vez): {obj.secret}")

    @admin.action(description="Generar un secreto nuevo (se muestra una vez)", permissions=["change"])
    def new_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            endpoint.secret = new_webhook_secret()
            endpoint.save(update_fields=["secret"])
            messages.warning(request, f"Nuevo secreto de firma de {endpoint.url}: {endpoint.secret}")


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The events told to other systems, with what was sent (read-only)."""

    list_display = ("created", "type", "opportunity_id", "uid")
    list_filter = ("type", "created_at")
    search_fields = ("=uid", "=opportunity_id")
    search_help_text = "Buscar por id del evento o de la oportunidad."
    list_per_page = 100
    fields = ("uid", "type", "opportunity_id", "created_at", "body_pretty")
    readonly_fields = fields

    @admin.display(description="creado", ordering="created_at")
    def created(self, obj: Event) -> str:
        return clinic_datetime(obj.created_at)

    @admin.display(description="contenido enviado")
    def body_pretty(self, obj: Event) -> str:
        return pretty_json(obj.body)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OutboxAdminMixin, admin.ModelAdmin):
    """The events' outbox (docs/admin.md "Events"): each event to each receiver, its status,
    attempts, next try and last error; "Reintentar ahora" for Facturación."""

    list_display = ("when", "event_type", "opportunity", "receiver", *OUTBOX_LIST_DISPLAY)
    list_display_links = ("when",)
    list_filter = ("status", "event__type", "created_at")
    search_fields = ("=event__uid", "=event__opportunity_id")
    search_help_text = "Buscar por id del evento o de la oportunidad."
    list_select_related = ("event", "endpoint")
    list_per_page = 100
    ordering = ("-id",)
    fields = ("event", "endpoint", "stream", *OUTBOX_FIELDS)
    readonly_fields = fields
    retry_permission = "jobs.change_webhookdelivery"
    retry_description = "Reintentar envío del evento ahora"

    def outbox_retry(self, pks: Iterable[int]) -> dict[str, int]:
        return webhook_deliveries_retry_now(delivery_pks=pks)

    @admin.display(description="evento", ordering="event__type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.type

    @admin.display(description="oportunidad", ordering="event__opportunity_id")
    def opportunity(self, obj: WebhookDelivery) -> str:
        return obj.event.opportunity_id

    @admin.display(description="destino")
    def receiver(self, obj: WebhookDelivery) -> str:
        return str(obj.endpoint) if obj.endpoint else "WEBHOOK_URL"
