"""Reading the demo's results back through the API, printing its report and checking it
(`make demo`, scripts/demo.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

SERVICE_ORDER_ID = 456
HEAD_ID = 123
#: Seconds an HTTP call of the demo may take.
HTTP_TIMEOUT = 15.0


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


def say(text: str = "") -> None:
    print(text, flush=True)


class DemoReading:
    """The part of the demo that talks to the stand-in's controls and reads the API back;
    `Demo` provides `mifact`, `api`, `http`, `token` and `call()`."""

    mifact: str
    api: str
    http: requests.Session
    token: str
    call: Callable[..., Any]

    def standin_post(self, path: str, body: dict[str, Any]) -> None:
        """A control call of the invoice-mifact stand-in; prints the O.S's new invoice-status."""
        try:
            answer = requests.post(f"{self.mifact}{path}", json=body, timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            raise DemoError(f"could not reach the stand-in: {exc}") from exc
        if answer.status_code != 200:
            raise DemoError(f"the stand-in refused {path}: {answer.text[:300]}")
        say(f"    invoice-status now: {answer.json()}")

    def collect(self, label: str, opportunity_id: str) -> dict[str, Any]:
        """GET the opportunity, its attachments and its service orders."""

        def as_list(value: Any) -> list[Any]:
            return value["results"] if isinstance(value, dict) else value

        return {
            "label": label,
            "opportunity": self.call("GET", f"/opportunity/{opportunity_id}"),
            "attachments": as_list(self.call("GET", f"/opportunity/{opportunity_id}/attachments")),
            "service_orders": as_list(self.call("GET", f"/opportunity/{opportunity_id}/service-orders")),
        }

    def download(self, url: str) -> bytes:
        """Open an attachment's signed `downloadUrl` as a browser tab does, without the bearer token
        (docs/api.md "Signed links to comprobantes"); it must be a PDF, and the link changed in its
        last character must be refused with 403."""
        if url.startswith("/"):
            url = f"{self.api}{url}"
        try:
            response = requests.get(url, timeout=HTTP_TIMEOUT)
            tampered = requests.get(url[:-1] + ("A" if url[-1] != "A" else "B"), timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            raise DemoError(f"downloading {url} failed: {exc}") from exc
        if response.status_code != 200:
            raise DemoError(f"downloading {url} answered {response.status_code}: {response.text[:300]}")
        if not response.content.startswith(b"%PDF-"):
            raise DemoError(f"{url} is not a PDF (starts with {response.content[:16]!r})")
        if tampered.status_code != 403:
            raise DemoError(f"{url} changed in one character answered {tampered.status_code} (expected 403)")
        return response.content

    @staticmethod
    def print_report(report: list[dict[str, Any]], seconds: float) -> None:
        say("\n" + "=" * 78)
        say("DEMO REPORT")
        say("=" * 78)
        for item in report:
            opp = item["opportunity"]
            say(f"Opportunity {item['label']}  id={opp['id']}  name={opp['name']!r}")
            say(f"  stage                 : {opp['stage']}")
            say(f"  cFacturacionSubEstado : {opp['cFacturacionSubEstado']}")
            say(f"  isPresaved            : {opp['isPresaved']}")
            say(f"  cClinicHistory        : {opp.get('cClinicHistory')}   reservationId: {opp.get('reservationId')}")
            say(f"  attachments ({len(item['attachments'])}):")
            for att in item["attachments"]:
                say(
                    f"    - {att['kind']:<20} {att['fileName']:<34} {att['size']:>6} bytes  "
                    f"serviceOrderId={att['serviceOrderId']} {att['status']}"
                )
            if item["service_orders"]:
                say(f"  service orders ({len(item['service_orders'])}):")
                for so in item["service_orders"]:
                    say(
                        f"    - O.S {so['serviceOrderId']}: facturado={so['facturado']} "
                        f"invoiceResultHeadId={so['invoiceResultHeadId']} metadata={so['metadata']} "
                        f"lastError={so['lastError']!r}"
                    )
            say("")
        say(f"Finished in {seconds:.1f} s.")

    @staticmethod
    def verify(report: list[dict[str, Any]]) -> None:
        """Raise DemoError unless A and B ended as the requirements say (README "Example session with curl")."""
        a, b = report
        for item in (a, b):
            opp = item["opportunity"]
            if (opp["stage"], opp["cFacturacionSubEstado"]) != ("Cierre ganado", "factura_directa"):
                raise DemoError(
                    f"{item['label']} ended in {opp['stage']!r}/{opp['cFacturacionSubEstado']!r}, "
                    "expected 'Cierre ganado'/'factura_directa'"
                )
            if opp["isPresaved"] is not False:
                raise DemoError(f"{item['label']} is still presaved")
            if not item["attachments"]:
                raise DemoError(f"{item['label']} has no attachments")
        if any(att["serviceOrderId"] != SERVICE_ORDER_ID for att in b["attachments"]):
            raise DemoError(f"B's attachments should all come from O.S {SERVICE_ORDER_ID}")
        if not all(so["facturado"] for so in b["service_orders"]) or not b["service_orders"]:
            raise DemoError(f"O.S {SERVICE_ORDER_ID} is not marked facturado")
        statuses = sorted(att["status"] for att in b["attachments"])
        if statuses != ["reemplazado", "reemplazado", "vigente", "vigente"]:
            raise DemoError(f"after the reissue B's comprobantes should be 2 replaced and 2 valid, got {statuses}")
        if b["service_orders"][0]["invoiceResultHeadId"] != HEAD_ID + 1:
            raise DemoError(f"O.S {SERVICE_ORDER_ID} should carry the reissued head id {HEAD_ID + 1}")
