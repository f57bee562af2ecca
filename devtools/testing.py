"""Helpers for tests: a local HTTP server with scripted answers, small PDF bodies, and clients of the
outside services with the tests' credentials.

Importable without pytest. Typical use (the ``http_server`` fixture in ``conftest.py``)::

    srv = LocalHTTPServer()
    srv.route("/f.pdf", body=SMALL_PDF)
    srv.redirect("/old.pdf", "/f.pdf")
    requests.get(srv.url("/old.pdf"), timeout=5)
    assert srv.requests == ["/old.pdf", "/f.pdf"]
    srv.close()
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "SERVICE_PASSWORD",
    "SERVICE_USER",
    "LocalHTTPServer",
    "SMALL_PDF",
    "at_once",
    "each_once",
    "kill_points",
    "make_pdf",
    "service_client",
]

#: The credentials the client tests give every outside service (faked with `responses`).
SERVICE_USER, SERVICE_PASSWORD = "admin", "secreto"
Client = TypeVar("Client")
Item = TypeVar("Item")


def service_client(client_class: Callable[..., Client], base_url: str, **options: Any) -> Client:
    """A client of the outside service at `base_url` with the tests' credentials, a 2 s timeout and
    no retries; `options` override them."""
    settings = {"username": SERVICE_USER, "password": SERVICE_PASSWORD, "timeout": 2, "retries": 0, **options}
    return client_class(base_url=base_url, **settings)


def each_once(pending: list[Item]) -> Iterator[Item]:
    """Take the items off `pending` until it is empty, each value once; the loop may add to `pending`
    (a crawl: the stylesheets a page loads and those they import)."""
    seen: set[Item] = set()
    while pending:
        item = pending.pop()
        if item not in seen:
            seen.add(item)
            yield item


def at_once(copies: int, call: Callable[[int], Any], *, each_done: Callable[[], None] | None = None) -> list[Any]:
    """Run `call(index)` in `copies` threads released together (behind a barrier); what each returned,
    or the exception it raised, in index order. `each_done` runs at the end of every thread (with a
    database: `connections.close_all`). Fails when a thread is still running after a minute."""
    barrier = threading.Barrier(copies)
    results: list[Any] = [None] * copies

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = call(index)
        except BaseException as exc:  # reported by the caller's assertions
            results[index] = exc
        finally:
            if each_done is not None:
                each_done()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    hung = [thread.name for thread in threads if thread.is_alive()]
    if hung:
        raise AssertionError(f"threads still running: {hung}")
    return results


def kill_points(events: list[str], code: tuple[str, ...], count: int) -> list[int]:
    """`count` of the line events (1-based) that fall in the files `code`, evenly spread, the first
    and the last included: where a crash-point test kills its process (docs/development.md
    "Crash points"); `events` are a calibration run's (`devtools.crash_points.Killer`)."""
    lines = [index + 1 for index, event in enumerate(events) if event.startswith(code)]
    if not lines:
        raise AssertionError(f"no line event in {code}: {events[:20]}")
    if len(lines) <= count:
        return lines
    step = (len(lines) - 1) / (count - 1)
    return sorted({lines[round(step * i)] for i in range(count)})


_CHUNK = 1024
_NOT_FOUND_BODY = (
    b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"
)


@dataclass(frozen=True)
class _Route:
    status: int
    body: bytes
    headers: dict[str, str | None] = field(default_factory=dict)
    delay: float = 0.0
    chunk_delay: float = 0.0
    # Called with the client's (host, port) when the request arrives / after the last body byte.
    on_request: Callable[[tuple[str, int]], None] | None = None
    on_sent: Callable[[tuple[str, int]], None] | None = None


