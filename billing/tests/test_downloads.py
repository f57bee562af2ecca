"""billing.downloads.download_pdf: SSRF guards, limits and cleanup (docs/api.md "Downloading comprobantes").

No database and no network beyond 127.0.0.1: every connection goes through a spy that refuses
anything else, and host names other than IP literals are answered by a fake resolver.
"""

from __future__ import annotations

import gzip
import hashlib
import pathlib
import pickle
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import urllib3.util.connection

from billing.downloads import TEMP_FILE_PREFIX, DownloadedPdf, DownloadError, download_pdf
from billing.downloads import errors as downloads
from devtools.harness import free_port
from devtools.testing import SMALL_PDF, LocalHTTPServer, make_pdf

PUBLIC_IP = "93.184.216.34"


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(autouse=True)
def download_settings(settings: Any) -> Any:
    """Known settings for every test (pytest-django's override_settings wrapper)."""
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = []
    settings.URL_INVOICE_MIFACT_V3 = ""
    settings.INVOICE_DOWNLOAD_MAX_BYTES = 10 * 1024 * 1024
    settings.INVOICE_DOWNLOAD_TIMEOUT = 5.0
    return settings


@pytest.fixture(autouse=True)
def temp_dir(download_temp_dir: pathlib.Path) -> pathlib.Path:
    """The test's download folder (the root conftest checks that nothing is left in it)."""
    download_temp_dir.mkdir(exist_ok=True)
    return download_temp_dir


