"""`manage.py idempotency_keys_prune`: delete the `Idempotency-Key` answers older than
`IDEMPOTENCY_KEY_HOURS` (cron, daily; docs/api.md "Safe retries"). Prints one line:
`idempotency_keys_prune: deleted=N`. Exit status 0; 2 for a bad option."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from crm.commands import SpanishOptionsMixin
from crm.idempotency import idempotency_keys_prune


class Command(SpanishOptionsMixin, BaseCommand):
    help = (
        "Borra las respuestas guardadas de Idempotency-Key más antiguas que IDEMPOTENCY_KEY_HOURS "
        "(también las de solicitudes que nunca terminaron)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"idempotency_keys_prune: deleted={idempotency_keys_prune()}")
