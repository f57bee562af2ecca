"""A local stand-in of the clinic system SV for the black-box suite (docs/development.md "Black-box suite").

It implements exactly the two calls `opportunities/sv.py` makes:

``POST /auth/signin``
    Body ``{"username": str, "password": str}``: 200 ``{"access_token": "<random>"}`` when they
    match the configured credentials, 401 JSON otherwise, 400 when the body is not a JSON object.
``PATCH /reservation/<id>/clinic-history-crm``
    Needs ``Authorization: Bearer <token>`` with a token handed out by sign-in (401 otherwise);
    body ``{"clinicHistoryCrm": str}`` (400 otherwise); answers 200 ``{"success": true}``.
    The value is applied when the answer goes out: `clinic_history(id)` is what SV holds.

Anything else answers 404 JSON. Every request is recorded (`calls`), including refused ones;
`arrived(id)` lists the values of the PATCHes received for a reservation, in arrival order, as
soon as they arrive.

`slow_patches(seconds, count)`: the next `count` accepted PATCHes are applied and answered
`seconds` after they arrived; the others meanwhile are served at once, so a later PATCH can be
applied before an earlier slow one (`clinic_history(id)` is `applied(id)`).

A slow or flapping SV: `plan_patches([(delay, status), ...])` makes the next PATCHes, in arrival
order, answer `status` after `delay` seconds; a PATCH changes SV's value (`applied(reservation_id)`)
only when it answers 200, i.e. when its delay is over, as a real SV that commits at the end of a
slow request (also when the client gave up waiting).
`wait_for_patches(n)` waits until n PATCHes have arrived.

`down()` stops listening (a client then gets "connection refused", as when SV is off) and `up()`
listens again on the same port. It speaks HTTP/1.0 (one request per connection), so no pooled
keep-alive connection can reach it while it is "down". Runs in a daemon thread of the test process.
"""

from __future__ import annotations

import http.server
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["SvCall", "SvStandin"]

_PATCH_RE = re.compile(r"^/reservation/(\d{1,10})/clinic-history-crm$")
_MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class SvCall:
    """One request the stand-in received; `status` is what it answered."""

    method: str
    path: str
    authorization: str
    body: Any  # parsed JSON, or the raw text when it was not JSON
    status: int
    at: float  # time.monotonic()

    @property
    def reservation_id(self) -> int | None:
        match = _PATCH_RE.match(self.path)
        return int(match.group(1)) if match else None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server: _Server

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the test output clean

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, _MAX_BODY_BYTES)) if length > 0 else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path = self.path.split("?", 1)[0]
        authorization = self.headers.get("Authorization", "")
        status, payload = self.server.owner._handle(self.command, path, authorization, body)
        self.server.owner._record(SvCall(self.command, path, authorization, body, status, time.monotonic()))
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # up() binds the same port again right after down()
    owner: SvStandin


class SvStandin:
    """In-memory SV on 127.0.0.1; `start()` picks a free port that `down()`/`up()` keep."""

    def __init__(self, *, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self._lock = threading.Lock()
        self._tokens: set[str] = set()
        self._calls: list[SvCall] = []
        self._plan: list[tuple[float, int]] = []  # (delay, status) of the next PATCHes, in order
        self._applied: dict[int, str] = {}
        self._arrivals: list[tuple[int, str]] = []
        self._arrival = threading.Condition(self._lock)
        self._port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> SvStandin:
        self.up()
        return self

    def up(self) -> None:
        """Listen (again) on the same port; no-op when already listening."""
        if self._server is not None:
            return
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.owner = self
        self._port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="SvStandin", daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        """Stop listening: connections to the port are refused until `up()`."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server, self._thread = None, None

    stop = down

    @property
    def is_up(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        """The value for `URL_SV` (valid while down too: the port is kept)."""
        if not self._port:
            raise RuntimeError("the SV stand-in was never started")
        return f"http://127.0.0.1:{self._port}"

    # -- what it received ----------------------------------------------------------------------

    @property
    def calls(self) -> list[SvCall]:
        with self._lock:
            return list(self._calls)

    def patches(self, reservation_id: int) -> list[SvCall]:
        """The PATCH calls for one reservation, accepted or not, in arrival order."""
        return [c for c in self.calls if c.method == "PATCH" and c.reservation_id == reservation_id]

    def plan_patches(self, steps: list[tuple[float, int]]) -> None:
        """The next PATCHes answer `status` after `delay` seconds, one step each, in arrival order;
        after the plan, PATCHes answer 200 at once again."""
        with self._lock:
            self._plan = list(steps)

    def slow_patches(self, seconds: float, count: int = 1) -> None:
        """Apply and answer the next `count` accepted PATCHes `seconds` after they arrive."""
        self.plan_patches([(seconds, 200)] * count)

    def applied(self, reservation_id: int) -> str | None:
        """The clinic history SV holds for the reservation (the last PATCH that answered 200)."""
        with self._lock:
            return self._applied.get(reservation_id)

    clinic_history = applied

    def arrived(self, reservation_id: int) -> list[str]:
        """The values of the accepted PATCHes for one reservation, in arrival order (recorded on
        arrival, before a slow PATCH is applied)."""
        with self._lock:
            return [value for rid, value in self._arrivals if rid == reservation_id]

    def wait_for_patches(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until `count` PATCH requests arrived since the start (answered or not)."""
        with self._arrival:
            return self._arrival.wait_for(lambda: len(self._arrivals) >= count, timeout=timeout)

    @property
    def patches_arrived(self) -> int:
        with self._lock:
            return len(self._arrivals)

    def issued_token(self, token: str) -> bool:
        with self._lock:
            return token in self._tokens

    # -- request handling (handler threads) ----------------------------------------------------

    def _record(self, call: SvCall) -> None:
        with self._lock:
            self._calls.append(call)

    def _handle(self, method: str, path: str, authorization: str, body: Any) -> tuple[int, dict[str, Any]]:
        if path == "/auth/signin":
            if method != "POST":
                return 405, _error(405, "Method Not Allowed")
            if not isinstance(body, dict):
                return 400, _error(400, "A JSON object body is required")
            if body.get("username") != self.username or body.get("password") != self.password:
                return 401, _error(401, "Invalid credentials")
            token = secrets.token_urlsafe(24)
            with self._lock:
                self._tokens.add(token)
            return 200, {"access_token": token}
        if _PATCH_RE.match(path):
            if method != "PATCH":
                return 405, _error(405, "Method Not Allowed")
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not self.issued_token(token.strip()):
                return 401, _error(401, "Unauthorized")
            if not isinstance(body, dict) or not isinstance(body.get("clinicHistoryCrm"), str):
                return 400, _error(400, "clinicHistoryCrm is required")
            reservation_id, value = int(_PATCH_RE.match(path).group(1)), body["clinicHistoryCrm"]  # type: ignore[union-attr]
            with self._arrival:
                self._arrivals.append((reservation_id, value))
                self._arrival.notify_all()
                delay, status = self._plan.pop(0) if self._plan else (0.0, 200)
            if delay:
                time.sleep(delay)
            if status != 200:
                return status, _error(status, "Service Unavailable")
            with self._lock:
                self._applied[reservation_id] = value
            return 200, {"success": True}
        return 404, _error(404, "Not Found")


def _error(status: int, message: str) -> dict[str, Any]:
    return {"statusCode": status, "message": message}