class FakeDNS:
    """socket.getaddrinfo replacement: scripted answers for some names, the real resolver
    (used only for IP literals and localhost here) for the rest."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self._real = real
        self._answers: dict[str, list[list[str]]] = {}
        self._ports: dict[str, int] = {}
        self.lookups: list[str] = []

    def add(self, name: str, *answers: list[str], port: int | None = None) -> None:
        """Successive lookups of ``name`` get successive answers; the last one repeats.
        ``port`` replaces the port in the returned socket addresses."""
        self._answers[name] = list(answers)
        if port is not None:
            self._ports[name] = port

    def fail(self, name: str) -> None:
        self._answers[name] = []

    def knows(self, name: str) -> bool:
        return name in self._answers

    def __call__(
        self,
        host: Any,
        port: Any,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, ...]]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in self._answers:
            return self._real(host, port, family, type, proto, flags)
        self.lookups.append(name)
        answers = self._answers[name]
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        index = min(self.lookups.count(name), len(answers)) - 1
        port_number = self._ports.get(name, int(port or 0))
        result: list[tuple[Any, ...]] = []
        for address in answers[index]:
            if ":" in address:
                result.append(
                    (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port_number, 0, 0))
                )
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port_number)))
        return result


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every (host, port) urllib3 tried to connect to. Only 127.0.0.1, and names the fake
    resolver maps, really connect; anything else is recorded and refused."""
    real = urllib3.util.connection.create_connection
    attempts: list[tuple[str, int]] = []

    def spy(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host, port = address
        attempts.append((host, port))
        fake = socket.getaddrinfo if isinstance(socket.getaddrinfo, FakeDNS) else None
        if host == "127.0.0.1" or (fake is not None and fake.knows(host)):
            return real(address, *args, **kwargs)
        raise ConnectionRefusedError(f"test network: connection to {host}:{port} not allowed")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", spy)
    return attempts


def refused(url: str) -> DownloadError:
    with pytest.raises(DownloadError) as info:
        download_pdf(url)
    assert type(info.value) is DownloadError
    return info.value


def closed_port() -> int:
    """A port nothing listens on (connections to it are refused)."""
    return free_port()


# ---------------------------------------------------------------------------------------------
# Success


def test_downloads_pdf_from_allow_listed_host_port_into_temp_file_outside_media_root(
    http_server: LocalHTTPServer, settings: Any, tmp_path: pathlib.Path, temp_dir: pathlib.Path
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [http_server.host_port]
    http_server.route("/facturas/F001-00000123.pdf", body=SMALL_PDF)
    url = http_server.url("/facturas/F001-00000123.pdf")

    pdf = download_pdf(url)

    assert isinstance(pdf, DownloadedPdf)
    assert pdf.source_url == url
    assert pdf.size == len(SMALL_PDF)
    assert pdf.sha256 == hashlib.sha256(SMALL_PDF).hexdigest()
    assert pdf.content_type == "application/pdf"
    assert pdf.file_name == "F001-00000123.pdf"
    assert pdf.path.read_bytes() == SMALL_PDF
    assert pdf.path.parent == temp_dir
    assert pdf.path.name.startswith(TEMP_FILE_PREFIX)
    assert not pdf.path.resolve().is_relative_to(pathlib.Path(settings.MEDIA_ROOT).resolve())
    assert http_server.requests == ["/facturas/F001-00000123.pdf"]
    pdf.discard()
    assert not pdf.path.exists()
    pdf.discard()  # already gone: no error


def test_allow_list_entry_without_port_allows_any_port(http_server: LocalHTTPServer, settings: Any) -> None:
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = ["127.0.0.1"]
    http_server.route("/f.pdf", body=SMALL_PDF)
    download_pdf(http_server.url("/f.pdf")).discard()


def test_allow_list_is_case_insensitive_and_defaults_to_port_80(
    http_server: LocalHTTPServer, settings: Any, fake_dns: FakeDNS
) -> None:
    # The fake resolver sends port 80 to the test server's port.
    fake_dns.add("files.clinic.test", ["127.0.0.1"], port=http_server.port)
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [" FILES.Clinic.Test:80 "]
    http_server.route("/f.pdf", body=SMALL_PDF)
    pdf = download_pdf("http://files.clinic.test/f.pdf")
    assert pdf.sha256 == hashlib.sha256(SMALL_PDF).hexdigest()
    pdf.discard()


def test_allow_list_entry_for_another_port_does_not_allow_the_host(
    http_server: LocalHTTPServer, settings: Any, fake_dns: FakeDNS, connections: list[tuple[str, int]]
) -> None:
    fake_dns.add("files.clinic.test", ["127.0.0.1"], port=http_server.port)
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = ["files.clinic.test:8080"]
    http_server.route("/f.pdf", body=SMALL_PDF)
    error = refused("http://files.clinic.test/f.pdf")
    assert error.reason == downloads.REASON_BLOCKED
    assert connections == [] and http_server.requests == []


def test_invoice_mifact_host_and_port_are_allowed(http_server: LocalHTTPServer, settings: Any) -> None:
    settings.URL_INVOICE_MIFACT_V3 = f"http://{http_server.host_port}/api"
    http_server.route("/api/comprobantes/1.pdf", body=SMALL_PDF)
    download_pdf(http_server.url("/api/comprobantes/1.pdf")).discard()


def test_invoice_mifact_allowance_is_limited_to_its_port(http_server: LocalHTTPServer, settings: Any) -> None:
    settings.URL_INVOICE_MIFACT_V3 = f"http://127.0.0.1:{closed_port()}/api"
    http_server.route("/f.pdf", body=SMALL_PDF)
    assert refused(http_server.url("/f.pdf")).reason == downloads.REASON_BLOCKED
    assert http_server.requests == []


def test_pdf_body_is_accepted_whatever_the_content_type(http_server: LocalHTTPServer, settings: Any) -> None:
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [http_server.host_port]
    http_server.route("/f", body=SMALL_PDF, headers={"Content-Type": "text/html"})
    pdf = download_pdf(http_server.url("/f"))
    assert pdf.content_type == "application/pdf"
    pdf.discard()


def test_distinct_pdfs_get_distinct_digests(http_server: LocalHTTPServer, settings: Any) -> None:
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [http_server.host_port]
    http_server.route("/a.pdf", body=make_pdf("A"))
    http_server.route("/b.pdf", body=make_pdf("B"))
    first, second = download_pdf(http_server.url("/a.pdf")), download_pdf(http_server.url("/b.pdf"))
    assert first.sha256 != second.sha256
    assert first.path != second.path
    first.discard()
    second.discard()


def test_body_of_exactly_the_maximum_size_is_accepted(http_server: LocalHTTPServer, settings: Any) -> None:
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [http_server.host_port]
    settings.INVOICE_DOWNLOAD_MAX_BYTES = len(SMALL_PDF)
    http_server.route("/f.pdf", body=SMALL_PDF)
    download_pdf(http_server.url("/f.pdf")).discard()


def test_gzip_body_is_stored_decoded(http_server: LocalHTTPServer, settings: Any) -> None:
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [http_server.host_port]
    http_server.route("/f.pdf", body=gzip.compress(SMALL_PDF), headers={"Content-Encoding": "gzip"})
    pdf = download_pdf(http_server.url("/f.pdf"))
    assert pdf.path.read_bytes() == SMALL_PDF
    assert pdf.size == len(SMALL_PDF)
    assert pdf.sha256 == hashlib.sha256(SMALL_PDF).hexdigest()
    pdf.discard()


@pytest.mark.parametrize(
    ("path", "file_name"),
    [
        ("/docs/Factura%20F001-00012.PDF?download=1", "Factura_F001-00012.pdf"),
        ("/descargar?id=5", "descargar.pdf"),
        ("/", "comprobante.pdf"),
        ("/.pdf", "comprobante.pdf"),
        ("/%C3%B1and%C3%BA-recibo.pdf", "nandu-recibo.pdf"),
        ("/..%2F..%2Fetc%2Fpasswd", "passwd.pdf"),
        ("/.oculto.pdf", "oculto.pdf"),
        ("/" + "a" * 150 + ".pdf", "a" * 96 + ".pdf"),
    ],
)
def test_file_name_is_a_safe_version_of_the_last_path_segment(
    http_server: LocalHTTPServer, settings: Any, path: str, file_name: str
) -> None:
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [http_server.host_port]
    http_server.route(path, body=SMALL_PDF)
    pdf = download_pdf(http_server.url(path))
    assert pdf.file_name == file_name
    assert len(pdf.file_name) <= 100
    pdf.discard()


# ---------------------------------------------------------------------------------------------
# Refused URLs and addresses (nothing is connected)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/f.pdf",
        "file:///etc/passwd",
        "gopher://127.0.0.1/f.pdf",
        "javascript:alert(1)",
        "//127.0.0.1/f.pdf",
    ],
)
def test_non_http_schemes_are_refused(url: str, settings: Any, connections: list[tuple[str, int]]) -> None:
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = ["127.0.0.1"]
    error = refused(url)
    assert error.reason == downloads.REASON_SCHEME
    assert connections == []


