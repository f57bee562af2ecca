"""`manage.py poll_invoices`: check every pending service order against invoice-mifact.

Source document section 7 (cron every 5 minutes); CONTRACT.md section 7. Prints one summary
line; exits 1 only when it could check nothing (sign-in failed, service unreachable or not
configured) while service orders were pending.
"""
from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.services import service_orders_poll


class Command(BaseCommand):
    help = "Check pending service orders (O.S) against invoice-mifact-v3 and complete the invoiced ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--opportunity", metavar="ID", help="only this opportunity's service orders")
        parser.add_argument("--limit", type=int, metavar="N", help="check at most N service orders")
        parser.add_argument(
            "--workers", type=int, metavar="N", default=None,
            help="parallel checks (default: POLL_WORKERS setting)",
        )

    def handle(self, *args: Any, opportunity: str | None, limit: int | None, workers: int | None,
               **options: Any) -> None:
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1")
        workers = workers if workers is not None else settings.POLL_WORKERS
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        show_progress = self.stdout.isatty()

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"\r{done}/{total} O.S revisadas", ending="")
            self.stdout.flush()

        summary = service_orders_poll(
            opportunity_id=opportunity, limit=limit, workers=workers,
            progress=progress if show_progress else None,
        )
        if show_progress and summary.pending:
            self.stdout.write("")
        self.stdout.write(summary.line)
        if summary.pending and summary.checked == 0 and summary.fatal:
            sys.exit(1)
