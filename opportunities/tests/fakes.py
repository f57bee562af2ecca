"""A scripted SV (clinic system) behind `responses` (tests never reach the network)."""

from __future__ import annotations

import json
import re
from typing import Any

import responses

BASE = "http://sv.test/api"


class FakeSv:
    """SV as docs/api.md "SV sync" describes it. `down = True` answers 503 to everything;
    `patches` lists `(reservation_id, clinicHistoryCrm)` of every PATCH that SV accepted."""

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.down = False
        self.reject_status: int | None = None
        self.sign_ins = 0
        self.patches: list[tuple[int, str]] = []
        self.rsps = rsps
        # The routes of a simulated service are not expectations: see `forget_unused_routes`.
        self.routes = [
            rsps.add_callback(responses.POST, f"{BASE}/auth/signin", callback=self._sign_in),
            rsps.add_callback(
                responses.PATCH,
                re.compile(rf"{re.escape(BASE)}/reservation/\d+/clinic-history-crm"),
                callback=self._patch,
            ),
        ]

    def _sign_in(self, request: Any) -> tuple[int, dict[str, str], str]:
        if self.down:
            return 503, {}, ""
        self.sign_ins += 1
        return 200, {"Content-Type": "application/json"}, json.dumps({"access_token": f"sv-{self.sign_ins}"})

    def _patch(self, request: Any) -> tuple[int, dict[str, str], str]:
        if self.down:
            return 503, {}, ""
        if self.reject_status:
            return self.reject_status, {"Content-Type": "application/json"}, json.dumps({"message": "no"})
        reservation_id = int(request.url.rsplit("/", 2)[-2])
        self.patches.append((reservation_id, json.loads(request.body)["clinicHistoryCrm"]))
        return 200, {"Content-Type": "application/json"}, json.dumps({"ok": True})

    def forget_unused_routes(self) -> None:
        """Remove the routes no request reached, so that `responses` asserts only the test's own
        expectations (every request a test registers itself must be sent)."""
        for route in self.routes:
            if route.call_count == 0:
                self.rsps.remove(route)