@pytest.mark.parametrize("userinfo", ["user:secret@", "user@", ":secret@"])
def test_urls_with_user_info_are_refused_even_when_allow_listed(
    http_server: LocalHTTPServer, settings: Any, userinfo: str
) -> None:
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [http_server.host_port]
    http_server.route("/f.pdf", body=SMALL_PDF)
    error = refused(f"http://{userinfo}{http_server.host_port}/f.pdf")
    assert error.reason == downloads.REASON_USERINFO
    assert http_server.requests == []


@pytest.mark.parametrize("url", ["http:///f.pdf", "https://:443/f.pdf"])
def test_urls_without_host_are_refused(url: str) -> None:
    error = refused(url)
    assert error.reason == downloads.REASON_NO_HOST


def test_loopback_server_that_is_not_allow_listed_is_refused(
    http_server: LocalHTTPServer, connections: list[tuple[str, int]]
) -> None:
    http_server.route("/f.pdf", body=SMALL_PDF)
    error = refused(http_server.url("/f.pdf"))
    assert error.reason == downloads.REASON_BLOCKED
    assert http_server.requests == [] and connections == []


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/f.pdf",
        "http://172.16.5.4/f.pdf",
        "http://192.168.1.10/f.pdf",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1/f.pdf",
        "http://127.1/f.pdf",
        "http://2130706433/f.pdf",
        "http://0.0.0.0/f.pdf",
        "http://224.0.0.1/f.pdf",
        "http://240.0.0.1/f.pdf",
        "http://255.255.255.255/f.pdf",
        "http://100.64.0.1/f.pdf",
        "http://[::1]/f.pdf",
        "http://[::]/f.pdf",
        "http://[::ffff:127.0.0.1]/f.pdf",
        "http://[::ffff:10.0.0.1]/f.pdf",
        "http://[fe80::1]/f.pdf",
        "http://[fc00::1]/f.pdf",
        "http://[fec0::1]/f.pdf",
        "http://[ff02::1]/f.pdf",
        "https://10.0.0.1/f.pdf",
        "https://[::1]:8443/f.pdf",
    ],
)
def test_non_public_ip_literals_are_refused(url: str, connections: list[tuple[str, int]]) -> None:
    error = refused(url)
    assert error.reason == downloads.REASON_BLOCKED
    assert str(error) == f"{downloads.REASON_BLOCKED} ({url})"
    assert connections == []


