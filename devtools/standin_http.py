"""The HTTP plumbing of the local stand-ins of outside services: a keep-alive JSON handler that
hands each request to its stand-in (`owner.handle_request(method, path, body, authorization)`,
answering `(status, payload, content_type)`), bounded bodies, and JSON errors."""

from __future__ import annotations

import http.server
import json
from typing import Any

#: Seconds an idle keep-alive connection is kept open by a handler thread.
IDLE_CONNECTION_TIMEOUT = 30.0
#: Largest request body read (bytes); larger bodies answer 413.
MAX_BODY_BYTES = 64 * 1024


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class StandinHandler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive: the backend's client pools connections, as it would in production.
    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_TIMEOUT
    # Headers and body go out in two writes: without TCP_NODELAY the body waits for the client's
    # delayed ACK (~40 ms on Linux), which made every call ~40 ms slower than `latency`.
    disable_nagle_algorithm = True
    server: StandinServer
    server_version = "invoice-mifact-standin/1.0"

    def setup(self) -> None:
        super().setup()
        self.server.owner.track_connection(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner.track_connection(self.connection, add=False)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: object) -> None:
        # One access-log line per request, with the caller's X-Request-ID (the black-box suite
        # checks that the backend sends it).
        if self.server.owner.log_requests:
            request_id = self.headers.get("X-Request-ID", "-") if getattr(self, "headers", None) else "-"
            super().log_message(format + " request_id=%s", *args, request_id)

    # -- plumbing --------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        try:
            body = self._read_body()
            path = self.path.split("?", 1)[0]
            prefix = self.server.owner.api_prefix
            if not (path == prefix or path.startswith(prefix + "/")):
                raise HttpError(404, "Not Found")
            status, payload, content_type = self.server.owner.handle_request(
                method, path[len(prefix) :], body, self.headers.get("Authorization", "")
            )
        except HttpError as exc:
            status, payload, content_type = exc.status, error_body(exc.status, exc.message), "application/json"
        except Exception as exc:  # never leave the client without an answer
            status, payload, content_type = 500, error_body(500, exc.__class__.__name__), "application/json"
        self._send(status, payload, content_type)

    def _read_body(self) -> bytes:
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise HttpError(411, "Content-Length required")
        if not length_header:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            self.close_connection = True
            raise HttpError(400, "Bad Content-Length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            raise HttpError(413, "Payload Too Large")
        return self.rfile.read(length)

    def _send(self, status: int, payload: bytes | dict[str, Any], content_type: str) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            self.close_connection = True


class StandinServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Do not wait for idle keep-alive connections on close; `stop()` shuts them down instead.
    block_on_close = False
    owner: Any  # the stand-in: handle_request(), track_connection(), log_requests, api_prefix


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"statusCode": status, "message": message}


def json_object(body: bytes, *, required: bool) -> dict[str, Any]:
    if not body.strip():
        if required:
            raise HttpError(400, "A JSON object body is required")
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        raise HttpError(400, "The body is not valid JSON") from None
    if not isinstance(value, dict):
        raise HttpError(400, "The body must be a JSON object")
    return value


def allow_method(method: str, expected: str) -> None:
    """A 405 unless the request's method is `expected`."""
    if method != expected:
        raise HttpError(405, f"Method {method} not allowed here; use {expected}")


def positive_int(value: Any, name: str) -> int:
    """`value` when it is an integer in 1..2^31-1, else a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31 - 1:
        raise ValueError(f"{name} must be an integer between 1 and 2^31-1")
    return value
