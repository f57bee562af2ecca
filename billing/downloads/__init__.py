"""Download invoice PDFs from untrusted URLs (docs/api.md "Downloading comprobantes").

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
* the body is streamed to a locked file in the download folder (``INVOICE_DOWNLOAD_DIR``, outside
  ``MEDIA_ROOT``) and refused past ``settings.INVOICE_DOWNLOAD_MAX_BYTES`` bytes (counted after
  content decoding); it must start with ``%PDF-`` whatever ``Content-Type`` says; empty bodies
  and non-2xx answers are refused.

Every failure raises :class:`DownloadError` (never a ``requests`` or socket exception) and leaves
no download behind. Settings are read at call time.

requests-hardened pins each connection to the address it checked; this package adds what it does
not do: a strict check of every resolved address, the allow-list, a redirect loop that checks
each hop, a total deadline (a watchdog that shuts the sockets down: per-read timeouts cannot stop
a server that sends one byte just before each one), the size cap and the PDF check.

Modules: ``errors`` (reasons, :class:`DownloadError`, :class:`DownloadedPdf`), ``policy`` (which
URLs and addresses may be fetched), ``transport`` (the deadline and the guarded session),
``fetch`` (:func:`download_pdf`), ``workdir`` (the download folder and its sweep).
"""

from .errors import DownloadedPdf, DownloadError
from .fetch import download_pdf
from .workdir import TEMP_FILE_PREFIX, download_dir_sweep

__all__ = ["TEMP_FILE_PREFIX", "DownloadError", "DownloadedPdf", "download_dir_sweep", "download_pdf"]