def test_host_name_resolving_to_a_private_address_is_refused_before_connecting(
    fake_dns: FakeDNS, connections: list[tuple[str, int]]
) -> None:
    fake_dns.add("intranet.example", ["10.0.0.5"])
    error = refused("http://intranet.example/f.pdf")
    assert error.reason == downloads.REASON_BLOCKED
    assert connections == []


@pytest.mark.parametrize(
    "addresses",
    [
        [PUBLIC_IP, "10.0.0.8"],
        [PUBLIC_IP, "2606:2800:220:1:248:1893:25c8:1946", "fd00::1"],
        ["2606:2800:220:1:248:1893:25c8:1946", "::ffff:192.168.0.1"],
    ],
)
def test_host_name_with_one_private_address_among_public_ones_is_refused(
    addresses: list[str], fake_dns: FakeDNS, connections: list[tuple[str, int]]
) -> None:
    fake_dns.add("mixed.example", addresses)
    error = refused("https://mixed.example/f.pdf")
    assert error.reason == downloads.REASON_BLOCKED
    assert connections == []


@pytest.mark.parametrize("second_answer", ["10.0.0.7", "127.0.0.1", "fec0::1", "100.64.1.1"])
def test_dns_rebinding_between_check_and_connection_is_refused(
    second_answer: str, fake_dns: FakeDNS, connections: list[tuple[str, int]]
) -> None:
    fake_dns.add("rebind.example", [PUBLIC_IP], [second_answer])
    error = refused("http://rebind.example/f.pdf")
    assert error.reason == downloads.REASON_BLOCKED
    assert fake_dns.lookups == ["rebind.example", "rebind.example"]
    assert connections == []


def test_connection_is_pinned_to_the_checked_public_address(
    fake_dns: FakeDNS, connections: list[tuple[str, int]]
) -> None:
    fake_dns.add("files.example", [PUBLIC_IP])
    error = refused("http://files.example/f.pdf")  # the test network refuses the connection
    assert error.reason == downloads.REASON_CONNECT
    assert connections == [(PUBLIC_IP, 80)]


def test_unresolvable_host_name_is_a_transient_failure(fake_dns: FakeDNS) -> None:
    fake_dns.fail("nowhere.example")
    error = refused("http://nowhere.example/f.pdf")
    assert error.reason == downloads.REASON_DNS


# ---------------------------------------------------------------------------------------------
# Redirects


@pytest.fixture
def allowed_server(http_server: LocalHTTPServer, settings: Any) -> LocalHTTPServer:
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [http_server.host_port]
    return http_server


def test_redirect_to_a_private_address_is_refused(
    allowed_server: LocalHTTPServer, connections: list[tuple[str, int]]
) -> None:
    allowed_server.redirect("/start", "http://10.1.2.3/f.pdf")
    error = refused(allowed_server.url("/start"))
    assert error.reason == downloads.REASON_REDIRECT_PREFIX + downloads.REASON_BLOCKED
    assert error.url == allowed_server.url("/start")
    assert allowed_server.requests == ["/start"]
    assert all(host == "127.0.0.1" for host, _port in connections)


