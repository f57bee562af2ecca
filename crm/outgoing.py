"""Outgoing HTTP to the clinic's own services (invoice-mifact-v3, SV): the shared client shape.

`BearerApiClient` owns one `requests.Session` with a default timeout on every call, a small retry
policy for idempotent methods only, and a bearer token obtained with `POST {base}/auth/signin`
(`{"username", "password"}` -> `access_token` | `accessToken` | `token`). The token is reused
until the service answers 401; then exactly one new sign-in is made (however many threads saw
that 401) and the call is repeated once. Every `requests` failure becomes one of the subclass's
error classes, never a raw `requests` exception. (docs/api.md "invoice-mifact" and "SV sync".)
`JsonPoster` is the plain client of the event receivers (docs/api.md "Events"), with the same
timeouts and metrics.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import threading
import time
from typing import Any, ClassVar, Self

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from crm.metrics import outcome_of_status, record_outgoing
from crm.request_ids import outgoing_headers


class ServiceError(Exception):
    """Base error of an outgoing client."""


class ServiceNotConfigured(ServiceError):
    """The service's base URL is not set."""


class ServiceUnavailable(ServiceError):
    """The service could not be reached, timed out, or answered 5xx. `retry_after`: the seconds
    its `Retry-After` header asked to wait (delta-seconds or an HTTP date), else None."""

    def __init__(self, *args: Any, retry_after: float | None = None) -> None:
        super().__init__(*args)
        self.retry_after = retry_after


