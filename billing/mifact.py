"""Client of the invoicing service invoice-mifact-v3 (docs/api.md "invoice-mifact").

`MifactClient.sign_in()` is the backend's `getTokenInvoiceMifact()` and
`MifactClient.get_invoice_status(id)` its `getInvoiceStatusByServiceOrderId(id)`. The client
(`crm.outgoing.BearerApiClient`) owns one `requests.Session` (connection pool sized for the
poller's workers) with timeouts on every call and a small retry policy for the idempotent status
call only. A token is reused until the service answers 401; then exactly one new sign-in is made
(however many threads saw the 401) and the call is repeated once. Every `requests` failure is
translated into a `MifactError`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from crm.outgoing import (
    BearerApiClient,
    ServiceAuthError,
    ServiceBadResponse,
    ServiceError,
    ServiceNotConfigured,
    ServiceUnavailable,
    retry_after_seconds,
)


class MifactError(ServiceError):
    """Base error of the invoice-mifact client."""


class MifactNotConfigured(MifactError, ServiceNotConfigured):
    """`URL_INVOICE_MIFACT_V3` is not set."""


class MifactUnavailable(MifactError, ServiceUnavailable):
    """The service could not be reached, timed out, or answered 5xx."""


class MifactAuthError(MifactError, ServiceAuthError):
    """Sign-in was refused, returned no token, or the token was refused right after sign-in."""


class MifactBadResponse(MifactError, ServiceBadResponse):
    """The service answered something that is not the documented JSON (or an unexpected 4xx)."""


class MifactRefusedServiceOrder(MifactBadResponse):
    """invoice-mifact answered a 4xx other than 401 and 429 about an O.S: the poll backs off on
    that O.S (billing/backoff.py)."""


class MifactUnknownServiceOrder(MifactRefusedServiceOrder):
    """invoice-mifact answered 404 for an O.S: it does not know that id."""


class MifactThrottled(MifactUnavailable):
    """invoice-mifact answered 429 (too many requests): the poll pauses (billing/backoff.py)."""


@dataclass(frozen=True)
class InvoiceStatus:
    """The invoice status of one service order (docs/api.md "invoice-mifact").

    `facturado` False: nothing else is set. True: `invoice_result_head_id` (int or None) and the
    comprobante URLs that exist (`url_soles`, `url_dolares`, each str or None).
    """

    service_order_id: int
    facturado: bool
    invoice_result_head_id: int | None = None
    url_soles: str | None = None
    url_dolares: str | None = None

    @property
    def urls(self) -> dict[str, str]:
        """Comprobante URLs by attachment kind (`comprobante_soles`, `comprobante_dolares`)."""
        found = {"comprobante_soles": self.url_soles, "comprobante_dolares": self.url_dolares}
        return {kind: url for kind, url in found.items() if url}


MAX_INT32 = 2**31 - 1
MAX_URL_LENGTH = 2000


def _optional_url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if (
        not isinstance(value, str)
        or len(value) > MAX_URL_LENGTH
        or urlsplit(value).scheme.lower() not in ("http", "https")
        or any(ch.isspace() or ch == "\x00" for ch in value)
    ):
        raise MifactBadResponse(f"URL de comprobante inválida: {str(value)[:80]!r}")
    return value


def parse_invoice_status(service_order_id: int, body: Any) -> InvoiceStatus:
    """Turn the JSON of `GET /service-order/<id>/invoice-status` into an `InvoiceStatus`.

    Raises `MifactBadResponse` when `body` is not an object with a boolean `facturado`, when
    `urls` is not an object of http(s) URLs (at most 2000 characters, no blanks or NUL), or when
    `invoice_result_head_id` is not an integer in 1..2^31-1 (what the table can hold).
    """
    if not isinstance(body, dict) or not isinstance(body.get("facturado"), bool):
        raise MifactBadResponse("respuesta sin campo booleano 'facturado'")
    if not body["facturado"]:
        return InvoiceStatus(service_order_id=service_order_id, facturado=False)
    urls = body.get("urls") or {}
    if not isinstance(urls, dict):
        raise MifactBadResponse("'urls' no es un objeto")
    head_id = body.get("invoice_result_head_id")
    if head_id is not None and (
        isinstance(head_id, bool) or not isinstance(head_id, int) or not 1 <= head_id <= MAX_INT32
    ):
        raise MifactBadResponse("'invoice_result_head_id' no es un entero positivo de 32 bits")
    return InvoiceStatus(
        service_order_id=service_order_id,
        facturado=True,
        invoice_result_head_id=head_id,
        url_soles=_optional_url(urls.get("soles")),
        url_dolares=_optional_url(urls.get("dolares")),
    )


def mifact_configuration_problem() -> str:
    """Why invoice-mifact cannot be called with the current settings (Spanish), or "" when it can:
    the URL unset, or no username/password (`INVOICE_MIFACT_*`, falling back to `*_ADMIN`)."""
    if not settings.URL_INVOICE_MIFACT_V3:
        return "URL_INVOICE_MIFACT_V3 no está configurada"
    if not (settings.INVOICE_MIFACT_USERNAME and settings.INVOICE_MIFACT_PASSWORD):
        return (
            "faltan las credenciales de invoice-mifact: configure INVOICE_MIFACT_USERNAME e "
            "INVOICE_MIFACT_PASSWORD (o USERNAME_ADMIN y PASSWORD_ADMIN)"
        )
    return ""


class MifactClient(BearerApiClient):
    """invoice-mifact-v3 client; thread-safe (one instance is shared by the poller's workers).

    `base_url` like ``http://localhost:5111/api``; `timeout` in seconds (read), connect capped at
    5 s; `pool_size` connections kept per host; `retries` retries of the status call on
    connection errors and 502/503/504. Sign-in, token reuse and the single re-sign-in on 401 come
    from `crm.outgoing.BearerApiClient`; `from_settings` reads `URL_INVOICE_MIFACT_V3` and the
    `INVOICE_MIFACT_*` (or `*_ADMIN`) credentials, or raises `MifactNotConfigured`.
    """

    service_name = "invoice-mifact"
    unavailable_error = MifactUnavailable
    auth_error = MifactAuthError
    bad_response_error = MifactBadResponse

    url_setting = "URL_INVOICE_MIFACT_V3"
    username_setting = "INVOICE_MIFACT_USERNAME"
    password_setting = "INVOICE_MIFACT_PASSWORD"
    timeout_setting = "INVOICE_MIFACT_TIMEOUT"
    not_configured_error = MifactNotConfigured
    configuration_problem = staticmethod(mifact_configuration_problem)

    def get_invoice_status(self, service_order_id: int, token: str | None = None) -> InvoiceStatus:
        """`GET {base}/service-order/<id>/invoice-status` with the bearer token (source doc 6.2).

        This is the backend's `getInvoiceStatusByServiceOrderId(serviceOrderId, token?)`: without
        `token` the client signs in first (or reuses its token). Raises `MifactAuthError`,
        `MifactUnavailable` (network, timeout, 5xx after retries), `MifactBadResponse` (not the
        documented JSON; `MifactRefusedServiceOrder` for a 4xx, `MifactUnknownServiceOrder` for a
        404), `MifactThrottled` for a 429 (with its `Retry-After`).
        """
        if token is not None:
            self.use_token(token)
        response = self.authorized_request("GET", f"/service-order/{int(service_order_id)}/invoice-status")
        code = response.status_code
        if code == 429:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            raise MifactThrottled(f"invoice-mifact respondió {code} (demasiadas consultas)", retry_after=retry_after)
        if not 200 <= code < 300:
            error = MifactUnknownServiceOrder if code == 404 else MifactBadResponse
            error = MifactRefusedServiceOrder if 400 <= code < 500 and error is MifactBadResponse else error
            raise error(f"invoice-mifact respondió {code} para la O.S {service_order_id}")
        try:
            body = response.json()
        except ValueError as exc:
            raise MifactBadResponse("la respuesta de invoice-status no es JSON") from exc
        return parse_invoice_status(service_order_id, body)


_client_lock = threading.Lock()
_shared_client: MifactClient | None = None
_shared_client_key: tuple[str, str, str, float] | None = None


def shared_mifact_client() -> MifactClient | None:
    """The process-wide client used by the PUT endpoint and the admin (token reused across
    requests), with the short `INVOICE_MIFACT_INLINE_TIMEOUT` and no retries: a user is waiting.

    None when `URL_INVOICE_MIFACT_V3` is unset. Rebuilt when its settings change.
    """
    global _shared_client, _shared_client_key
    key = (
        settings.URL_INVOICE_MIFACT_V3,
        settings.INVOICE_MIFACT_USERNAME,
        settings.INVOICE_MIFACT_PASSWORD,
        settings.INVOICE_MIFACT_INLINE_TIMEOUT,
    )
    with _client_lock:
        if mifact_configuration_problem():
            return None
        if _shared_client is None or _shared_client_key != key:
            if _shared_client is not None:
                _shared_client.close()
            _shared_client = MifactClient.from_settings(timeout=settings.INVOICE_MIFACT_INLINE_TIMEOUT, retries=0)
            _shared_client_key = key
        return _shared_client


def reset_shared_mifact_client() -> None:
    """Forget the shared client (and its token); the next use builds a new one."""
    global _shared_client, _shared_client_key
    with _client_lock:
        if _shared_client is not None:
            _shared_client.close()
        _shared_client, _shared_client_key = None, None