def test_redirect_to_a_loopback_port_that_is_not_allow_listed_is_refused(allowed_server: LocalHTTPServer) -> None:
    with LocalHTTPServer() as other:
        other.route("/f.pdf", body=SMALL_PDF)
        allowed_server.redirect("/start", other.url("/f.pdf"))
        error = refused(allowed_server.url("/start"))
        assert error.reason == downloads.REASON_REDIRECT_PREFIX + downloads.REASON_BLOCKED
        assert other.requests == []


def test_redirect_to_a_host_resolving_to_a_private_address_is_refused(
    allowed_server: LocalHTTPServer, fake_dns: FakeDNS, connections: list[tuple[str, int]]
) -> None:
    fake_dns.add("intranet.example", ["192.168.10.10"])
    allowed_server.redirect("/start", "https://intranet.example/f.pdf", status=301)
    error = refused(allowed_server.url("/start"))
    assert error.reason == downloads.REASON_REDIRECT_PREFIX + downloads.REASON_BLOCKED
    assert all(host == "127.0.0.1" for host, _port in connections)


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("ftp://127.0.0.1/f.pdf", downloads.REASON_SCHEME),
        ("file:///etc/passwd", downloads.REASON_SCHEME),
        ("http://user:pw@127.0.0.1/f.pdf", downloads.REASON_USERINFO),
    ],
)
def test_redirect_to_a_refused_url_is_refused(allowed_server: LocalHTTPServer, location: str, reason: str) -> None:
    allowed_server.redirect("/start", location)
    error = refused(allowed_server.url("/start"))
    assert error.reason == downloads.REASON_REDIRECT_PREFIX + reason


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_within_the_allow_listed_server_are_followed(allowed_server: LocalHTTPServer, status: int) -> None:
    allowed_server.redirect("/start", "/middle", status=status)  # relative
    allowed_server.redirect("/middle", allowed_server.url("/files/f.pdf"), status=status)
    allowed_server.route("/files/f.pdf", body=SMALL_PDF)
    pdf = download_pdf(allowed_server.url("/start"))
    assert pdf.source_url == allowed_server.url("/start")
    assert pdf.sha256 == hashlib.sha256(SMALL_PDF).hexdigest()
    assert pdf.file_name == "start.pdf"
    assert allowed_server.requests == ["/start", "/middle", "/files/f.pdf"]
    pdf.discard()


def _redirect_chain(server: LocalHTTPServer, hops: int) -> None:
    for index in range(hops):
        server.redirect(f"/r{index}", f"/r{index + 1}")
    server.route(f"/r{hops}", body=SMALL_PDF)


def test_five_redirects_are_followed(allowed_server: LocalHTTPServer) -> None:
    _redirect_chain(allowed_server, 5)
    download_pdf(allowed_server.url("/r0")).discard()
    assert len(allowed_server.requests) == 6


def test_six_redirects_are_refused(allowed_server: LocalHTTPServer) -> None:
    _redirect_chain(allowed_server, 6)
    error = refused(allowed_server.url("/r0"))
    assert error.reason == downloads.REASON_TOO_MANY_REDIRECTS
    assert allowed_server.requests == [f"/r{index}" for index in range(6)]


def test_redirect_without_location_is_refused(allowed_server: LocalHTTPServer) -> None:
    allowed_server.route("/start", status=302)
    error = refused(allowed_server.url("/start"))
    assert error.reason == downloads.REASON_BAD_REDIRECT


def test_redirect_body_is_not_read(allowed_server: LocalHTTPServer) -> None:
    # A redirect with a huge, slow body: following it must not wait for (or store) the body.
    allowed_server.route("/start", status=302, body=b"x" * 50_000, chunk_delay=1.0, headers={"Location": "/f.pdf"})
    allowed_server.route("/f.pdf", body=SMALL_PDF)
    started = time.monotonic()
    download_pdf(allowed_server.url("/start")).discard()
    assert time.monotonic() - started < 1.0


