"""The invoice-mifact stand-in with faults to switch on, for the fault-injection suite (`faults/`;
docs/development.md "Fault-injection suite"). Local use only, like `devtools.mifact_standin`.

`python -m devtools.mifact_faults` takes the same options as `python -m devtools.mifact_standin`
and serves the same endpoints, plus two control calls (no authentication):

``POST /api/_standin/faults``
    Body ``{"mode": str | null, "hangSeconds": float, "latencySeconds": float}``; every key is
    optional. `mode` makes every invoice-status call misbehave until it is set to null:
    ``html`` (200 with an HTML page), ``truncated_json`` (200 with JSON cut short), ``error_500``,
    ``unauthorized`` (401 although sign-in works: "401 after sign-in") or ``hang`` (answers only
    after `hangSeconds`, 30 by default: beyond the client's timeout). `latencySeconds` sets the
    stand-in's latency per status call. Answers 200 with the faults now in force.
``POST /api/_standin/service-order/<id>/urls``
    Body ``{"soles": url, "dolares": url}`` (either may be omitted): the comprobante URLs the O.S
    reports once invoiced, instead of the stand-in's own files (e.g. a local server that answers
    404, HTML, or a body cut short). An empty body goes back to the stand-in's own files.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from devtools.mifact_standin import CURRENCIES, MifactStandin, main
from devtools.standin_http import HttpError, allow_method, json_object, positive_int

__all__ = ["MODES", "FaultyMifactStandin"]

#: The ways an invoice-status call can misbehave (`mode`).
MODES = ("html", "truncated_json", "error_500", "unauthorized", "hang")
DEFAULT_HANG_SECONDS = 30.0
_FAULTS_PATH = "/_standin/faults"
_URLS_RE = re.compile(r"^/_standin/service-order/(\d{1,10})/urls$")
_HTML_PAGE = b"<!DOCTYPE html><html><head><title>Mantenimiento</title></head><body>En mantenimiento</body></html>"
_TRUNCATED_JSON = b'{"facturado": true, "urls": {"soles": "http://127.0.0.1/api/files/os-'


class FaultyMifactStandin(MifactStandin):
    """`MifactStandin` whose status calls can misbehave and whose comprobante URLs can point anywhere."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mode: str | None = None
        self.hang_seconds = DEFAULT_HANG_SECONDS
        self._urls: dict[int, dict[str, str]] = {}

    def set_faults(self, data: dict[str, Any]) -> dict[str, Any]:
        """Apply a `/_standin/faults` body (see the module docstring); ValueError when it is invalid."""
        if "mode" in data:
            if data["mode"] is not None and data["mode"] not in MODES:
                raise ValueError(f"mode must be null or one of {', '.join(MODES)}")
            self.mode = data["mode"]
        for key, attribute in (("hangSeconds", "hang_seconds"), ("latencySeconds", "latency")):
            if key in data:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 600:
                    raise ValueError(f"{key} must be a number of seconds between 0 and 600")
                setattr(self, attribute, float(value))
        return {"mode": self.mode, "hangSeconds": self.hang_seconds, "latencySeconds": self.latency}

    def set_urls(self, service_order_id: int, urls: dict[str, Any]) -> None:
        unknown = set(urls) - set(CURRENCIES)
        if unknown or not all(isinstance(url, str) and url for url in urls.values()):
            raise ValueError("the body maps 'soles' and/or 'dolares' to URLs")
        with self._lock:
            if urls:
                self._urls[service_order_id] = dict(urls)
            else:
                self._urls.pop(service_order_id, None)

    def status_body(self, service_order_id: int) -> dict[str, Any]:
        body = super().status_body(service_order_id)
        with self._lock:
            custom = self._urls.get(int(service_order_id))
        if custom and body.get("facturado"):
            body["urls"] = {currency: custom.get(currency, url) for currency, url in body["urls"].items()}
        return body

    def handle_request(self, method: str, path: str, body: bytes, authorization: str) -> tuple[int, Any, str]:
        try:
            if path == _FAULTS_PATH:
                allow_method(method, "POST")
                return 200, self.set_faults(json_object(body, required=True)), "application/json"
            if match := _URLS_RE.match(path):
                allow_method(method, "POST")
                service_order_id = positive_int(int(match.group(1)), "service_order_id")
                self.set_urls(service_order_id, json_object(body, required=False))
                return 200, self.status_body(service_order_id), "application/json"
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        return super().handle_request(method, path, body, authorization)

    def _invoice_status(self, service_order_id: int, authorization: str) -> tuple[int, Any, str]:
        mode = self.mode
        if mode is None:
            return super()._invoice_status(service_order_id, authorization)
        with self._lock:
            self._status_calls += 1
        if mode == "hang":
            if self._stopping.wait(self.hang_seconds):
                raise HttpError(503, "Shutting down")
            return 200, self.status_body(service_order_id), "application/json"
        if mode == "html":
            return 200, _HTML_PAGE, "text/html; charset=utf-8"
        if mode == "truncated_json":
            return 200, _TRUNCATED_JSON, "application/json"
        if mode == "error_500":
            raise HttpError(500, "Internal Server Error")
        raise HttpError(401, "Unauthorized")


if __name__ == "__main__":
    sys.exit(main(standin_class=FaultyMifactStandin))
