"""Run records of the periodic commands (`poll_invoices`, `sync_sv`): what ran where, when, with
what result (docs/operations.md "Monitoring"); the outbox's row (`jobs.outbox`) and the events
with their endpoints and deliveries (docs/api.md "Events")."""

from __future__ import annotations

import base64
import secrets
import time

from django.db import models
from django.utils import timezone


class CommandRun(models.Model):
    """One run of a periodic command, written when it starts (`running`) and finished by
    `jobs.runs.command_run`; a killed run is told by its process or its silent heartbeat
    (`jobs.run_liveness`)."""

    class Outcome(models.TextChoices):
        RUNNING = "running", "en curso"
        OK = "ok", "correcta"
        PARTIAL = "partial", "parcial"
        FAILED = "failed", "fallida"

    command = models.CharField("comando", max_length=50)
    host = models.CharField("servidor", max_length=255)
    started_at = models.DateTimeField("inicio", default=timezone.now)
    finished_at = models.DateTimeField("fin", null=True, blank=True)
    outcome = models.CharField("resultado", max_length=10, choices=Outcome.choices, default=Outcome.RUNNING)
    counts = models.JSONField("conteos", default=dict, blank=True)
    fatal = models.TextField("motivo del fallo", blank=True, default="")
    # Who runs it, to tell a live run from a killed one: the process id on `host`, the process's
    # start in clock ticks after boot (Linux /proc; a reused pid has another), the last sign of life.
    pid = models.IntegerField("proceso", null=True, blank=True)
    process_started = models.BigIntegerField("inicio del proceso", null=True, blank=True)
    heartbeat_at = models.DateTimeField("última señal de vida", null=True, blank=True)

    class Meta:
        verbose_name = "ejecución de comando"
        verbose_name_plural = "ejecuciones de comandos"
        ordering = ("-started_at", "-id")
        db_table = "crm_commandrun"  # its table since it lived in the crm app (jobs/migrations/0001)
        indexes = [models.Index(fields=["command", "-started_at"], name="command_run_latest_idx")]

    def __str__(self) -> str:
        return f"{self.command} {self.started_at:%Y-%m-%d %H:%M} ({self.get_outcome_display()})"

    @property
    def seconds(self) -> float | None:
        """How long the run took, or None while it runs."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class OutboxRow(models.Model):
    """A row of an outbox (`jobs.outbox`): one message to deliver to an outside system, written in
    the transaction of the change it tells about, tried right after the commit and, while the
    system fails, by a periodic command with exponential backoff. Claimed with `jobs.claims`.

    Abstract: each outbox (the SV deliveries, the event deliveries) has its own table with these
    columns and its own payload columns; `jobs.outbox` delivers them all the same way.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pendiente"
        DELIVERED = "delivered", "Entregada"
        FAILED = "failed", "Fallida (sin más reintentos)"

    status = models.CharField("estado", max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField("intentos", default=0)
    last_error = models.TextField("último error", blank=True, default="")
    next_attempt_at = models.DateTimeField("próximo intento", null=True, blank=True)
    delivered_at = models.DateTimeField("entregada", null=True, blank=True)
    claimed_until = models.DateTimeField("reservada hasta", null=True, blank=True, editable=False)
    created_at = models.DateTimeField("creada", auto_now_add=True)
    updated_at = models.DateTimeField("actualizada", auto_now=True)

    class Meta:
        abstract = True


def new_event_id() -> str:
    """A fresh event id: `evt_` and 26 characters (a ULID: milliseconds since 1970 then 80 random
    bits, in Crockford's base 32), so ids sort by creation time."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    number = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "evt_" + "".join(alphabet[(number >> (5 * i)) & 31] for i in reversed(range(26)))


def new_webhook_secret() -> str:
    """A fresh endpoint secret in the Standard Webhooks form: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class EventType(models.TextChoices):
    """The events other systems may receive (docs/api.md "Events"; built by `opportunities.events`)."""

    OPPORTUNITY_UPDATED = "opportunity.updated", "Oportunidad actualizada (opportunity.updated)"
    OPPORTUNITY_CLOSED_WON = "opportunity.closed_won", "Cierre ganado (opportunity.closed_won)"
    SERVICE_ORDER_INVOICED = "service_order.invoiced", "O.S facturada (service_order.invoiced)"
    COMPROBANTE_VOIDED = "comprobante.voided", "Comprobante anulado (comprobante.voided)"
    COMPROBANTE_REPLACED = "comprobante.replaced", "Comprobante reemplazado (comprobante.replaced)"


class Event(models.Model):
    """Something that happened to an opportunity, told to other systems (docs/api.md "Events").

    Written from the action-history records of a change, in its transaction
    (`opportunities.events`), with one delivery per endpoint that wants it. `body` is the JSON sent
    (`type`, `timestamp`, `data`); `uid` its stable id (the `webhook-id` header). The opportunity is
    named by its id only: events are a log of what was said, kept after their delivery for
    `WEBHOOK_EVENTS_KEEP_DAYS`.
    """

    uid = models.CharField("id del evento", max_length=30, unique=True, default=new_event_id, editable=False)
    type = models.CharField("tipo", max_length=60, choices=EventType.choices)
    opportunity_id = models.CharField("oportunidad", max_length=17, db_index=True)
    body = models.JSONField("contenido")
    created_at = models.DateTimeField("creado", auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "evento"
        verbose_name_plural = "eventos"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.type} · {self.uid}"


class WebhookEndpoint(models.Model):
    """A receiver of events that staff added in the admin (besides `WEBHOOK_URL`)."""

    url = models.URLField("URL", max_length=2000)
    description = models.CharField("descripción", max_length=200, blank=True, default="")
    secret = models.CharField("secreto de firma", max_length=100, default=new_webhook_secret, editable=False)
    active = models.BooleanField("activo", default=True)
    event_types = models.JSONField(
        "tipos de evento", default=list, blank=True, help_text="Vacío: todos los tipos de evento."
    )
    created_at = models.DateTimeField("creado", auto_now_add=True)

    class Meta:
        verbose_name = "destino de eventos (webhook)"
        verbose_name_plural = "destinos de eventos (webhooks)"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.description or self.url

    def wants(self, event_type: str) -> bool:
        return self.active and (not self.event_types or event_type in self.event_types)


class WebhookDelivery(OutboxRow):
    """One event to one endpoint (`endpoint` null: the endpoint of `WEBHOOK_URL`), in the outbox
    (`jobs.webhooks`). `stream` is `<endpoint id or "settings">:<opportunity id>`: one stream's rows
    are sent one at a time, oldest first."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries", verbose_name="evento")
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name="destino",
    )
    stream = models.CharField("secuencia", max_length=40)

    class Meta(OutboxRow.Meta):
        verbose_name = "envío de evento"
        verbose_name_plural = "envíos de eventos"
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at", "id"], condition=models.Q(status="pending"), name="webhook_delivery_due_idx"
            ),
            models.Index(fields=["stream", "id"], condition=models.Q(status="pending"), name="webhook_stream_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint or 'WEBHOOK_URL'} ({self.get_status_display()})"
