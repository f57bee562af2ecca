"""Why a service order (O.S) is stuck, in plain Spanish, and who must act (docs/admin.md
"Why an O.S is stuck").

Every failed check records on the row its technical `last_error` (for support) and its
`last_error_kind` (`ServiceOrderErrorKind`), taken from what failed, never from the wording of the
message: `error_kind_for_exception`. `service_order_problem` turns the kind into a `Problem`: what
happened, who must act (the clinic's IT for configuration, credentials or an unreachable or
misbehaving service; billing staff for an O.S invoice-mifact does not know or invoiced without a
comprobante) and what to do. Rows recorded before the kind existed are classified once by
`error_kind_from_text` (billing/migrations/0003), from the messages this code writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import models

from billing.downloads import DownloadError
from billing.mifact import (
    MifactAuthError,
    MifactBadResponse,
    MifactNotConfigured,
    MifactUnavailable,
    MifactUnknownServiceOrder,
)
from billing.models import ServiceOrderErrorKind as Kind

# Recorded when invoice-mifact says "facturado" but gives no comprobante URL.
ERROR_NO_URLS = "facturado sin URLs de comprobante; se reintentará"


class Responsible(models.TextChoices):
    """Who must act on a stuck O.S."""

    IT = "ti", "TI de la clínica"
    BILLING = "facturacion", "Facturación"


@dataclass(frozen=True)
class Problem:
    """A stuck O.S explained to clinic staff: what happened (`summary`), who must act (`actor`)
    and what they should do (`action`)."""

    kind: str
    responsible: Responsible
    summary: str
    action: str

    @property
    def who(self) -> str:
        return str(self.responsible.label)

    @property
    def text(self) -> str:
        """The whole explanation in one line."""
        return f"{self.summary} Debe actuar: {self.who}. {self.action}"


RETRY_NOTE = "El CRM vuelve a consultar cada 5 minutos."

PROBLEMS: dict[str, Problem] = {
    Kind.CONFIGURATION: Problem(
        Kind.CONFIGURATION,
        Responsible.IT,
        "El CRM no tiene configurada la conexión con el sistema de facturación (invoice-mifact).",
        "Configurar en el servidor del CRM la dirección y el usuario de invoice-mifact "
        "(URL_INVOICE_MIFACT_V3, INVOICE_MIFACT_USERNAME, INVOICE_MIFACT_PASSWORD).",
    ),
    Kind.CREDENTIALS: Problem(
        Kind.CREDENTIALS,
        Responsible.IT,
        "El sistema de facturación (invoice-mifact) rechazó el usuario o la clave del CRM.",
        "Revisar el usuario y la clave de invoice-mifact configurados en el CRM.",
    ),
    Kind.UNAVAILABLE: Problem(
        Kind.UNAVAILABLE,
        Responsible.IT,
        "No se pudo comunicar con el sistema de facturación (invoice-mifact): no responde o falló.",
        f"Comprobar que invoice-mifact esté en línea y accesible desde el servidor del CRM. {RETRY_NOTE}",
    ),
    Kind.UNKNOWN_ORDER: Problem(
        Kind.UNKNOWN_ORDER,
        Responsible.BILLING,
        "El sistema de facturación no conoce esta O.S (número inexistente o mal escrito).",
        "Verificar en invoice-mifact el número de la O.S registrada en la venta.",
    ),
    Kind.BAD_RESPONSE: Problem(
        Kind.BAD_RESPONSE,
        Responsible.IT,
        "El sistema de facturación respondió algo que el CRM no puede leer.",
        f"Revisar la respuesta de invoice-mifact para esta O.S (detalle técnico). {RETRY_NOTE}",
    ),
    Kind.NO_COMPROBANTE: Problem(
        Kind.NO_COMPROBANTE,
        Responsible.BILLING,
        "La O.S figura como facturada en invoice-mifact, pero sin comprobante (PDF).",
        f"Revisar en invoice-mifact que el comprobante de la O.S se haya emitido. {RETRY_NOTE}",
    ),
    Kind.DOWNLOAD: Problem(
        Kind.DOWNLOAD,
        Responsible.IT,
        "No se pudo descargar el comprobante (PDF) de la O.S.",
        f"Revisar que el servidor del CRM pueda descargar los comprobantes (red, servidores permitidos). {RETRY_NOTE}",
    ),
    Kind.INTERNAL: Problem(
        Kind.INTERNAL,
        Responsible.IT,
        "Error interno del CRM al procesar la O.S.",
        f"Revisar los registros (logs) del CRM. {RETRY_NOTE}",
    ),
}

# The kinds each actor must act on (for filters and counts).
KINDS_BY_RESPONSIBLE: dict[Responsible, list[str]] = {
    actor: [kind for kind, problem in PROBLEMS.items() if problem.responsible is actor] for actor in Responsible
}


# What a check raised -> its kind; the first match wins.
KIND_BY_EXCEPTION: tuple[tuple[type[BaseException], str], ...] = (
    (MifactNotConfigured, Kind.CONFIGURATION),
    (MifactAuthError, Kind.CREDENTIALS),
    (MifactUnavailable, Kind.UNAVAILABLE),
    (MifactUnknownServiceOrder, Kind.UNKNOWN_ORDER),
    (MifactBadResponse, Kind.BAD_RESPONSE),
    (DownloadError, Kind.DOWNLOAD),
)


def error_kind_for_exception(exc: BaseException) -> str:
    """The `ServiceOrderErrorKind` of what a check raised."""
    return next((kind for cls, kind in KIND_BY_EXCEPTION if isinstance(exc, cls)), Kind.INTERNAL)


_UNAVAILABLE_RE = re.compile(r"no respondió a tiempo|no se pudo conectar|respondió 5\d\d")
_UNKNOWN_ORDER_RE = re.compile(r"respondió 404 para la o\.s")


def error_kind_from_text(text: str) -> str:
    """The kind of a `last_error` recorded without one (before billing/migrations/0003), from the
    messages the checks write; "" for no error."""
    lowered = text.strip().lower()
    if not lowered:
        return ""
    if "no está configurad" in lowered or "faltan las credenciales" in lowered:
        return Kind.CONFIGURATION
    if "rechazó las credenciales" in lowered or "no devolvió un token" in lowered or "rechazó el token" in lowered:
        return Kind.CREDENTIALS
    if _UNAVAILABLE_RE.search(lowered):
        return Kind.UNAVAILABLE
    if _UNKNOWN_ORDER_RE.search(lowered):
        return Kind.UNKNOWN_ORDER
    if lowered.startswith("invoice-mifact:"):
        return Kind.BAD_RESPONSE
    if lowered.startswith(ERROR_NO_URLS.lower()[:20]):
        return Kind.NO_COMPROBANTE
    if lowered.startswith("descarga fallida"):
        return Kind.DOWNLOAD
    return Kind.INTERNAL


def service_order_problem(*, last_error: str, kind: str = "") -> Problem | None:
    """What is wrong with an O.S whose last check recorded `last_error` (and `kind`), or None
    when its last check went fine. A kind this code does not know reads as an internal error."""
    if not last_error:
        return None
    kind = kind or error_kind_from_text(last_error)
    return PROBLEMS.get(kind, PROBLEMS[Kind.INTERNAL])