class _Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a body without Content-Length ends at close.
    protocol_version = "HTTP/1.0"
    server: _Server

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean

    def _answer(self, *, send_body: bool) -> None:
        owner = self.server.owner
        owner._record(self.path)
        route = owner._find(self.path)
        if route.on_request is not None:
            route.on_request(self.client_address)
        try:
            if route.delay and owner._closing.wait(route.delay):
                return
            self.send_response(route.status)
            headers: dict[str, str | None] = {
                "Content-Type": ("application/pdf" if route.body.startswith(b"%PDF") else "application/octet-stream"),
                "Content-Length": str(len(route.body)),
            }
            # Case-insensitive override; a None value removes a default header.
            for name, value in route.headers.items():
                for existing in [k for k in headers if k.lower() == name.lower()]:
                    del headers[existing]
                headers[name] = value
            for name, value in headers.items():
                if value is not None:
                    self.send_header(name, value)
            self.end_headers()
            if not send_body:
                return
            for start in range(0, len(route.body), _CHUNK):
                if start and route.chunk_delay and owner._closing.wait(route.chunk_delay):
                    return
                self.wfile.write(route.body[start : start + _CHUNK])
                self.wfile.flush()
            if route.on_sent is not None:
                route.on_sent(self.client_address)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass  # the client gave up (timeouts, refusals): expected in tests


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: LocalHTTPServer


class LocalHTTPServer:
    """A threading HTTP server on 127.0.0.1 (random free port) serving scripted routes.

    Starts serving on construction, in a daemon thread. Routes match the request path exactly
    (query string included), else the path without its query string; anything else answers
    404 with an HTML body. GET and HEAD are supported; the server speaks HTTP/1.0 (one request
    per connection).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, _Route] = {}
        self._requests: list[str] = []
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="LocalHTTPServer", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host_port(self) -> str:
        """``"127.0.0.1:PORT"``."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """``"http://127.0.0.1:PORT" + path``."""
        return f"http://{self.host_port}{path}"

    @property
    def requests(self) -> list[str]:
        """Paths requested so far (with query string), in arrival order; a copy."""
        with self._lock:
            return list(self._requests)

    def route(
        self,
        path: str,
        *,
        status: int = 200,
        body: bytes = b"",
        headers: Mapping[str, str | None] | None = None,
        delay: float = 0.0,
        chunk_delay: float = 0.0,
        on_request: Callable[[tuple[str, int]], None] | None = None,
        on_sent: Callable[[tuple[str, int]], None] | None = None,
    ) -> None:
        """Answer ``path`` with ``status`` and ``body``.

        ``headers`` override the defaults (``Content-Type``: application/pdf for bodies starting
        with ``%PDF``, else application/octet-stream; ``Content-Length``: the body length); a
        ``None`` value drops the header. ``delay``: seconds to wait before answering.
        ``chunk_delay``: seconds to wait between the 1 KiB chunks of the body. ``on_request`` and
        ``on_sent`` are called (in the server's thread) with the client's ``(host, port)`` when the
        request arrives and after the last byte of the body was written (the fault-injection
        suite times its kills from there).
        """
        with self._lock:
            self._routes[path] = _Route(
                status=status,
                body=bytes(body),
                headers=dict(headers or {}),
                delay=delay,
                chunk_delay=chunk_delay,
                on_request=on_request,
                on_sent=on_sent,
            )

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        """Answer ``path`` with a redirect to ``location`` (absolute or relative)."""
        self.route(path, status=status, headers={"Location": location})

    def close(self) -> None:
        """Stop serving; handlers still waiting on a delay stop at once."""
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalHTTPServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _record(self, path: str) -> None:
        with self._lock:
            self._requests.append(path)

    def _find(self, path: str) -> _Route:
        with self._lock:
            route = self._routes.get(path) or self._routes.get(path.split("?", 1)[0])
        if route is None:
            return _Route(status=404, body=_NOT_FOUND_BODY, headers={"Content-Type": "text/html; charset=utf-8"})
        return route


def make_pdf(tag: str) -> bytes:
    """A small valid one-page PDF showing ``tag``; different tags give different bytes."""
    text = tag.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF").encode()
    return bytes(out)


#: A tiny valid-looking PDF (starts with ``%PDF-1.4``, ends with ``%%EOF``).
SMALL_PDF: bytes = make_pdf("Comprobante de prueba")
