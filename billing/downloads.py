"""Download invoice PDFs from untrusted URLs (CONTRACT.md section 6).

Every invoice PDF the project fetches goes through :func:`download_pdf`. The URL may come from an
API user or from invoice-mifact, so the download is treated as a server-side request forgery risk:

* only ``http`` and ``https``; URLs with ``user:password@`` or without a host are refused;
* every address the host resolves to must be public: private, loopback, link-local, multicast,
  reserved, unspecified and other non-global addresses (IPv4 and IPv6, including IPv4-mapped IPv6)
  are refused, unless the host is allow-listed in ``settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS``
  (``"host"`` = any port, ``"host:port"``) or is the host:port of
  ``settings.URL_INVOICE_MIFACT_V3``; with ``settings.INVOICE_DOWNLOAD_ONLY_ALLOWED_HOSTS`` every
  other host is refused before it is even resolved;
* the connection is pinned to the checked IP (``requests_hardened.IPFilterAdapter``), so a DNS
  answer that changes between the check and the connection cannot redirect it;
* redirects are followed here, at most :data:`MAX_REDIRECTS` hops, each hop checked again;
* connect and read timeouts per request plus a total deadline of
  ``settings.INVOICE_DOWNLOAD_TIMEOUT`` seconds for the whole download, enforced by a watchdog
  that shuts the sockets down, so a server dripping bytes cannot hold a worker;
* the body is streamed to a temporary file outside ``MEDIA_ROOT`` and refused past
  ``settings.INVOICE_DOWNLOAD_MAX_BYTES`` bytes (counted after content decoding); it must start
  with ``%PDF-`` whatever ``Content-Type`` says; empty bodies and non-2xx answers are refused.

Every failure raises :class:`DownloadError` (never a ``requests`` or socket exception) and leaves
no temporary file behind. Settings are read at call time.
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import pathlib
import re
import socket
import tempfile
import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import IO, Any, Iterator, Union
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3.exceptions
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES, InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["DownloadError", "DownloadedPdf", "download_pdf"]

logger = logging.getLogger(__name__)

#: Redirect hops followed after the first request; one more redirect is refused.
MAX_REDIRECTS = 5
#: Upper bounds (seconds) of the per-request timeouts; both are also capped by the time left.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
#: Bytes asked from the (decoded) body stream at a time.
CHUNK_SIZE = 16 * 1024
#: Prefix of the temporary files this module creates in ``tempfile.gettempdir()``.
TEMP_FILE_PREFIX = "crm-invoice-"
PDF_MAGIC = b"%PDF-"
DEFAULT_FILE_NAME = "comprobante.pdf"
MAX_FILE_NAME_LENGTH = 100
USER_AGENT = "clinic-crm-invoice-downloader/1.0"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Client errors that mean "try again later" rather than "this will never work".
_TRANSIENT_CLIENT_STATUSES = frozenset({408, 425, 429})

# Reasons (Spanish, shown to API users).
REASON_SCHEME = "esquema no permitido (solo http/https)"
REASON_USERINFO = "la dirección no puede incluir usuario ni contraseña"
REASON_NO_HOST = "la dirección no indica el servidor"
REASON_INVALID_URL = "la dirección no es válida"
REASON_HOST_NOT_ALLOWED = "el servidor no está en la lista de servidores de comprobantes permitidos"
REASON_BLOCKED = "la dirección apunta a una red privada o reservada"
REASON_DNS = "no se pudo resolver el nombre del servidor"
REASON_CONNECT = "no se pudo conectar con el servidor"
REASON_TLS = "no se pudo establecer una conexión segura con el servidor"
REASON_TIMEOUT = "tiempo de descarga agotado"
REASON_INTERRUPTED = "la conexión se interrumpió durante la descarga"
REASON_TOO_MANY_REDIRECTS = "demasiadas redirecciones"
REASON_BAD_REDIRECT = "redirección sin destino"
REASON_REDIRECT_PREFIX = "redirección rechazada: "
REASON_STATUS = "el servidor respondió {status}"
REASON_EMPTY = "el archivo está vacío"
REASON_NOT_PDF = "el archivo no es un PDF"
REASON_TOO_LARGE = "el archivo supera el tamaño máximo de {max_bytes} bytes"
REASON_DECODING = "el contenido comprimido del archivo no es válido"
REASON_STORAGE = "no se pudo guardar el archivo temporal"
REASON_UNEXPECTED = "error inesperado al descargar el archivo"

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
# (lower-case host without brackets, port or None for "any port")
_HostPort = tuple[str, Union[int, None]]


class DownloadError(Exception):
    """Raised by :func:`download_pdf` when a URL cannot be fetched as a PDF (CONTRACT.md section 6).

    Attributes:
        url: the URL that was asked for (also when a later redirect hop failed).
        reason: short Spanish explanation, safe to show to API users, e.g.
            ``"la dirección apunta a una red privada o reservada"``.
        permanent: ``True`` when retrying will not help (bad scheme or URL, refused address,
            not a PDF, too large, too many redirects, most 4xx answers); ``False`` for transient
            failures (timeouts, connection errors, DNS failures, 5xx, 408/425/429).

    ``str(exc)`` is ``f"{reason} ({url})"``.
    """

    def __init__(self, url: str, reason: str, *, permanent: bool) -> None:
        super().__init__(url, reason)
        self.url = url
        self.reason = reason
        self.permanent = permanent

    def __str__(self) -> str:
        return f"{self.reason} ({self.url})"

    def __repr__(self) -> str:
        return (f"DownloadError(url={self.url!r}, reason={self.reason!r}, "
                f"permanent={self.permanent!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        # The keyword-only argument would otherwise break pickling (task queues, caches).
        return (_rebuild_download_error, (self.url, self.reason, self.permanent))


def _rebuild_download_error(url: str, reason: str, permanent: bool) -> DownloadError:
    return DownloadError(url, reason, permanent=permanent)


@dataclass(frozen=True)
class DownloadedPdf:
    """A PDF fetched by :func:`download_pdf` (CONTRACT.md section 6).

    Attributes:
        source_url: the URL asked for (not the final URL after redirects).
        path: a temporary file in ``tempfile.gettempdir()`` (outside ``MEDIA_ROOT``), named
            ``crm-invoice-*.pdf``. The caller owns it: move it into storage or call
            :meth:`discard`.
        size: bytes written, after content decoding.
        sha256: lower-case hex SHA-256 digest of the bytes written.
        content_type: always ``"application/pdf"``.
        file_name: safe file name from the source URL's last path segment (only
            ``[A-Za-z0-9._-]``, at most 100 characters, ends with ``.pdf``; fallback
            ``"comprobante.pdf"``).
    """

    source_url: str
    path: pathlib.Path
    size: int
    sha256: str
    content_type: str
    file_name: str

    def discard(self) -> None:
        """Delete the temporary file; does nothing if it is already gone."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


