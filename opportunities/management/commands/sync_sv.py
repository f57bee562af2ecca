"""`manage.py sync_sv`: deliver due clinic-history rows of the SV outbox (CONTRACT.md 8).

Prints one summary line; exits 1 only when it could deliver nothing (SV unreachable, sign-in
refused, or `URL_SV` unset) while deliveries were due.
"""
from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from opportunities.services import sv_deliveries_sync


class Command(BaseCommand):
    help = "Deliver pending clinic histories to SV (reservation, patient, payment), with backoff."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, metavar="N", help="attempt at most N deliveries")

    def handle(self, *args: Any, limit: int | None, **options: Any) -> None:
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1")
        summary = sv_deliveries_sync(limit=limit)
        self.stdout.write(summary.line)
        if summary.due and summary.delivered == 0 and summary.fatal:
            sys.exit(1)
