"""`download_pdf`: fetch one comprobante into a temporary file, all checks applied."""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import re
import socket
import time
import unicodedata
from typing import IO
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3.exceptions
from django.conf import settings

from crm.metrics import record_outgoing

from .errors import (
    POLICY_REASONS,
    REASON_BAD_REDIRECT,
    REASON_CONNECT,
    REASON_DECODING,
    REASON_DNS,
    REASON_EMPTY,
    REASON_INTERRUPTED,
    REASON_INVALID_URL,
    REASON_NOT_PDF,
    REASON_REDIRECT_PREFIX,
    REASON_STATUS,
    REASON_STORAGE,
    REASON_TIMEOUT,
    REASON_TLS,
    REASON_TOO_LARGE,
    REASON_TOO_MANY_REDIRECTS,
    REASON_UNEXPECTED,
    DownloadedPdf,
    DownloadError,
)
from .policy import allowed_host_ports, check_url
from .transport import Deadline, DownloadSession
from .workdir import download_file_create

logger = logging.getLogger(__name__)

#: Redirect hops followed after the first request; one more redirect is refused.
MAX_REDIRECTS = 5
#: Bytes asked from the (decoded) body stream at a time.
CHUNK_SIZE = 16 * 1024
PDF_MAGIC = b"%PDF-"
DEFAULT_FILE_NAME = "comprobante.pdf"
MAX_FILE_NAME_LENGTH = 100
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


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


def _open_final_response(session: DownloadSession, url: str, deadline: Deadline) -> requests.Response:
    """GET ``url`` following at most MAX_REDIRECTS redirects; return the 2xx streamed response.

    Errors name the hop that failed; download_pdf() re-labels them with the source URL.
    """
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        try:
            check_url(current)
            response = session.get(
                current, stream=True, allow_redirects=False, timeout=deadline.request_timeout(current)
            )
        except DownloadError as exc:
            if hop and exc.reason in POLICY_REASONS:
                raise DownloadError(url, REASON_REDIRECT_PREFIX + exc.reason) from exc
            raise
        status = response.status_code
        if status in _REDIRECT_STATUSES:
            location = (response.headers.get("Location") or "").strip()
            response.close()  # without reading the body
            if not location:
                raise DownloadError(url, REASON_BAD_REDIRECT)
            if hop == MAX_REDIRECTS:
                raise DownloadError(url, REASON_TOO_MANY_REDIRECTS)
            try:
                current = urljoin(current, location)
            except ValueError as exc:
                raise DownloadError(url, REASON_REDIRECT_PREFIX + REASON_INVALID_URL) from exc
            continue
        if status not in (200, 203):  # 204, 206 (a partial body), ... are not a whole PDF
            response.close()
            raise DownloadError(url, REASON_STATUS.format(status=status))
        return response
    raise AssertionError("unreachable")  # pragma: no cover


