"""A scripted invoice-mifact-v3 behind `responses` (tests never reach the network)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import responses

from devtools.testing import make_pdf

BASE = "http://mifact.test/api"


@dataclass
class FakeOrder:
    facturado: bool = False
    head_id: int | None = None
    urls: dict[str, str] = field(default_factory=dict)


class FakeMifact:
    """invoice-mifact as the docs/api.md "invoice-mifact" describes it, scripted per O.S.

    `invoice(so, soles=True, dolares=False)` switches an O.S to facturado with PDFs served at
    `{BASE}/files/...`; `down = True` makes every call a 503; `status_calls` lists the O.S ids asked.
    """

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.rsps = rsps
        # The routes of a simulated service are not expectations: see `forget_unused_routes`.
        self.routes: list[responses.BaseResponse] = []
        self.orders: dict[int, FakeOrder] = {}
        self.files: dict[str, bytes] = {}
        self.sign_ins = 0
        self.status_calls: list[int] = []
        self.downloads: list[str] = []
        self.down = False
        self.unknown: set[int] = set()  # O.S ids answered 404
        # Answers given before the usual one, per O.S id, in order: (status, headers).
        self.scripted: dict[int, list[tuple[int, dict[str, str]]]] = {}
        self.routes = [
            rsps.add_callback(responses.POST, f"{BASE}/auth/signin", callback=self._sign_in),
            rsps.add_callback(
                responses.GET, re.compile(rf"{re.escape(BASE)}/service-order/\d+/invoice-status"), callback=self._status
            ),
            rsps.add_callback(responses.GET, re.compile(rf"{re.escape(BASE)}/files/.+"), callback=self._file),
        ]

    def invoice(
        self,
        service_order_id: int,
        *,
        soles: bool = True,
        dolares: bool = False,
        head_id: int = 900,
        broken: bool = False,
    ) -> dict[str, bytes]:
        """Mark the O.S facturado; return the PDF bytes served for each of its URLs."""
        order = self.orders.setdefault(service_order_id, FakeOrder())
        order.facturado, order.head_id, order.urls = True, head_id, {}
        served: dict[str, bytes] = {}
        for currency, wanted in (("soles", soles), ("dolares", dolares)):
            if wanted:
                # Each comprobante (head id) has its own file: a reissue serves other PDFs.
                name = f"{service_order_id}-{head_id}-{currency}.pdf"
                body = b"<html>error</html>" if broken else make_pdf(f"O.S {service_order_id} {head_id} {currency}")
                self.files[name] = body
                order.urls[currency] = f"{BASE}/files/{name}"
                served[currency] = body
        return served

    def script(self, service_order_id: int, status: int, headers: dict[str, str] | None = None, times: int = 1) -> None:
        """Answer the next `times` status calls about the O.S with `status` (and `headers`)."""
        self.scripted.setdefault(service_order_id, []).extend([(status, dict(headers or {}))] * times)

    def void(self, service_order_id: int) -> None:
        """The O.S's comprobante was voided and not reissued yet: `facturado: false` again."""
        order = self.orders[service_order_id]
        order.facturado, order.head_id, order.urls = False, None, {}

    def _sign_in(self, request: Any) -> tuple[int, dict[str, str], str]:
        if self.down:
            return 503, {}, ""
        self.sign_ins += 1
        return 200, {"Content-Type": "application/json"}, json.dumps({"access_token": f"tok-{self.sign_ins}"})

    def _status(self, request: Any) -> tuple[int, dict[str, str], str]:
        if self.down:
            return 503, {}, ""
        service_order_id = int(request.url.rsplit("/", 2)[-2])
        self.status_calls.append(service_order_id)
        if self.scripted.get(service_order_id):
            status, headers = self.scripted[service_order_id].pop(0)
            refusal = json.dumps({"statusCode": status, "message": "respuesta preparada"})
            return status, {"Content-Type": "application/json", **headers}, refusal
        if service_order_id in self.unknown:
            return 404, {"Content-Type": "application/json"}, json.dumps({"message": "O.S no encontrada"})
        order = self.orders.get(service_order_id, FakeOrder())
        body: dict[str, Any] = {"facturado": order.facturado}
        if order.facturado:
            body.update(urls=order.urls, invoice_result_head_id=order.head_id)
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def _file(self, request: Any) -> tuple[int, dict[str, str], bytes]:
        name = request.url.rsplit("/", 1)[-1]
        self.downloads.append(name)
        if name not in self.files:
            return 404, {"Content-Type": "text/html"}, b"<html>404</html>"
        return 200, {"Content-Type": "application/pdf"}, self.files[name]

    def forget_unused_routes(self) -> None:
        """Remove the routes no request reached, so that `responses` asserts only the test's own
        expectations (every request a test registers itself must be sent)."""
        for route in self.routes:
            if route.call_count == 0:
                self.rsps.remove(route)