# --------------------------------------------------------------------------------------------
# Address checks and allow-list


def _is_forbidden_ip(ip: IPAddress) -> bool:
    """True when ``ip`` is not a public unicast address (or sits in a range known to be unsafe)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        # ::ffff:a.b.c.d connects to a.b.c.d: judge the IPv4 address.
        ip = ip.ipv4_mapped
    if (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    ):
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return True
    return any(ip.version == net.version and ip in net for net in EXTRA_BLOCKED_NET_RANGES)


def _is_forbidden_address(address: str) -> bool:
    """Like :func:`_is_forbidden_ip` for a textual address (brackets and ``%scope`` allowed);
    anything that does not parse as an IP address is forbidden."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return True
    return _is_forbidden_ip(ip)


def _normalize_host(host: str) -> str:
    """Lower-case, without brackets or one trailing dot; IP literals in canonical form."""
    host = host.strip().strip("[]").lower()
    if host.endswith("."):
        host = host[:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _parse_allow_list_entry(entry: str) -> _HostPort:
    """``"host"``, ``"host:port"``, ``"[v6]"``, ``"[v6]:port"`` or a bare IPv6 address."""
    entry = entry.strip()
    port: str | None = None
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(entry)
            port = rest[1:]
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:
        host = entry
    host = _normalize_host(host)
    if not host:
        raise ValueError(entry)
    if port is None:
        return host, None
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(entry)
    return host, number


def _allowed_host_ports() -> frozenset[_HostPort]:
    """Read the allow-list from the settings (at call time)."""
    allowed: set[_HostPort] = set()
    for entry in settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS:
        if not str(entry).strip():
            continue
        try:
            allowed.add(_parse_allow_list_entry(str(entry)))
        except ValueError:
            logger.warning("Ignoring invalid INVOICE_DOWNLOAD_ALLOWED_HOSTS entry %r", entry)
    mifact = settings.URL_INVOICE_MIFACT_V3
    if mifact:
        try:
            parts = urlsplit(mifact)
            scheme = parts.scheme.lower()
            if parts.hostname and scheme in _DEFAULT_PORTS:
                allowed.add((_normalize_host(parts.hostname), parts.port or _DEFAULT_PORTS[scheme]))
        except ValueError:
            logger.warning("URL_INVOICE_MIFACT_V3 is not a valid URL; not allow-listed")
    return frozenset(allowed)


def _is_allowed(host: str, port: int, allowed: frozenset[_HostPort]) -> bool:
    host = _normalize_host(host)
    return (host, None) in allowed or (host, port) in allowed


def _check_url(url: str) -> None:
    """Refuse what is wrong with the URL itself: scheme, user info, missing host, bad port."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise DownloadError(url, REASON_INVALID_URL, permanent=True) from exc
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise DownloadError(url, REASON_SCHEME, permanent=True)
    if "@" in parts.netloc:
        raise DownloadError(url, REASON_USERINFO, permanent=True)
    if not parts.hostname:
        raise DownloadError(url, REASON_NO_HOST, permanent=True)
    if settings.INVOICE_DOWNLOAD_ONLY_ALLOWED_HOSTS:
        port = parts.port or _DEFAULT_PORTS[parts.scheme.lower()]
        if not _is_allowed(parts.hostname, port, _allowed_host_ports()):
            raise DownloadError(url, REASON_HOST_NOT_ALLOWED, permanent=True)


def _check_resolved_addresses(url: str, host: str, port: int) -> None:
    """Resolve ``host`` and refuse if ANY of its addresses is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise DownloadError(url, REASON_INVALID_URL, permanent=True) from exc
    except OSError as exc:  # socket.gaierror, socket.timeout
        raise DownloadError(url, REASON_DNS, permanent=False) from exc
    if not infos:
        raise DownloadError(url, REASON_DNS, permanent=False)
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6) or _is_forbidden_address(
                str(sockaddr[0])):
            logger.warning("Invoice download refused: %s resolves to %s", host, sockaddr[0])
            raise DownloadError(url, REASON_BLOCKED, permanent=True)


