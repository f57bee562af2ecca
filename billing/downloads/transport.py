"""The transport of one download: a total deadline enforced by a watchdog, and a session whose
adapters check and pin every connection to a host that is not allow-listed (requests-hardened's
`IPFilterAdapter`, made stricter)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from requests_hardened.ip_filter import InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from crm.request_ids import outgoing_headers

from .errors import (
    REASON_BLOCKED,
    REASON_DNS,
    REASON_INVALID_URL,
    REASON_NO_HOST,
    REASON_TIMEOUT,
    REASON_USERINFO,
    DownloadError,
)
from .policy import (
    DEFAULT_PORTS,
    HostPort,
    check_resolved_addresses,
    is_allowed,
    is_forbidden_address,
)

logger = logging.getLogger(__name__)

#: Upper bounds (seconds) of the per-request timeouts; both are also capped by the time left.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
USER_AGENT = "clinic-crm-invoice-downloader/1.0"


class Deadline:
    """The total time budget of one download.

    A timer shuts down every socket the download opened when the budget runs out, which makes a
    blocked read return at once (per-read timeouts alone cannot stop a server that sends one
    byte just before each timeout).
    """

    def __init__(self, seconds: float) -> None:
        seconds = max(float(seconds), 0.0)
        self._expires_at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    @property
    def expired(self) -> bool:
        return self._expired or time.monotonic() >= self._expires_at

    def remaining(self) -> float:
        return self._expires_at - time.monotonic()

    def check(self, url: str) -> None:
        """Raise a transient timeout DownloadError once the budget is spent."""
        if self.expired:
            raise DownloadError(url, REASON_TIMEOUT)

    def request_timeout(self, url: str) -> tuple[float, float]:
        """``(connect, read)`` timeouts in seconds for the next request."""
        remaining = self.remaining()
        if remaining <= 0 or self._expired:
            raise DownloadError(url, REASON_TIMEOUT)
        return min(CONNECT_TIMEOUT, remaining), min(READ_TIMEOUT, remaining)

    def track(self, sock: socket.socket) -> None:
        """Remember a socket to shut down at the deadline (at once if already past)."""
        with self._lock:
            if not self._expired:
                self._sockets.append(sock)
                return
        self._shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._sockets.clear()

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        # The plain socket method, also for SSL sockets: ssl.SSLSocket.shutdown() would drop the
        # SSL object under the feet of the thread that is reading. A closed or detached socket
        # has no file descriptor any more (-1), so this never touches a reused descriptor.
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


def _tracking_pool_classes(deadline: Deadline) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes whose connections register their sockets with ``deadline``.

    ``_new_conn`` is urllib3's (not Django's or DRF's) and the only hook that sees the socket
    before the TLS handshake: tracking it there keeps a server that drips its handshake within
    the deadline too. Neither requests nor requests-hardened offers a total deadline.
    """

    class _TrackedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            deadline.track(sock)
            return sock

    class _TrackedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            deadline.track(sock)  # covers the TLS handshake
            return sock

        def connect(self) -> None:
            super().connect()
            # Wrapping in TLS detached the plain socket: track the SSL socket that replaced it.
            if self.sock is not None:
                deadline.track(self.sock)

    class _TrackedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = _TrackedHTTPConnection

    class _TrackedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = _TrackedHTTPSConnection

    return {"http": _TrackedHTTPConnectionPool, "https": _TrackedHTTPSConnectionPool}


class _TrackingAdapter(HTTPAdapter):
    """requests' adapter whose connections register their sockets with the download's deadline.
    As is, it serves the allow-listed hosts: no address check, no pinning (docs/operations.md)."""

    def __init__(self, *, deadline: Deadline, **kwargs: Any) -> None:
        self._deadline = deadline  # before super().__init__(), which calls init_poolmanager()
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = _tracking_pool_classes(self._deadline)


class _GuardedAdapter(_TrackingAdapter, IPFilterAdapter):
    """``IPFilterAdapter`` (resolve once, refuse a private first address, pin the connection to
    it with Host/SNI set) plus: a strict check of every resolved address before it, a check of
    the pinned address after it, and socket tracking for the total deadline."""

    def __init__(self, *, is_https_proto: bool, deadline: Deadline) -> None:
        super().__init__(deadline=deadline, is_https_proto=is_https_proto, allow_loopback=False)

    def build_connection_pool_key_attributes(
        self,
        request: requests.PreparedRequest,
        verify: bool | str,
        cert: str | tuple[str, str] | None = None,
    ) -> tuple[Any, Any]:  # requests types them with private aliases
        url = request.url or ""
        host, port = _host_port(url)
        check_resolved_addresses(url, host, port)
        try:
            # Resolves again, checks, and pins the connection to the address it got.
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        except InvalidIPAddress as exc:
            logger.warning("Invoice download refused: %s resolved to %s on the second lookup", host, exc)
            raise DownloadError(url, REASON_BLOCKED) from exc
        except requests.Timeout as exc:
            raise DownloadError(url, REASON_TIMEOUT) from exc
        except requests.exceptions.InvalidURL as exc:
            raise DownloadError(url, REASON_NO_HOST) from exc
        except requests.ConnectionError as exc:
            raise DownloadError(url, REASON_DNS) from exc
        # The library's own check is looser than ours (it lets e.g. site-local fec0::/10 and
        # some non-global ranges through): judge the pinned address too, so that any DNS answer
        # that changed between the two lookups is refused.
        if is_forbidden_address(str(host_params["host"])):
            logger.warning("Invoice download refused: %s pinned to %s", host, host_params["host"])
            raise DownloadError(url, REASON_BLOCKED)
        return host_params, pool_kwargs


def _host_port(url: str) -> tuple[str, int]:
    """The host and port a request to `url` connects to, parsed the way requests does (urlparse;
    urlsplit gives the same host and port); refuses user info and a missing host or port."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError as exc:
        raise DownloadError(url, REASON_INVALID_URL) from exc
    if "@" in parts.netloc:
        raise DownloadError(url, REASON_USERINFO)
    if not parts.hostname or port is None:
        raise DownloadError(url, REASON_NO_HOST)
    return parts.hostname, port


class DownloadSession(requests.Session):
    """A session for one download: the allow-listed hosts through a plain (tracking) adapter,
    every other host through the guarded ones; no environment proxies or .netrc, and no
    redirect handling (download_pdf follows redirects itself)."""

    def __init__(self, *, allowed: frozenset[HostPort], deadline: Deadline) -> None:
        super().__init__()
        self.trust_env = False
        self.headers["User-Agent"] = USER_AGENT
        self.headers["Accept"] = "application/pdf, */*;q=0.1"
        self.headers.update(outgoing_headers())
        self.mount("http://", _GuardedAdapter(is_https_proto=False, deadline=deadline))
        self.mount("https://", _GuardedAdapter(is_https_proto=True, deadline=deadline))
        self._allowed = allowed
        self._allowed_adapter = _TrackingAdapter(deadline=deadline)

    def get_adapter(self, url: str) -> BaseAdapter:
        # Every request of the session (each redirect hop included) is sent through the adapter
        # chosen here, for the host and port the prepared URL connects to.
        host, port = _host_port(url)
        if is_allowed(host, port, self._allowed):
            return self._allowed_adapter
        return super().get_adapter(url)

    def close(self) -> None:
        super().close()
        self._allowed_adapter.close()

    def resolve_redirects(
        self, resp: requests.Response, req: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> Iterator[Any]:
        # Session.send() calls this even with allow_redirects=False (to fill Response.next),
        # and the stock version reads the whole redirect body into memory first.
        return iter(())
