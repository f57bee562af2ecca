"""A LOCAL stand-in of invoice-mifact-v3, for development, demos and benchmarks only.

It implements invoice-mifact's status contract (docs/api.md "invoice-mifact") so the backend can
be exercised end to end without the real invoicing service. It is never used in
production: it keeps everything in memory, accepts one fixed username/password, and its control
endpoints (``/api/_standin/...``) have no authentication at all.

Endpoints and control calls: docs/development.md "The invoice-mifact stand-in".

Typical use::

    standin = MifactStandin(username="admin", password="admin").start()
    standin.invoice(456, soles=True, dolares=True)
    client = MifactClient(base_url=standin.base_url, username="admin", password="admin")
    client.get_invoice_status(456)  # facturado, with both URLs
    standin.stop()
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import socket
import sys
import threading
from typing import Any

from devtools.standin_http import HttpError, StandinHandler, StandinServer, allow_method, json_object, positive_int
from devtools.testing import make_pdf

__all__ = ["MifactStandin"]

API_PREFIX = "/api"
CURRENCIES = ("soles", "dolares")
#: First `invoice_result_head_id` handed out when the caller does not choose one.
FIRST_HEAD_ID = 1000

_STATUS_RE = re.compile(r"^/service-order/(\d{1,10})/invoice-status$")
_OS_FILE_RE = re.compile(r"^/files/os-(\d{1,10})-(soles|dolares)\.pdf$")
_DIRECT_FILE_RE = re.compile(r"^/files/factura-directa-([^/]+)\.pdf$")
_SWITCH_RE = re.compile(r"^/_standin/service-order/(\d{1,10})/invoice$")
_VOID_RE = re.compile(r"^/_standin/service-order/(\d{1,10})/void$")
_STATE_PATH = "/_standin/state"
_SIGNIN_PATH = "/auth/signin"


class MifactStandin:
    """In-memory invoice-mifact-v3 (docs/api.md "invoice-mifact" contract), for local use only.

    `host`/`port`: where to listen (`port=0` picks a free port; read it back from `port` or
    `base_url` after `start()`). `username`/`password`: the only credentials sign-in accepts.
    `latency`: seconds every invoice-status call waits before answering (0 = none).
    `log_requests`: write one access-log line per request to stderr.

    Thread-safe: `invoice()`, `status_calls` and the other accessors may be called from any
    thread while requests are being served. Also a context manager (starts and stops).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        username: str = "admin",
        password: str = "admin",
        latency: float = 0.0,
        log_requests: bool = False,
    ) -> None:
        if latency < 0:
            raise ValueError("latency must be >= 0 seconds")
        self.host = host
        self.username = username
        self.password = password
        self.latency = float(latency)
        self.log_requests = log_requests
        self.api_prefix = API_PREFIX
        self._requested_port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._tokens: set[str] = set()
        # service_order_id -> {"invoice_result_head_id": int, "currencies": tuple[str, ...]}
        self._invoiced: dict[int, dict[str, Any]] = {}
        self._next_head_id = FIRST_HEAD_ID
        self._status_calls = 0
        self._sign_ins = 0
        self._connections: set[socket.socket] = set()
        self._server: StandinServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> MifactStandin:
        """Bind and serve in a background daemon thread; returns self.

        Raises `OSError` when the address cannot be bound (e.g. the port is in use) and
        `RuntimeError` when already started.
        """
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        self._stopping.clear()
        server = StandinServer((self.host, self._requested_port), StandinHandler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="MifactStandin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (calls waiting on `latency` end at once).

        Safe to call twice or before `start()`.
        """
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> MifactStandin:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port. Raises `RuntimeError` before `start()`."""
        if self._server is None:
            raise RuntimeError("the stand-in is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/api`` (``127.0.0.1`` when bound to all interfaces): the value for
        `URL_INVOICE_MIFACT_V3`. Raises `RuntimeError` before `start()`."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{API_PREFIX}"

    # -- state ----------------------------------------------------------------------------------

    def invoice(
        self,
        service_order_id: int,
        *,
        soles: bool = True,
        dolares: bool = False,
        head_id: int | None = None,
    ) -> dict[str, Any]:
        """Switch an O.S to invoiced (facturado) with a comprobante per chosen currency.

        `head_id`: the `invoice_result_head_id` to report (default: the next of a counter
        starting at 1000). Invoicing again replaces the previous invoice. Returns the
        invoice-status body the service now answers for it. Raises `ValueError` when the id is
        not a positive integer or no currency is chosen (the real service would then not
        report it as facturado either).
        """
        service_order_id = positive_int(service_order_id, "service_order_id")
        currencies = tuple(c for c, wanted in zip(CURRENCIES, (soles, dolares), strict=True) if wanted)
        if not currencies:
            raise ValueError("choose at least one currency (soles and/or dolares)")
        if head_id is not None:
            head_id = positive_int(head_id, "head_id")
        with self._lock:
            if head_id is None:
                head_id = self._next_head_id
                self._next_head_id += 1
            self._invoiced[service_order_id] = {"invoice_result_head_id": head_id, "currencies": currencies}
        return self.status_body(service_order_id)

    def void(self, service_order_id: int) -> dict[str, Any]:
        """Void the O.S's comprobante (not reissued yet): it answers `facturado: false` again,
        as the real service leaves voided comprobantes out. Invoicing it again is the reissue."""
        with self._lock:
            self._invoiced.pop(positive_int(service_order_id, "service_order_id"), None)
        return self.status_body(service_order_id)

    def status_body(self, service_order_id: int) -> dict[str, Any]:
        """The invoice-status JSON (docs/api.md "invoice-mifact") for one O.S, without counting a
        call or waiting `latency`. Unknown O.S are not invoiced."""
        with self._lock:
            entry = self._invoiced.get(int(service_order_id))
        if entry is None:
            return {"facturado": False}
        return {
            "facturado": True,
            "urls": {c: self.file_url(int(service_order_id), c) for c in entry["currencies"]},
            "invoice_result_head_id": entry["invoice_result_head_id"],
        }

    def file_url(self, service_order_id: int, currency: str) -> str:
        """Public URL of the comprobante PDF of an O.S in `currency` ("soles" or "dolares")."""
        return f"{self.base_url}/files/os-{int(service_order_id)}-{currency}.pdf"

    def direct_invoice_url(self, tag: str = "F001-1") -> str:
        """A URL that always serves a PDF, for `cFacturas` (direct invoice) in demos.
        `tag` must be URL-path safe (letters, digits, ``-``, ``_``)."""
        return f"{self.base_url}/files/factura-directa-{tag}.pdf"

    @property
    def status_calls(self) -> int:
        """How many invoice-status requests were answered (any outcome, including 401s)."""
        with self._lock:
            return self._status_calls

    @property
    def sign_ins(self) -> int:
        """How many successful sign-ins were made."""
        with self._lock:
            return self._sign_ins

    def revoke_tokens(self) -> None:
        """Forget every token handed out (the next status call with one answers 401)."""
        with self._lock:
            self._tokens.clear()

    def state(self) -> dict[str, Any]:
        """Snapshot, as served by ``GET /api/_standin/state`` (shape in the module docstring)."""
        with self._lock:
            ids = sorted(self._invoiced)
            status_calls, sign_ins = self._status_calls, self._sign_ins
        return {
            "service_orders": {str(i): self.status_body(i) for i in ids},
            "status_calls": status_calls,
            "sign_ins": sign_ins,
            "latency_seconds": self.latency,
        }

    # -- request handling (called from handler threads) -----------------------------------------

    def track_connection(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def handle_request(self, method: str, path: str, body: bytes, authorization: str) -> tuple[int, Any, str]:
        """Route one request; returns (status, JSON-able dict or bytes, content type)."""
        if path == _SIGNIN_PATH:
            allow_method(method, "POST")
            return self._sign_in(body)
        if match := _STATUS_RE.match(path):
            allow_method(method, "GET")
            return self._invoice_status(int(match.group(1)), authorization)
        if match := _OS_FILE_RE.match(path):
            allow_method(method, "GET")
            service_order_id, currency = int(match.group(1)), match.group(2)
            with self._lock:
                entry = self._invoiced.get(service_order_id)
            if entry is None or currency not in entry["currencies"]:
                raise HttpError(404, "File not found")
            head_id = entry["invoice_result_head_id"]
            return 200, make_pdf(f"O.S {service_order_id} {currency} head {head_id}"), "application/pdf"
        if match := _DIRECT_FILE_RE.match(path):
            allow_method(method, "GET")
            return 200, make_pdf(f"Factura directa {match.group(1)}"), "application/pdf"
        if match := _SWITCH_RE.match(path):
            allow_method(method, "POST")
            return self._switch(int(match.group(1)), body)
        if match := _VOID_RE.match(path):
            allow_method(method, "POST")
            return 200, self.void(int(match.group(1))), "application/json"
        if path == _STATE_PATH:
            allow_method(method, "GET")
            return 200, self.state(), "application/json"
        raise HttpError(404, "Not Found")

    def _sign_in(self, body: bytes) -> tuple[int, Any, str]:
        data = json_object(body, required=True)
        username, password = data.get("username"), data.get("password")
        if not (isinstance(username, str) and isinstance(password, str)):
            raise HttpError(401, "Invalid credentials")
        ok = secrets.compare_digest(username.encode(), self.username.encode()) & secrets.compare_digest(
            password.encode(), self.password.encode()
        )
        if not ok:
            raise HttpError(401, "Invalid credentials")
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens.add(token)
            self._sign_ins += 1
        return 200, {"access_token": token}, "application/json"

    def _invoice_status(self, service_order_id: int, authorization: str) -> tuple[int, Any, str]:
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            self._status_calls += 1
            known = scheme.lower() == "bearer" and token.strip() in self._tokens
        if not known:
            raise HttpError(401, "Unauthorized")
        if self.latency and self._stopping.wait(self.latency):
            raise HttpError(503, "Shutting down")
        return 200, self.status_body(service_order_id), "application/json"

    def _switch(self, service_order_id: int, body: bytes) -> tuple[int, Any, str]:
        data = json_object(body, required=False)
        soles, dolares = data.get("soles", True), data.get("dolares", False)
        head_id = data.get("invoice_result_head_id")
        if not isinstance(soles, bool) or not isinstance(dolares, bool):
            raise HttpError(400, "'soles' and 'dolares' must be booleans")
        if head_id is not None and (isinstance(head_id, bool) or not isinstance(head_id, int)):
            raise HttpError(400, "'invoice_result_head_id' must be an integer")
        try:
            return (
                200,
                self.invoice(service_order_id, soles=soles, dolares=dolares, head_id=head_id),
                "application/json",
            )
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None


def main(argv: list[str] | None = None, standin_class: type[MifactStandin] | None = None) -> int:
    """`python -m devtools.mifact_standin`: serve the stand-in in the foreground until Ctrl-C or
    SIGTERM (exit 0); exit 1 when the address cannot be bound. Point the backend at it with
    ``URL_INVOICE_MIFACT_V3=http://127.0.0.1:<port>/api`` and invoice an O.S with
    ``curl -X POST http://127.0.0.1:<port>/api/_standin/service-order/456/invoice``."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.mifact_standin",
        description="Local in-memory stand-in of invoice-mifact-v3 (development, demos, benchmarks; never production).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5111, help="TCP port (default 5111; 0 = any free port)")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="milliseconds every invoice-status call waits before answering (default 0)",
    )
    parser.add_argument(
        "--username",
        default=os.environ.get("INVOICE_MIFACT_USERNAME") or "admin",
        help="accepted sign-in username (default: $INVOICE_MIFACT_USERNAME, else 'admin')",
    )
    parser.add_argument(
        "--password",
        default=os.environ.get("INVOICE_MIFACT_PASSWORD") or "admin",
        help="accepted sign-in password (default: $INVOICE_MIFACT_PASSWORD, else 'admin')",
    )
    parser.add_argument("--log-requests", action="store_true", help="one access-log line per request on stderr")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    if args.latency_ms < 0:
        parser.error("--latency-ms must be >= 0")
    standin = (standin_class or MifactStandin)(
        args.host,
        args.port,
        username=args.username,
        password=args.password,
        latency=args.latency_ms / 1000.0,
        log_requests=args.log_requests,
    )
    try:
        standin.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    print(
        f"invoice-mifact stand-in (local use only) at {standin.base_url} "
        f"(user {args.username!r}, latency {args.latency_ms:g} ms)",
        flush=True,
    )
    print(f"  set URL_INVOICE_MIFACT_V3={standin.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    print("invoice-mifact stand-in stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