# --------------------------------------------------------------------------------------------
# Total deadline


class _Deadline:
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
            raise DownloadError(url, REASON_TIMEOUT, permanent=False)

    def request_timeout(self, url: str) -> tuple[float, float]:
        """``(connect, read)`` timeouts in seconds for the next request."""
        remaining = self.remaining()
        if remaining <= 0 or self._expired:
            raise DownloadError(url, REASON_TIMEOUT, permanent=False)
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


def _tracking_pool_classes(deadline: _Deadline) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes whose connections register their sockets with ``deadline``."""

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


# --------------------------------------------------------------------------------------------
# Transport


class _GuardedAdapter(IPFilterAdapter):
    """``IPFilterAdapter`` (resolve once, refuse a private first address, pin the connection to
    it with Host/SNI set) plus: a strict check of every resolved address before it, a check of
    the pinned address after it, the allow-list, and socket tracking for the total deadline."""

    def __init__(self, *, is_https_proto: bool, allowed: frozenset[_HostPort],
                 deadline: _Deadline) -> None:
        # Set before super().__init__(), which calls init_poolmanager().
        self._allowed = allowed
        self._deadline = deadline
        super().__init__(is_https_proto=is_https_proto, allow_loopback=False)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = _tracking_pool_classes(self._deadline)

    def build_connection_pool_key_attributes(
        self,
        request: requests.PreparedRequest,
        verify: bool | str,
        cert: str | tuple[str, str] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        # Parse the prepared URL the way requests does (urlparse; urlsplit gives the same
        # host and port), so the host checked here is the host the pool connects to.
        url = request.url or ""
        try:
            parts = urlsplit(url)
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
        except ValueError as exc:
            raise DownloadError(url, REASON_INVALID_URL, permanent=True) from exc
        if "@" in parts.netloc:
            raise DownloadError(url, REASON_USERINFO, permanent=True)
        host = parts.hostname
        if not host or port is None:
            raise DownloadError(url, REASON_NO_HOST, permanent=True)

        if _is_allowed(host, port, self._allowed):
            # Plain HTTPAdapter behaviour: no address check, no pinning.
            return HTTPAdapter.build_connection_pool_key_attributes(self, request, verify, cert)

        _check_resolved_addresses(url, host, port)
        try:
            # Resolves again, checks, and pins the connection to the address it got.
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(
                request, verify, cert)
        except InvalidIPAddress as exc:
            logger.warning("Invoice download refused: %s resolved to %s on the second lookup",
                           host, exc)
            raise DownloadError(url, REASON_BLOCKED, permanent=True) from exc
        except requests.Timeout as exc:
            raise DownloadError(url, REASON_TIMEOUT, permanent=False) from exc
        except requests.exceptions.InvalidURL as exc:
            raise DownloadError(url, REASON_NO_HOST, permanent=True) from exc
        except requests.ConnectionError as exc:
            raise DownloadError(url, REASON_DNS, permanent=False) from exc
        # The library's own check is looser than ours (it lets e.g. site-local fec0::/10 and
        # some non-global ranges through): judge the pinned address too, so that any DNS answer
        # that changed between the two lookups is refused.
        if _is_forbidden_address(str(host_params["host"])):
            logger.warning("Invoice download refused: %s pinned to %s", host, host_params["host"])
            raise DownloadError(url, REASON_BLOCKED, permanent=True)
        return host_params, pool_kwargs


class _DownloadSession(requests.Session):
    """A session for one download: guarded adapters, no environment proxies or .netrc, and no
    redirect handling (download_pdf follows redirects itself)."""

    def __init__(self, *, allowed: frozenset[_HostPort], deadline: _Deadline) -> None:
        super().__init__()
        self.trust_env = False
        self.headers["User-Agent"] = USER_AGENT
        self.headers["Accept"] = "application/pdf, */*;q=0.1"
        self.mount("http://", _GuardedAdapter(is_https_proto=False, allowed=allowed,
                                              deadline=deadline))
        self.mount("https://", _GuardedAdapter(is_https_proto=True, allowed=allowed,
                                               deadline=deadline))

    def resolve_redirects(self, resp: requests.Response, req: requests.PreparedRequest,
                          *args: Any, **kwargs: Any) -> Iterator[Any]:
        # Session.send() calls this even with allow_redirects=False (to fill Response.next),
        # and the stock version reads the whole redirect body into memory first.
        return iter(())


# --------------------------------------------------------------------------------------------
# Download


def _safe_file_name(url: str) -> str:
    """File name from the URL's last path segment: ``[A-Za-z0-9._-]`` only, at most
    :data:`MAX_FILE_NAME_LENGTH` characters, ending with ``.pdf``; ``comprobante.pdf`` when
    nothing usable is left."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return DEFAULT_FILE_NAME
    segment = unquote(path.rsplit("/", 1)[-1]).replace("\\", "/").rsplit("/", 1)[-1]
    ascii_text = unicodedata.normalize("NFKD", segment).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text)
    stem = name[:-4] if name.lower().endswith(".pdf") else name
    # No leading dot (hidden file) or dash (looks like an option); no "name..pdf".
    stem = stem.strip("._-")[: MAX_FILE_NAME_LENGTH - 4].rstrip("._-")
    if not stem:
        return DEFAULT_FILE_NAME
    return f"{stem}.pdf"


