"""The API plumbing's one table: the answers kept for `Idempotency-Key` (crm/idempotency.py,
docs/api.md "Safe retries")."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class IdempotencyKey(models.Model):
    """One `Idempotency-Key` a user sent: the request it named (method, path, SHA-256 of the
    canonical body) and, once done, the answer to replay (status, body, a few headers).

    Unique per user and key: the INSERT of a new key is the lock that makes two requests with the
    same key do the work once. `locked_at` is when the request doing the work took it; a key left
    in progress longer than `IDEMPOTENCY_LOCK_SECONDS` belonged to a killed process and is taken
    over by the next retry.
    """

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", "En curso"
        DONE = "done", "Respondida"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, verbose_name="usuario")
    key = models.CharField("clave", max_length=255)
    method = models.CharField("método", max_length=10)
    path = models.CharField("ruta", max_length=255)
    fingerprint = models.CharField("huella del cuerpo (SHA-256)", max_length=64)
    state = models.CharField("estado", max_length=15, choices=State.choices, default=State.IN_PROGRESS)
    status_code = models.PositiveSmallIntegerField("código de estado", null=True, blank=True)
    response_body = models.JSONField("cuerpo de la respuesta", null=True, blank=True, encoder=DjangoJSONEncoder)
    response_headers = models.JSONField("cabeceras de la respuesta", default=dict, blank=True)
    created_at = models.DateTimeField("creada", auto_now_add=True)
    locked_at = models.DateTimeField("tomada")

    class Meta:
        db_table = "api_idempotency_key"
        verbose_name = "clave de idempotencia"
        verbose_name_plural = "claves de idempotencia"
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created_idx")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} · {self.key}"