class _RetryUnlessAskedToWait(Retry):
    """urllib3's retry policy, except that an answer carrying `Retry-After` is not retried: urllib3
    would sleep as long as the header says, without a cap, in the caller's thread. The caller gets
    the answer and decides (the poll pauses for a capped time, billing/backoff.py)."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        return not has_retry_after and super().is_retry(method, status_code, has_retry_after)


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date (RFC 9110); None
    when absent or unreadable (a date in the past: 0)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class ServiceAuthError(ServiceError):
    """Sign-in was refused, gave no token, or a fresh token was refused."""


class ServiceBadResponse(ServiceError):
    """The service answered something that is not the documented JSON, or an unexpected 4xx."""


def token_from(body: Any) -> str | None:
    """The bearer token of a sign-in answer: `access_token`, `accessToken` or `token`
    (also inside a `data` object); None when there is none."""
    if not isinstance(body, dict):
        return None
    for key in ("access_token", "accessToken", "token"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    data = body.get("data")
    return token_from(data) if isinstance(data, dict) else None


def environment_proxies(url: str) -> dict[str, str]:
    """The proxies the environment sets for `url` (none when `NO_PROXY` exempts its host), as
    requests would pick them per call with `trust_env` on."""
    return {scheme: proxy for scheme, proxy in requests.utils.get_environ_proxies(url).items() if scheme != "no"}


class BearerApiClient:
    """A thread-safe client of a JSON API behind `POST /auth/signin` bearer tokens.

    Subclasses set `service_name` (used in Spanish error messages) and the four error classes.
    `timeout` is the read timeout in seconds (connect is capped at 5 s); `pool_size` the
    connections kept per host; `retries` how often an idempotent call (GET, PUT, PATCH with
    `idempotent=True`) is retried on connection errors and 502/503/504.
    """

    service_name: ClassVar[str] = "servicio"
    unavailable_error: ClassVar[type[ServiceUnavailable]] = ServiceUnavailable
    auth_error: ClassVar[type[ServiceError]] = ServiceAuthError
    bad_response_error: ClassVar[type[ServiceError]] = ServiceBadResponse
    # For `from_settings`: the settings that hold the base URL, the credentials and the read
    # timeout; the error raised when they are unusable; the options given to every such client.
    url_setting: ClassVar[str] = ""
    username_setting: ClassVar[str] = ""
    password_setting: ClassVar[str] = ""
    timeout_setting: ClassVar[str] = ""
    not_configured_error: ClassVar[type[ServiceError]] = ServiceNotConfigured
    settings_options: ClassVar[dict[str, Any]] = {}

    @staticmethod
    def configuration_problem() -> str:
        """Why the service cannot be called with the current settings (Spanish), or ""."""
        return ""

    @classmethod
    def from_settings(cls, *, timeout: float | None = None, **options: Any) -> Self:
        """A client built from the settings `url_setting`, `username_setting`, `password_setting`
        and (unless `timeout` is given) `timeout_setting`; raises `not_configured_error` with
        `configuration_problem()` when they are unusable."""
        problem = cls.configuration_problem()
        if problem:
            raise cls.not_configured_error(problem)
        return cls(
            base_url=getattr(settings, cls.url_setting),
            username=getattr(settings, cls.username_setting),
            password=getattr(settings, cls.password_setting),
            timeout=getattr(settings, cls.timeout_setting) if timeout is None else timeout,
            **{**cls.settings_options, **options},
        )

    def __init__(
        self,
        *,
        base_url: str,
        username: str,
        password: str,
        timeout: float = 10.0,
        pool_size: int = 10,
        retries: int = 2,
        retry_methods: frozenset[str] = frozenset({"GET"}),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = (min(5.0, timeout), timeout)
        self._token: str | None = None
        self._token_lock = threading.Lock()
        self.sign_in_count = 0
        self.session = requests.Session()
        # The environment's proxy settings (`HTTPS_PROXY`, `NO_PROXY`, ...) and CA bundle
        # (`REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`) are read once, for the one base URL, instead of on
        # every call: with `trust_env` on, requests re-reads the whole environment (twice) and
        # looks for ~/.netrc per request, about 1.5 ms of CPU each, most of a poll check's own
        # cost. No .netrc: it would replace the bearer token with Basic credentials.
        self.session.trust_env = False
        self.session.proxies.update(environment_proxies(self.base_url))
        if bundle := os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"):
            self.session.verify = bundle
        retry = _RetryUnlessAskedToWait(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=0.2,
            status_forcelist=(502, 503, 504),
            allowed_methods=retry_methods,  # sign-in (POST) is never retried blindly
            raise_on_status=False,
        )
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(1, pool_size), max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return timed_request(
            self.session,
            method,
            f"{self.base_url}{path}",
            service_name=self.service_name,
            unavailable_error=self.unavailable_error,
            timeout=self.timeout,
            **kwargs,
        )

    def sign_in(self) -> str:
        """`POST {base}/auth/signin` with the credentials; returns and keeps the access token.

        Raises the auth error (401/403, or no token), the unavailable error (unreachable,
        timeout, 5xx) or the bad-response error (not JSON, other non-2xx).
        """
        response = self._request("POST", "/auth/signin", json={"username": self.username, "password": self.password})
        self.sign_in_count += 1
        if response.status_code in (401, 403):
            raise self.auth_error(f"{self.service_name} rechazó las credenciales ({response.status_code})")
        if response.status_code >= 500:
            raise self.unavailable_error(f"{self.service_name} respondió {response.status_code} al iniciar sesión")
        if not 200 <= response.status_code < 300:
            raise self.bad_response_error(f"{self.service_name} respondió {response.status_code} al iniciar sesión")
        try:
            token = token_from(response.json())
        except ValueError as exc:
            raise self.bad_response_error("la respuesta de inicio de sesión no es JSON") from exc
        if not token:
            raise self.auth_error(f"{self.service_name} no devolvió un token")
        self._token = token
        return token

    def use_token(self, token: str) -> None:
        """Use `token` for the next calls instead of signing in."""
        with self._token_lock:
            self._token = token

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

    def authorized_request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send `method path` with the bearer token; on 401 sign in once more and repeat once.

        Returns the response whatever its status except 401 (then the auth error) and 5xx (then
        the unavailable error). Network failures raise the unavailable error.
        """
        used = self._current_token()
        response = self._request(method, path, headers={"Authorization": f"Bearer {used}"}, **kwargs)
        if response.status_code == 401:
            used = self._renew_token(used)
            response = self._request(method, path, headers={"Authorization": f"Bearer {used}"}, **kwargs)
            if response.status_code == 401:
                raise self.auth_error(f"{self.service_name} rechazó el token recién obtenido")
        if response.status_code >= 500:
            raise self.unavailable_error(
                f"{self.service_name} respondió {response.status_code}",
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        return response


def timed_request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    service_name: str,
    unavailable_error: type[ServiceError],
    timeout: tuple[float, float],
    **kwargs: Any,
) -> requests.Response:
    """One outgoing call with `timeout` (connect, read), the request id header and the outgoing
    metrics; a network failure or timeout becomes `unavailable_error` (Spanish message)."""
    # Every call carries the request id of the request or command run it works for.
    kwargs["headers"] = {**outgoing_headers(), **kwargs.get("headers", {})}
    started = time.monotonic()
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout as exc:
        record_outgoing(service=service_name, outcome="error", seconds=time.monotonic() - started)
        raise unavailable_error(f"{service_name} no respondió a tiempo ({exc.__class__.__name__})") from exc
    except requests.RequestException as exc:
        record_outgoing(service=service_name, outcome="error", seconds=time.monotonic() - started)
        raise unavailable_error(f"no se pudo conectar con {service_name} ({exc.__class__.__name__})") from exc
    record_outgoing(
        service=service_name, outcome=outcome_of_status(response.status_code), seconds=time.monotonic() - started
    )
    return response


class JsonPoster:
    """Outgoing POSTs of a ready JSON body to URLs given per call (the event receivers): one
    session, a timeout on every call (connect capped at 5 s), no retry here (the caller's outbox
    retries with backoff) and no redirect followed (a receiver that moved must be edited)."""

    def __init__(self, *, service_name: str, timeout: float, pool_size: int = 4) -> None:
        self.service_name = service_name
        self.timeout = (min(5.0, timeout), timeout)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(1, pool_size), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> requests.Response:
        """POST `body` (`Content-Type: application/json`) with `headers`; the answer whatever its
        status. Raises `ServiceUnavailable` when the receiver cannot be reached in time."""
        return timed_request(
            self.session,
            "POST",
            url,
            service_name=self.service_name,
            unavailable_error=ServiceUnavailable,
            timeout=self.timeout,
            data=body,
            headers={"Content-Type": "application/json", **headers},
            allow_redirects=False,
        )