def _open_final_response(session: _DownloadSession, url: str,
                         deadline: _Deadline) -> requests.Response:
    """GET ``url`` following at most MAX_REDIRECTS redirects; return the 2xx streamed response.

    Errors name the hop that failed; download_pdf() re-labels them with the source URL.
    """
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        try:
            _check_url(current)
            response = session.get(current, stream=True, allow_redirects=False,
                                   timeout=deadline.request_timeout(current))
        except DownloadError as exc:
            if hop and exc.permanent:
                raise DownloadError(url, REASON_REDIRECT_PREFIX + exc.reason,
                                    permanent=True) from exc
            raise
        status = response.status_code
        if status in _REDIRECT_STATUSES:
            location = (response.headers.get("Location") or "").strip()
            response.close()  # without reading the body
            if not location:
                raise DownloadError(url, REASON_BAD_REDIRECT, permanent=True)
            if hop == MAX_REDIRECTS:
                raise DownloadError(url, REASON_TOO_MANY_REDIRECTS, permanent=True)
            try:
                current = urljoin(current, location)
            except ValueError as exc:
                raise DownloadError(url, REASON_REDIRECT_PREFIX + REASON_INVALID_URL,
                                    permanent=True) from exc
            continue
        if status not in (200, 203):  # 204, 206 (a partial body), ... are not a whole PDF
            response.close()
            permanent = status < 500 and status not in _TRANSIENT_CLIENT_STATUSES
            raise DownloadError(url, REASON_STATUS.format(status=status), permanent=permanent)
        return response
    raise AssertionError("unreachable")  # pragma: no cover


