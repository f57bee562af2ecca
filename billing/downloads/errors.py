"""What a download can fail with (Spanish reasons, safe to show to API users) and what it
yields."""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass

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
REASON_STORAGE = "no se pudo guardar el archivo descargado"
REASON_UNEXPECTED = "error inesperado al descargar el archivo"
# Reasons that refuse a URL or an address (a redirect hop refused for one is named as such).
POLICY_REASONS = frozenset(
    {REASON_SCHEME, REASON_USERINFO, REASON_NO_HOST, REASON_INVALID_URL, REASON_HOST_NOT_ALLOWED, REASON_BLOCKED}
)


class DownloadError(Exception):
    """Raised by :func:`~billing.downloads.download_pdf` when a URL cannot be fetched as a PDF.

    Attributes:
        url: the URL that was asked for (also when a later redirect hop failed).
        reason: short Spanish explanation, safe to show to API users, e.g.
            ``"la dirección apunta a una red privada o reservada"``.

    ``str(exc)`` is ``f"{reason} ({url})"``.
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url, reason)
        self.url = url
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.reason} ({self.url})"


@dataclass
class DownloadedPdf:
    """A PDF fetched by :func:`~billing.downloads.download_pdf`.

    Attributes:
        source_url: the URL asked for (not the final URL after redirects).
        path: a file in the download folder (``INVOICE_DOWNLOAD_DIR``, never ``MEDIA_ROOT``),
            named ``crm-invoice-*.pdf`` and locked by this process until :meth:`discard`. The
            caller owns it: store a copy (``billing.comprobantes``) and call :meth:`discard`.
        size: bytes written, after content decoding.
        sha256: lower-case hex SHA-256 digest of the bytes written.
        content_type: always ``"application/pdf"``.
        file_name: safe file name from the source URL's last path segment (only
            ``[A-Za-z0-9._-]``, at most 100 characters, ends with ``.pdf``; fallback
            ``"comprobante.pdf"``).
        lock_fd: the descriptor holding the file's lock (-1 once discarded).
    """

    source_url: str
    path: pathlib.Path
    size: int
    sha256: str
    content_type: str
    file_name: str
    lock_fd: int = -1

    def discard(self) -> None:
        """Delete the file and release its lock; does nothing if already discarded."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        if self.lock_fd >= 0:
            fd, self.lock_fd = self.lock_fd, -1
            os.close(fd)