# ---------------------------------------------------------------------------------------------
# Answers that are not a PDF


# 206: a partial body is not the whole PDF, even if it starts with %PDF-.
@pytest.mark.parametrize("status", [400, 403, 404, 410, 408, 429, 500, 502, 503, 206])
def test_non_2xx_answers_are_refused(allowed_server: LocalHTTPServer, status: int) -> None:
    allowed_server.route("/f.pdf", status=status, body=SMALL_PDF)
    error = refused(allowed_server.url("/f.pdf"))
    assert error.reason == f"el servidor respondió {status}"


def test_unknown_path_404_html_page_is_refused(allowed_server: LocalHTTPServer) -> None:
    error = refused(allowed_server.url("/missing.pdf"))
    assert error.reason == "el servidor respondió 404"


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/pdf"])
def test_html_page_with_200_is_refused(allowed_server: LocalHTTPServer, content_type: str) -> None:
    allowed_server.route(
        "/f.pdf", body=b"<!DOCTYPE html><html><body>Error</body></html>", headers={"Content-Type": content_type}
    )
    error = refused(allowed_server.url("/f.pdf"))
    assert error.reason == downloads.REASON_NOT_PDF


@pytest.mark.parametrize("body", [b"%PDF", b" %PDF-1.4\n", b"PK\x03\x04zip"])
def test_body_not_starting_with_pdf_signature_is_refused(allowed_server: LocalHTTPServer, body: bytes) -> None:
    allowed_server.route("/f.pdf", body=body, headers={"Content-Type": "application/pdf"})
    error = refused(allowed_server.url("/f.pdf"))
    assert error.reason == downloads.REASON_NOT_PDF


def test_empty_body_is_refused(allowed_server: LocalHTTPServer) -> None:
    allowed_server.route("/f.pdf", body=b"", headers={"Content-Type": "application/pdf"})
    error = refused(allowed_server.url("/f.pdf"))
    assert error.reason == downloads.REASON_EMPTY


# ---------------------------------------------------------------------------------------------
# Size limit


def _big_pdf(size: int) -> bytes:
    return SMALL_PDF + b"%" + b"0" * (size - len(SMALL_PDF) - 1)


def test_body_over_the_limit_is_refused_early_from_content_length(
    allowed_server: LocalHTTPServer, settings: Any, temp_dir: pathlib.Path
) -> None:
    settings.INVOICE_DOWNLOAD_MAX_BYTES = 2000
    # Slow body: refusing from the header must not wait for it.
    allowed_server.route("/f.pdf", body=_big_pdf(5000), chunk_delay=1.0)
    started = time.monotonic()
    error = refused(allowed_server.url("/f.pdf"))
    assert time.monotonic() - started < 1.0
    assert error.reason == "el archivo supera el tamaño máximo de 2000 bytes"
    assert list(temp_dir.iterdir()) == []


def test_body_over_the_limit_without_content_length_is_refused(
    allowed_server: LocalHTTPServer, settings: Any, temp_dir: pathlib.Path
) -> None:
    settings.INVOICE_DOWNLOAD_MAX_BYTES = 2000
    allowed_server.route("/f.pdf", body=_big_pdf(50_000), headers={"Content-Length": None})
    error = refused(allowed_server.url("/f.pdf"))
    assert error.reason == "el archivo supera el tamaño máximo de 2000 bytes"
    assert list(temp_dir.iterdir()) == []


def test_gzip_body_small_compressed_but_over_the_limit_decoded_is_refused(
    allowed_server: LocalHTTPServer, settings: Any, temp_dir: pathlib.Path
) -> None:
    settings.INVOICE_DOWNLOAD_MAX_BYTES = 50_000
    compressed = gzip.compress(_big_pdf(5_000_000))
    assert len(compressed) < 50_000
    allowed_server.route("/f.pdf", body=compressed, headers={"Content-Encoding": "gzip"})
    error = refused(allowed_server.url("/f.pdf"))
    assert error.reason == "el archivo supera el tamaño máximo de 50000 bytes"
    assert list(temp_dir.iterdir()) == []


