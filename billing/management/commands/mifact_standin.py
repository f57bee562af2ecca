"""`manage.py mifact_standin`: run the local invoice-mifact-v3 stand-in in the foreground.

For development, demos and benchmarks only (see `billing.standin`, which implements the source
document section 6.2 contract). Point the backend at it with
``URL_INVOICE_MIFACT_V3=http://127.0.0.1:<port>/api`` and switch an O.S to invoiced with::

    curl -X POST http://127.0.0.1:5111/api/_standin/service-order/456/invoice \\
         -H 'Content-Type: application/json' -d '{"soles": true, "dolares": true}'

Runs until Ctrl-C or SIGTERM; exits 0 then. Exits 1 when the address cannot be bound.
"""
from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.standin import MifactStandin

DEFAULT_CREDENTIAL = "admin"


class Command(BaseCommand):
    help = (
        "Serve a local in-memory stand-in of invoice-mifact-v3 (development and benchmarks only; "
        "never production). Switch an O.S to invoiced with "
        "POST /api/_standin/service-order/<id>/invoice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=5111, help="TCP port (default 5111; 0 = any free port)")
        parser.add_argument(
            "--latency-ms", type=float, default=0.0, metavar="MS",
            help="milliseconds every invoice-status call waits before answering (default 0)",
        )
        parser.add_argument(
            "--username", default=None,
            help="accepted sign-in username (default: INVOICE_MIFACT_USERNAME, else 'admin')",
        )
        parser.add_argument(
            "--password", default=None,
            help="accepted sign-in password (default: INVOICE_MIFACT_PASSWORD, else 'admin')",
        )

    def handle(
        self,
        *args: Any,
        host: str,
        port: int,
        latency_ms: float,
        username: str | None,
        password: str | None,
        **options: Any,
    ) -> None:
        if not 0 <= port <= 65535:
            raise CommandError("--port must be between 0 and 65535")
        if latency_ms < 0:
            raise CommandError("--latency-ms must be >= 0")
        username = username or settings.INVOICE_MIFACT_USERNAME or DEFAULT_CREDENTIAL
        password = password or settings.INVOICE_MIFACT_PASSWORD or DEFAULT_CREDENTIAL
        standin = MifactStandin(
            host, port, username=username, password=password, latency=latency_ms / 1000.0,
            log_requests=int(options.get("verbosity", 1)) >= 2,
        )
        try:
            standin.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc

        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        try:
            self.stdout.write(
                f"invoice-mifact stand-in (local use only) at {standin.base_url} "
                f"(user {username!r}, latency {latency_ms:g} ms)"
            )
            self.stdout.write(f"  set URL_INVOICE_MIFACT_V3={standin.base_url}")
            self.stdout.write(
                f"  invoice an O.S: curl -X POST {standin.base_url}/_standin/service-order/<id>/invoice"
            )
            self.stdout.write("  Ctrl-C or SIGTERM stops it.")
            self.stdout.flush()
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            standin.stop()
        self.stdout.write("invoice-mifact stand-in stopped.")
