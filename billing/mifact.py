"""Client of the invoicing service invoice-mifact-v3 (source document section 6; CONTRACT.md 7).

`MifactClient.sign_in()` is the backend's `getTokenInvoiceMifact()` and
`MifactClient.get_invoice_status(id)` its `getInvoiceStatusByServiceOrderId(id)`. The client
owns one `requests.Session` (connection pool sized for the poller's workers) with timeouts on
every call and a small retry policy for the idempotent status call only. A token is reused until
the service answers 401; then exactly one new sign-in is made (however many threads saw the 401)
and the call is repeated once. Every `requests` failure is translated into a `MifactError`.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry


class MifactError(Exception):
    """Base error of the invoice-mifact client. `permanent` is True when retrying cannot help."""

    permanent = False


class MifactNotConfigured(MifactError):
    """`URL_INVOICE_MIFACT_V3` (or the credentials) are not set."""

    permanent = True


class MifactUnavailable(MifactError):
    """The service could not be reached, timed out, or answered 5xx."""


class MifactAuthError(MifactError):
    """Sign-in was refused, returned no token, or the token was refused right after sign-in."""


class MifactBadResponse(MifactError):
    """The service answered something that is not the documented JSON (or an unexpected 4xx)."""


@dataclass(frozen=True)
class InvoiceStatus:
    """The invoice status of one service order (source document section 6.2).

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