def _stream_body(response: requests.Response, out: IO[bytes], url: str, deadline: _Deadline,
                 max_bytes: int) -> tuple[int, str]:
    """Write the decoded body to ``out``; return ``(size, sha256 hex)``."""
    too_large = DownloadError(url, REASON_TOO_LARGE.format(max_bytes=max_bytes), permanent=True)
    declared = response.headers.get("Content-Length")
    if declared:
        try:
            if int(declared) > max_bytes:
                raise too_large
        except ValueError:
            pass  # the byte count below still applies
    digest = hashlib.sha256()
    size = 0
    head = b""
    for chunk in response.iter_content(chunk_size=CHUNK_SIZE):
        deadline.check(url)
        if not chunk:
            continue
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        if len(head) < len(PDF_MAGIC):
            head += chunk[: len(PDF_MAGIC) - len(head)]
            if len(head) == len(PDF_MAGIC) and head != PDF_MAGIC:
                raise DownloadError(url, REASON_NOT_PDF, permanent=True)
        try:
            out.write(chunk)
        except OSError as exc:
            raise DownloadError(url, REASON_STORAGE, permanent=False) from exc
        digest.update(chunk)
    # The watchdog may have cut the stream short: a body that "ended" then is not complete.
    deadline.check(url)
    if size == 0:
        raise DownloadError(url, REASON_EMPTY, permanent=True)
    if head != PDF_MAGIC:
        raise DownloadError(url, REASON_NOT_PDF, permanent=True)
    return size, digest.hexdigest()


