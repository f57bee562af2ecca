"""Run records of the periodic commands (`poll_invoices`, `sync_sv`): what ran where, when, with
what result (docs/operations.md "Monitoring")."""

from __future__ import annotations

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
