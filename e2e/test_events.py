"""Signed events through gunicorn to a receiver on 127.0.0.1 (docs/api.md "Events"): a close with
an O.S the stand-in reports invoiced reaches it within seconds, signed as Standard Webhooks says;
a receiver that was down gets every event once `send_events` runs as cron would, once per id, in
order. The receiver checks each signature with the `standardwebhooks` package."""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from devtools.harness import free_port
from e2e import bodies

SEND_RE = re.compile(r"^send_events: due=(\d+) delivered=(\d+) retried=(\d+) failed=(\d+) pruned=(\d+) seconds=")
#: The backoff the suite gives the events (seconds): a failed attempt is due again this soon.
BACKOFF_SECONDS = 1


class EventReceiver:
    """A tiny receiver on 127.0.0.1: records every POST (headers, body) and answers 204. `down()`
    closes its port (connections refused); `up()` listens on the same port again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/eventos"
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.up()

    def up(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with owner._lock:
                    owner.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self, secret: str, opportunity_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(webhook-id, verified body) of what arrived about `opportunity_id`, in arrival order."""
        with self._lock:
            received = list(self.received)
        verified = [(headers["webhook-id"], Webhook(secret).verify(body, headers)) for headers, body in received]
        return [(uid, body) for uid, body in verified if body["data"]["opportunityId"] == opportunity_id]


@pytest.fixture(scope="module")
def events(stack: Any) -> Iterator[tuple[EventReceiver, str, dict[str, str]]]:
    """gunicorn serving with `WEBHOOK_URL` at the receiver (restored after the module)."""
    receiver = EventReceiver()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    env = stack.env_with(
        WEBHOOK_URL=receiver.url,
        WEBHOOK_SECRET=secret,
        WEBHOOK_BACKOFF_SECONDS=str(BACKOFF_SECONDS),
        WEBHOOK_BACKOFF_MAX_SECONDS=str(2 * BACKOFF_SECONDS),
    )
    stack.restart_gunicorn(env)
    try:
        yield receiver, secret, env
    finally:
        stack.restart_gunicorn(stack.env)
        receiver.down()


def wait_for(receiver: EventReceiver, secret: str, opportunity_id: str, count: int, seconds: float) -> list[Any]:
    deadline = time.monotonic() + seconds
    while len(got := receiver.events(secret, opportunity_id)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return got


def test_a_close_with_an_invoiced_os_is_told_within_seconds(api, mifact, new_id, events) -> None:
    receiver, secret, _ = events
    service_order_id = new_id()
    mifact.invoice(service_order_id, soles=True, head_id=service_order_id)
    opportunity_id = api.create_opportunity("E2E - eventos de un cierre")["id"]
    started = time.monotonic()
    after = api.put_process(opportunity_id, bodies.service_orders(f"HC-{service_order_id}", [service_order_id]))
    assert after["opportunity"]["cFacturacionSubEstado"] == "factura_directa"  # checked by the PUT itself

    got = wait_for(receiver, secret, opportunity_id, 3, seconds=10)
    elapsed = time.monotonic() - started
    assert [body["type"] for _, body in got] == [
        "opportunity.updated",
        "opportunity.closed_won",
        "service_order.invoiced",
    ], got
    assert elapsed < 10
    closed, invoiced = got[1][1], got[2][1]
    assert closed["data"]["stage"] == "Cierre ganado"
    assert invoiced["data"]["serviceOrderId"] == service_order_id
    assert invoiced["data"]["subState"] == "factura_directa"
    assert all(uid.startswith("evt_") for uid, _ in got) and len({uid for uid, _ in got}) == 3
    print(f"\nevents: {elapsed:.2f} s from the PUT to the third event at the receiver")
    print("one delivered event:", json.dumps(receiver.received[-1][0], indent=1), receiver.received[-1][1].decode())


def test_a_receiver_down_for_a_while_gets_every_event_once_in_order(api, stack, new_id, events) -> None:
    receiver, secret, env = events
    opportunity_id = api.create_opportunity("E2E - receptor caído")["id"]
    receiver.down()
    try:
        names = [f"Paciente {n}" for n in range(4)]
        for name in names:
            api.put_process(opportunity_id, {"cPatientsname": name})
        result = stack.manage("send_events", env=env)  # down: nothing can be delivered
        assert result.returncode == 0, result
        assert receiver.events(secret, opportunity_id) == []
    finally:
        receiver.up()

    deadline = time.monotonic() + 30
    while len(receiver.events(secret, opportunity_id)) < len(names) and time.monotonic() < deadline:
        time.sleep(BACKOFF_SECONDS + 0.2)  # cron: every minute; here every backoff
        result = stack.manage("send_events", env=env)
        assert result.returncode == 0 and SEND_RE.match(result.stdout), result
    got = receiver.events(secret, opportunity_id)
    assert [body["data"]["changes"]["cPatientsname"]["new"] for _, body in got] == names
    assert len({uid for uid, _ in got}) == len(names)  # once per id

    again = stack.manage("send_events", env=env)
    assert SEND_RE.match(again.stdout).group(2) == "0", again  # type: ignore[union-attr]
    assert len(receiver.events(secret, opportunity_id)) == len(names)