def _caused_by(exc: BaseException, types: tuple[type[BaseException], ...]) -> bool:
    """True if ``exc``, its causes/contexts, or exceptions in their args are ``types``."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, types):
            return True
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        stack.extend(a for a in current.args if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)  # urllib3.exceptions.MaxRetryError
        if isinstance(reason, BaseException):
            stack.append(reason)
    return False


def _as_download_error(exc: Exception, url: str, *, expired: bool) -> DownloadError:
    """Translate any exception raised while downloading ``url`` into a DownloadError;
    ``expired`` = the total deadline has passed."""
    if expired:
        # Errors after the watchdog fired are artefacts of the sockets it shut down.
        return DownloadError(url, REASON_TIMEOUT, permanent=False)
    if isinstance(exc, DownloadError):
        if exc.url == url:
            return exc
        return DownloadError(url, exc.reason, permanent=exc.permanent)
    # Not urllib3.exceptions.TimeoutError: NewConnectionError ("connection refused") is one.
    if isinstance(exc, requests.Timeout) or _caused_by(
            exc, (socket.timeout, urllib3.exceptions.ReadTimeoutError)):
        return DownloadError(url, REASON_TIMEOUT, permanent=False)
    if isinstance(exc, requests.exceptions.SSLError):
        return DownloadError(url, REASON_TLS, permanent=False)
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return DownloadError(url, REASON_DECODING, permanent=True)
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError,
                        urllib3.exceptions.ProtocolError)):
        return DownloadError(url, REASON_INTERRUPTED, permanent=False)
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema, requests.exceptions.URLRequired,
                        urllib3.exceptions.LocationValueError)):
        return DownloadError(url, REASON_INVALID_URL, permanent=True)
    if isinstance(exc, requests.ConnectionError):
        if _caused_by(exc, (socket.gaierror, urllib3.exceptions.NameResolutionError)):
            return DownloadError(url, REASON_DNS, permanent=False)
        return DownloadError(url, REASON_CONNECT, permanent=False)
    if isinstance(exc, (requests.RequestException, urllib3.exceptions.HTTPError, OSError)):
        return DownloadError(url, REASON_CONNECT, permanent=False)
    logger.exception("Unexpected error downloading an invoice PDF")
    return DownloadError(url, REASON_UNEXPECTED, permanent=False)


def _remove_quietly(path: pathlib.Path | None) -> None:
    if path is None:
        return
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        logger.exception("Could not delete temporary file %s", path)


def download_pdf(url: str) -> DownloadedPdf:
    """Download the PDF at ``url`` into a temporary file (CONTRACT.md section 6).

    Args:
        url: an ``http``/``https`` URL, as given by the user or by invoice-mifact.

    Returns:
        A :class:`DownloadedPdf` whose ``path`` is a temporary file in
        ``tempfile.gettempdir()`` (never inside ``MEDIA_ROOT``) that the caller must move or
        :meth:`~DownloadedPdf.discard`.

    Raises:
        DownloadError: for every failure (refused URL or address, redirects, timeouts, network
            errors, non-2xx answers, empty/non-PDF/too large bodies). ``permanent`` tells whether
            a retry may help. No temporary file is left behind.

    Settings (read at each call): ``INVOICE_DOWNLOAD_ALLOWED_HOSTS``, ``URL_INVOICE_MIFACT_V3``,
    ``INVOICE_DOWNLOAD_MAX_BYTES`` (bytes, after content decoding) and
    ``INVOICE_DOWNLOAD_TIMEOUT`` (seconds for the whole download: every hop and the body).
    Each request also gets a connect timeout of min(5 s, time left) and a read timeout of
    min(10 s, time left).
    """
    url = str(url)
    deadline: _Deadline | None = None
    tmp_path: pathlib.Path | None = None
    try:
        _check_url(url)
        max_bytes = int(settings.INVOICE_DOWNLOAD_MAX_BYTES)
        allowed = _allowed_host_ports()
        file_name = _safe_file_name(url)
        deadline = _Deadline(float(settings.INVOICE_DOWNLOAD_TIMEOUT))
        with _DownloadSession(allowed=allowed, deadline=deadline) as session:
            response = _open_final_response(session, url, deadline)
            with response:
                try:
                    out = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below
                        mode="wb", prefix=TEMP_FILE_PREFIX, suffix=".pdf",
                        dir=tempfile.gettempdir(), delete=False)
                except OSError as exc:
                    raise DownloadError(url, REASON_STORAGE, permanent=False) from exc
                tmp_path = pathlib.Path(out.name)
                with out:
                    size, sha256 = _stream_body(response, out, url, deadline, max_bytes)
        deadline.check(url)
        return DownloadedPdf(source_url=url, path=tmp_path, size=size, sha256=sha256,
                             content_type="application/pdf", file_name=file_name)
    except BaseException as exc:
        _remove_quietly(tmp_path)
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit...
        error = _as_download_error(exc, url, expired=deadline is not None and deadline.expired)
        if error is exc:
            raise
        raise error from exc
    finally:
        if deadline is not None:
            deadline.cancel()