def test_invalid_gzip_body_is_refused(allowed_server: LocalHTTPServer) -> None:
    allowed_server.route("/f.pdf", body=b"%PDF-not really gzip" * 10, headers={"Content-Encoding": "gzip"})
    error = refused(allowed_server.url("/f.pdf"))
    assert error.reason == downloads.REASON_DECODING


# ---------------------------------------------------------------------------------------------
# Time limits and network failures


@pytest.mark.parametrize("content_length", [True, False])
def test_slow_dripping_body_hits_the_total_deadline(
    allowed_server: LocalHTTPServer, settings: Any, temp_dir: pathlib.Path, content_length: bool
) -> None:
    settings.INVOICE_DOWNLOAD_TIMEOUT = 1.0
    headers = {} if content_length else {"Content-Length": None}
    # 15 chunks of 1 KiB, 0.2 s apart: about 3 s in all, and no single read ever waits long,
    # so only the total deadline can stop it.
    allowed_server.route("/f.pdf", body=_big_pdf(15 * 1024), chunk_delay=0.2, headers=headers)
    started = time.monotonic()
    error = refused(allowed_server.url("/f.pdf"))
    elapsed = time.monotonic() - started
    assert error.reason == downloads.REASON_TIMEOUT
    assert 0.9 <= elapsed < 1.5
    assert list(temp_dir.iterdir()) == []


def test_server_that_never_answers_hits_the_timeout(allowed_server: LocalHTTPServer, settings: Any) -> None:
    settings.INVOICE_DOWNLOAD_TIMEOUT = 1.0
    allowed_server.route("/f.pdf", body=SMALL_PDF, delay=30)
    started = time.monotonic()
    error = refused(allowed_server.url("/f.pdf"))
    assert time.monotonic() - started < 2.0
    assert error.reason == downloads.REASON_TIMEOUT


def test_deadline_covers_all_redirect_hops(allowed_server: LocalHTTPServer, settings: Any) -> None:
    settings.INVOICE_DOWNLOAD_TIMEOUT = 1.0
    for index in range(5):
        allowed_server.route(f"/r{index}", status=302, delay=0.3, headers={"Location": f"/r{index + 1}"})
    allowed_server.route("/r5", body=SMALL_PDF)
    started = time.monotonic()
    error = refused(allowed_server.url("/r0"))
    assert time.monotonic() - started < 2.0
    assert error.reason == downloads.REASON_TIMEOUT


def test_refused_connection_is_a_transient_failure(settings: Any) -> None:
    port = closed_port()
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    error = refused(f"http://127.0.0.1:{port}/f.pdf")
    assert error.reason == downloads.REASON_CONNECT


# ---------------------------------------------------------------------------------------------
# DownloadError


def test_download_error_formats_and_pickles() -> None:
    error = DownloadError("http://x.example/f.pdf", "el archivo no es un PDF")
    assert str(error) == "el archivo no es un PDF (http://x.example/f.pdf)"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.url, copy.reason) == (error.url, error.reason)


def test_only_allowed_hosts_mode_refuses_any_other_host_before_resolving(http_server, settings, monkeypatch):
    http_server.route("/ok.pdf", body=make_pdf("ok"))
    settings.INVOICE_DOWNLOAD_ONLY_ALLOWED_HOSTS = True
    settings.INVOICE_DOWNLOAD_ALLOWED_HOSTS = [http_server.host_port]

    def no_dns(*args, **kwargs):
        raise AssertionError("must not resolve a host that is not allow-listed")

    pdf = download_pdf(http_server.url("/ok.pdf"))
    pdf.discard()
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(DownloadError) as info:
        download_pdf("https://facturas.example.com/F001.pdf")
    assert "lista de servidores" in info.value.reason
