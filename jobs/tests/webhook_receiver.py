"""A fake event receiver for the unit tests, through `responses` (no network): records each POST
(headers and body) and answers 204, or 503 while `down`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import responses
from standardwebhooks.webhooks import Webhook

from jobs.models import new_webhook_secret

URL = "http://receptor.test/eventos"


@dataclass
class Receiver:
    url: str
    secret: str
    down: bool = False
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def callback(self, request: Any) -> tuple[int, dict[str, str], str]:
        if self.down:
            return 503, {}, "caído"
        self.received.append((dict(request.headers), request.body))
        return 204, {}, ""

    def verified(self, secret: str | None = None) -> list[dict[str, Any]]:
        """The bodies received, each checked with `Webhook.verify` (raises on a bad signature)."""
        return [Webhook(secret or self.secret).verify(body, headers) for headers, body in self.received]

    def ids(self) -> list[str]:
        return [headers["webhook-id"] for headers, _ in self.received]

    def types(self) -> list[str]:
        return [json.loads(body)["type"] for _, body in self.received]


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    """`WEBHOOK_URL` and `WEBHOOK_SECRET` pointing at a fake receiver."""
    fake = Receiver(url=URL, secret=new_webhook_secret())
    settings.WEBHOOK_URL, settings.WEBHOOK_SECRET = fake.url, fake.secret
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, fake.url, callback=fake.callback)
        yield fake