def _token_from(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    for key in ("access_token", "accessToken", "token"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    data = body.get("data")
    if isinstance(data, dict) and data is not body:
        return _token_from(data)
    return None


def _optional_url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MifactBadResponse(f"URL de comprobante inválida: {value!r}")
    return value


def parse_invoice_status(service_order_id: int, body: Any) -> InvoiceStatus:
    """Turn the JSON of `GET /service-order/<id>/invoice-status` into an `InvoiceStatus`.

    Raises `MifactBadResponse` when `body` is not an object with a boolean `facturado`, or when
    `urls` / `invoice_result_head_id` have the wrong types.
    """
    if not isinstance(body, dict) or not isinstance(body.get("facturado"), bool):
        raise MifactBadResponse("respuesta sin campo booleano 'facturado'")
    if not body["facturado"]:
        return InvoiceStatus(service_order_id=service_order_id, facturado=False)
    urls = body.get("urls") or {}
    if not isinstance(urls, dict):
        raise MifactBadResponse("'urls' no es un objeto")
    head_id = body.get("invoice_result_head_id")
    if head_id is not None and (isinstance(head_id, bool) or not isinstance(head_id, int)):
        raise MifactBadResponse("'invoice_result_head_id' no es un entero")
    return InvoiceStatus(
        service_order_id=service_order_id,
        facturado=True,
        invoice_result_head_id=head_id,
        url_soles=_optional_url(urls.get("soles")),
        url_dolares=_optional_url(urls.get("dolares")),
    )


class MifactClient:
    """invoice-mifact-v3 client; thread-safe (one instance is shared by the poller's workers).

    `base_url` like ``http://localhost:5111/api``; `timeout` in seconds (read), connect capped at
    5 s; `pool_size` connections kept per host.
    """

    def __init__(
        self,
        *,
        base_url: str,
        username: str,
        password: str,
        timeout: float = 10.0,
        pool_size: int = 10,
        status_retries: int = 2,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = (min(5.0, timeout), timeout)
        self._token: str | None = None
        self._token_lock = threading.Lock()
        self.sign_in_count = 0
        self.session = requests.Session()
        retry = Retry(
            total=status_retries,
            connect=status_retries,
            read=status_retries,
            status=status_retries,
            backoff_factor=0.2,
            status_forcelist=(502, 503, 504),
            allowed_methods=frozenset({"GET"}),  # sign-in (POST) is never retried blindly
            raise_on_status=False,
        )
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(1, pool_size), max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    @classmethod
    def from_settings(cls, *, pool_size: int = 10) -> "MifactClient":
        """Build from `URL_INVOICE_MIFACT_V3` and the `INVOICE_MIFACT_*` (or `*_ADMIN`) credentials.

        Raises `MifactNotConfigured` when the URL is unset.
        """
        if not settings.URL_INVOICE_MIFACT_V3:
            raise MifactNotConfigured("URL_INVOICE_MIFACT_V3 no está configurada")
        return cls(
            base_url=settings.URL_INVOICE_MIFACT_V3,
            username=settings.INVOICE_MIFACT_USERNAME,
            password=settings.INVOICE_MIFACT_PASSWORD,
            timeout=settings.INVOICE_MIFACT_TIMEOUT,
            pool_size=pool_size,
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, f"{self.base_url}{path}", timeout=self.timeout, **kwargs)
        except requests.Timeout as exc:
            raise MifactUnavailable(f"invoice-mifact no respondió a tiempo ({exc.__class__.__name__})") from exc
        except requests.RequestException as exc:
            raise MifactUnavailable(f"no se pudo conectar con invoice-mifact ({exc.__class__.__name__})") from exc

    def sign_in(self) -> str:
        """`POST {base}/auth/signin` with the credentials; returns and keeps the access token.

        Raises `MifactAuthError` (401/403 or no token in the answer), `MifactUnavailable`
        (unreachable, timeout, 5xx), `MifactBadResponse` (not JSON, other 4xx).
        """
        response = self._request("POST", "/auth/signin", json={"username": self.username, "password": self.password})
        self.sign_in_count += 1
        if response.status_code in (401, 403):
            raise MifactAuthError(f"invoice-mifact rechazó las credenciales ({response.status_code})")
        if response.status_code >= 500:
            raise MifactUnavailable(f"invoice-mifact respondió {response.status_code} al iniciar sesión")
        if not 200 <= response.status_code < 300:
            raise MifactBadResponse(f"invoice-mifact respondió {response.status_code} al iniciar sesión")
        try:
            token = _token_from(response.json())
        except ValueError as exc:
            raise MifactBadResponse("la respuesta de inicio de sesión no es JSON") from exc
        if not token:
            raise MifactAuthError("invoice-mifact no devolvió un token")
        self._token = token
        return token

    def _current_token(self) -> str:
        with self._token_lock:
            if self._token is None:
                self.sign_in()
            assert self._token is not None
            return self._token

    def _renew_token(self, rejected: str) -> str:
        # Many workers may see the same 401 at once: only the first one signs in again.
        with self._token_lock:
            if self._token == rejected or self._token is None:
                self._token = None
                self.sign_in()
            assert self._token is not None
            return self._token

    def get_invoice_status(self, service_order_id: int, token: str | None = None) -> InvoiceStatus:
        """`GET {base}/service-order/<id>/invoice-status` with the bearer token.

        Signs in first when no token is held (or `token` is not given). On 401 signs in once
        more and repeats the call once. Raises `MifactAuthError`, `MifactUnavailable` (network,
        timeout, 5xx after retries), `MifactBadResponse` (not the documented JSON, other 4xx).
        """
        if token is not None:
            with self._token_lock:
                self._token = token
        used = self._current_token()
        response = self._status_call(service_order_id, used)
        if response.status_code == 401:
            used = self._renew_token(used)
            response = self._status_call(service_order_id, used)
            if response.status_code == 401:
                raise MifactAuthError("invoice-mifact rechazó el token recién obtenido")
        if response.status_code >= 500:
            raise MifactUnavailable(f"invoice-mifact respondió {response.status_code}")
        if not 200 <= response.status_code < 300:
            raise MifactBadResponse(f"invoice-mifact respondió {response.status_code} para la O.S {service_order_id}")
        try:
            body = response.json()
        except ValueError as exc:
            raise MifactBadResponse("la respuesta de invoice-status no es JSON") from exc
        return parse_invoice_status(service_order_id, body)

    def _status_call(self, service_order_id: int, token: str) -> requests.Response:
        return self._request(
            "GET",
            f"/service-order/{int(service_order_id)}/invoice-status",
            headers={"Authorization": f"Bearer {token}"},
        )