def _stream_body(
    response: requests.Response, out: IO[bytes], url: str, deadline: Deadline, max_bytes: int
) -> tuple[int, str]:
    """Write the decoded body to ``out``; return ``(size, sha256 hex)``."""
    too_large = DownloadError(url, REASON_TOO_LARGE.format(max_bytes=max_bytes))
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
                raise DownloadError(url, REASON_NOT_PDF)
        try:
            out.write(chunk)
        except OSError as exc:
            raise DownloadError(url, REASON_STORAGE) from exc
        digest.update(chunk)
    # The watchdog may have cut the stream short: a body that "ended" then is not complete.
    deadline.check(url)
    if size == 0:
        raise DownloadError(url, REASON_EMPTY)
    if head != PDF_MAGIC:
        raise DownloadError(url, REASON_NOT_PDF)
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
        return DownloadError(url, REASON_TIMEOUT)
    if isinstance(exc, DownloadError):
        if exc.url == url:
            return exc
        return DownloadError(url, exc.reason)
    # Not urllib3.exceptions.TimeoutError: NewConnectionError ("connection refused") is one.
    if isinstance(exc, requests.Timeout) or _caused_by(exc, (socket.timeout, urllib3.exceptions.ReadTimeoutError)):
        return DownloadError(url, REASON_TIMEOUT)
    if isinstance(exc, requests.exceptions.SSLError):
        return DownloadError(url, REASON_TLS)
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return DownloadError(url, REASON_DECODING)
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError)):
        return DownloadError(url, REASON_INTERRUPTED)
    if isinstance(
        exc,
        (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.URLRequired,
            urllib3.exceptions.LocationValueError,
        ),
    ):
        return DownloadError(url, REASON_INVALID_URL)
    if isinstance(exc, requests.ConnectionError):
        if _caused_by(exc, (socket.gaierror, urllib3.exceptions.NameResolutionError)):
            return DownloadError(url, REASON_DNS)
        return DownloadError(url, REASON_CONNECT)
    if isinstance(exc, (requests.RequestException, urllib3.exceptions.HTTPError, OSError)):
        return DownloadError(url, REASON_CONNECT)
    logger.exception("Unexpected error downloading an invoice PDF")
    return DownloadError(url, REASON_UNEXPECTED)


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
    """Download the PDF at ``url`` into a temporary file (docs/api.md "Downloading comprobantes").

    Args:
        url: an ``http``/``https`` URL, as given by the user or by invoice-mifact.

    Returns:
        A :class:`DownloadedPdf` whose ``path`` is a locked file in the download folder
        (``INVOICE_DOWNLOAD_DIR``, never inside ``MEDIA_ROOT``) that the caller must store and
        :meth:`~DownloadedPdf.discard`.

    Raises:
        DownloadError: for every failure (refused URL or address, redirects, timeouts, network
            errors, non-2xx answers, empty/non-PDF/too large bodies). No temporary file is left
            behind.

    Settings (read at each call): ``INVOICE_DOWNLOAD_ALLOWED_HOSTS``, ``URL_INVOICE_MIFACT_V3``,
    ``INVOICE_DOWNLOAD_MAX_BYTES`` (bytes, after content decoding) and
    ``INVOICE_DOWNLOAD_TIMEOUT`` (seconds for the whole download: every hop and the body).
    Each request also gets a connect timeout of min(5 s, time left) and a read timeout of
    min(10 s, time left).
    """
    url = str(url)
    deadline: Deadline | None = None
    tmp_path: pathlib.Path | None = None
    lock_fd = -1
    started = time.monotonic()
    outcome = "error"
    try:
        check_url(url)
        max_bytes = int(settings.INVOICE_DOWNLOAD_MAX_BYTES)
        allowed = allowed_host_ports()
        file_name = _safe_file_name(url)
        deadline = Deadline(float(settings.INVOICE_DOWNLOAD_TIMEOUT))
        with DownloadSession(allowed=allowed, deadline=deadline) as session:
            response = _open_final_response(session, url, deadline)
            with response:
                try:
                    tmp_path, lock_fd = download_file_create()
                    out = os.fdopen(os.dup(lock_fd), "wb")
                except OSError as exc:
                    raise DownloadError(url, REASON_STORAGE) from exc
                with out:
                    size, sha256 = _stream_body(response, out, url, deadline, max_bytes)
        deadline.check(url)
        outcome = "ok"
        return DownloadedPdf(
            source_url=url,
            path=tmp_path,
            size=size,
            sha256=sha256,
            content_type="application/pdf",
            file_name=file_name,
            lock_fd=lock_fd,
        )
    except BaseException as exc:
        _remove_quietly(tmp_path)
        if lock_fd >= 0:
            os.close(lock_fd)
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit...
        error = _as_download_error(exc, url, expired=deadline is not None and deadline.expired)
        if error is exc:
            raise
        raise error from exc
    finally:
        if deadline is not None:
            deadline.cancel()
        record_outgoing(service="pdf", outcome=outcome, seconds=time.monotonic() - started)
