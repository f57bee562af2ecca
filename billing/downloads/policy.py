"""Which URLs and addresses a comprobante may be downloaded from: only http(s) without user info,
and only public addresses unless the host is allow-listed (`INVOICE_DOWNLOAD_ALLOWED_HOSTS`, the
invoice-mifact host); with `INVOICE_DOWNLOAD_ONLY_ALLOWED_HOSTS` nothing else at all."""

from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

from django.conf import settings
from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES

from .errors import (
    REASON_BLOCKED,
    REASON_DNS,
    REASON_HOST_NOT_ALLOWED,
    REASON_INVALID_URL,
    REASON_NO_HOST,
    REASON_SCHEME,
    REASON_USERINFO,
    DownloadError,
)

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (lower-case host without brackets, port or None for "any port")
HostPort = tuple[str, int | None]


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


def is_forbidden_address(address: str) -> bool:
    """Like :func:`_is_forbidden_ip` for a textual address (brackets and ``%scope`` allowed);
    anything that does not parse as an IP address is forbidden."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return True
    return _is_forbidden_ip(ip)


def normalize_host(host: str) -> str:
    """Lower-case, without brackets or one trailing dot; IP literals in canonical form."""
    host = host.strip().strip("[]").lower()
    if host.endswith("."):
        host = host[:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _parse_allow_list_entry(entry: str) -> HostPort:
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
    host = normalize_host(host)
    if not host:
        raise ValueError(entry)
    if port is None:
        return host, None
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(entry)
    return host, number


def allowed_host_ports() -> frozenset[HostPort]:
    """Read the allow-list from the settings (at call time)."""
    allowed: set[HostPort] = set()
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
            if parts.hostname and scheme in DEFAULT_PORTS:
                allowed.add((normalize_host(parts.hostname), parts.port or DEFAULT_PORTS[scheme]))
        except ValueError:
            logger.warning("URL_INVOICE_MIFACT_V3 is not a valid URL; not allow-listed")
    return frozenset(allowed)


def is_allowed(host: str, port: int, allowed: frozenset[HostPort]) -> bool:
    host = normalize_host(host)
    return (host, None) in allowed or (host, port) in allowed


def check_url(url: str) -> None:
    """Refuse what is wrong with the URL itself: scheme, user info, missing host, bad port."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise DownloadError(url, REASON_INVALID_URL) from exc
    if parts.scheme.lower() not in DEFAULT_PORTS:
        raise DownloadError(url, REASON_SCHEME)
    if "@" in parts.netloc:
        raise DownloadError(url, REASON_USERINFO)
    if not parts.hostname:
        raise DownloadError(url, REASON_NO_HOST)
    if settings.INVOICE_DOWNLOAD_ONLY_ALLOWED_HOSTS:
        port = parts.port or DEFAULT_PORTS[parts.scheme.lower()]
        if not is_allowed(parts.hostname, port, allowed_host_ports()):
            raise DownloadError(url, REASON_HOST_NOT_ALLOWED)


def check_resolved_addresses(url: str, host: str, port: int) -> None:
    """Resolve ``host`` and refuse if ANY of its addresses is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise DownloadError(url, REASON_INVALID_URL) from exc
    except OSError as exc:  # socket.gaierror, socket.timeout
        raise DownloadError(url, REASON_DNS) from exc
    if not infos:
        raise DownloadError(url, REASON_DNS)
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6) or is_forbidden_address(str(sockaddr[0])):
            logger.warning("Invoice download refused: %s resolves to %s", host, sockaddr[0])
            raise DownloadError(url, REASON_BLOCKED)
