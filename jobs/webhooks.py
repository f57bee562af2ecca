"""Signed events to their receivers (docs/api.md "Events"): the events' outbox channel.

`events_publish` (called in the transaction of the change, by `opportunities.events`) writes the
events and one delivery per receiver that wants them: the receiver of `WEBHOOK_URL` (row endpoint
null) and each active `WebhookEndpoint`. Each delivery is tried right after the commit and by
`manage.py send_events` (cron, every minute) with backoff, through `jobs.outbox`. One stream (an
opportunity at one receiver) is sent in order: a delivery waits while an older one of its stream
is pending. Each POST is signed with the `standardwebhooks` package (headers `webhook-id`,
`webhook-timestamp`, `webhook-signature`), signed again at each attempt (receivers refuse old
timestamps).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from crm.outgoing import JsonPoster, ServiceError
from jobs.models import Event, OutboxRow, WebhookDelivery, WebhookEndpoint
from jobs.outbox import (
    OutboxChannel,
    OutboxSendError,
    OutboxSummary,
    outbox_attempts_inline,
    outbox_drain,
    outbox_retry_now,
)

SETTINGS_STREAM = "settings"


class WebhookChannel(OutboxChannel):
    """The events' outbox: one event to one receiver per row, a stream per opportunity and receiver."""

    model = WebhookDelivery
    key = "stream"
    lock_namespace = 0x5748  # "WH"
    label = "destino de eventos"
    strict_order = True
    hand_off_limit = 20

    def claim_seconds(self) -> float:
        return max(60, 3 * settings.WEBHOOK_TIMEOUT)

    def max_attempts(self) -> int:
        return settings.WEBHOOK_MAX_ATTEMPTS

    def backoff_seconds(self) -> tuple[int, int]:
        return settings.WEBHOOK_BACKOFF_SECONDS, settings.WEBHOOK_BACKOFF_MAX_SECONDS

    def pending(self) -> QuerySet[WebhookDelivery]:
        # A deactivated endpoint's deliveries wait (in order) until it is active again.
        # (A subquery, not a join: the claim locks the rows with FOR UPDATE, which PostgreSQL
        # refuses on the nullable side of an outer join.)
        switched_off = WebhookEndpoint.objects.filter(active=False).values("pk")
        return super().pending().exclude(endpoint_id__in=switched_off)

    def client(self, *, inline: bool) -> JsonPoster:
        timeout = settings.WEBHOOK_INLINE_TIMEOUT if inline else settings.WEBHOOK_TIMEOUT
        return JsonPoster(service_name="webhook", timeout=timeout)

    def rows(self) -> QuerySet[WebhookDelivery]:
        return WebhookDelivery.objects.select_related("event", "endpoint")

    def send(self, row: WebhookDelivery, client: JsonPoster) -> None:
        if row.endpoint is None:
            url, secret = settings.WEBHOOK_URL, settings.WEBHOOK_SECRET
            if not (url and secret):
                raise OutboxSendError("WEBHOOK_URL o WEBHOOK_SECRET no están configurados")
        else:
            url, secret = row.endpoint.url, row.endpoint.secret
        body, headers = signed_request(row.event, secret=secret, now=timezone.now())
        try:
            response = client.post(url, body=body, headers=headers)
        except ServiceError as exc:
            raise OutboxSendError(str(exc)) from exc
        if not 200 <= response.status_code < 300:
            raise OutboxSendError(f"el destino respondió {response.status_code}")


WEBHOOK_CHANNEL = WebhookChannel()


def event_body_bytes(event: Event) -> bytes:
    """The exact bytes sent (and signed): the event's JSON, compact, UTF-8."""
    return json.dumps(event.body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def signed_request(event: Event, *, secret: str, now: dt.datetime) -> tuple[bytes, dict[str, str]]:
    """The body and the Standard Webhooks headers of `event` signed with `secret` at `now`."""
    body = event_body_bytes(event)
    signature = Webhook(secret).sign(msg_id=event.uid, timestamp=now.astimezone(dt.UTC), data=body.decode())
    return body, {
        "webhook-id": event.uid,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


# The active endpoints, read at most every WEBHOOK_ENDPOINTS_CACHE_SECONDS per process (a change
# that tells no event to anyone then costs no query); cleared in this process when one is saved.
_endpoints_cache: tuple[float, list[WebhookEndpoint]] | None = None


@receiver(post_save, sender=WebhookEndpoint, dispatch_uid="webhook_endpoints_saved")
@receiver(post_delete, sender=WebhookEndpoint, dispatch_uid="webhook_endpoints_deleted")
def endpoints_cache_clear(**kwargs: object) -> None:
    global _endpoints_cache
    _endpoints_cache = None


def active_endpoints() -> list[WebhookEndpoint]:
    """The active `WebhookEndpoint`s (cached for `WEBHOOK_ENDPOINTS_CACHE_SECONDS`)."""
    global _endpoints_cache
    now = time.monotonic()
    if _endpoints_cache is None or now - _endpoints_cache[0] >= settings.WEBHOOK_ENDPOINTS_CACHE_SECONDS:
        _endpoints_cache = (now, list(WebhookEndpoint.objects.filter(active=True)))
    return _endpoints_cache[1]


def _receivers(event_type: str, endpoints: Sequence[WebhookEndpoint]) -> list[WebhookEndpoint | None]:
    wanted: list[WebhookEndpoint | None] = [None] if settings.WEBHOOK_URL else []
    return wanted + [endpoint for endpoint in endpoints if endpoint.wants(event_type)]


def events_publish(events: Sequence[Event]) -> list[WebhookDelivery]:
    """Write `events` (unsaved, in order) and their deliveries, inside the caller's transaction,
    and schedule one attempt of each right after the commit. Nothing is written when no receiver
    is configured (an event nobody receives is not kept). Returns the deliveries."""
    if not events:
        return []
    endpoints = active_endpoints()
    if not settings.WEBHOOK_URL and not endpoints:
        return []
    wanted = [(event, _receivers(event.type, endpoints)) for event in events]
    wanted = [(event, receivers) for event, receivers in wanted if receivers]
    if not wanted:
        return []
    created = Event.objects.bulk_create([event for event, _ in wanted])
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                event=event,
                endpoint=endpoint,
                stream=f"{endpoint.pk if endpoint else SETTINGS_STREAM}:{event.opportunity_id}",
                next_attempt_at=now,
            )
            for event, (_, receivers) in zip(created, wanted, strict=True)
            for endpoint in receivers
        ]
    )
    pks = [delivery.pk for delivery in deliveries]
    transaction.on_commit(partial(outbox_attempts_inline, WEBHOOK_CHANNEL, pks=pks))
    return deliveries


@dataclass
class SendEventsSummary(OutboxSummary):
    """Counts of one `send_events` run: the outbox's, and the old events deleted."""

    command: ClassVar[str] = "send_events"
    COUNTS: ClassVar[tuple[str, ...]] = (*OutboxSummary.COUNTS, "pruned")

    pruned: int = 0


def events_prune(*, now: dt.datetime | None = None) -> int:
    """Delete the events older than `WEBHOOK_EVENTS_KEEP_DAYS` that no delivery still waits for
    (delivered or failed for good), with their deliveries; returns how many events."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.WEBHOOK_EVENTS_KEEP_DAYS)
    waiting = WebhookDelivery.objects.filter(status=OutboxRow.Status.PENDING).values("event_id")
    old = Event.objects.filter(created_at__lt=cutoff).exclude(pk__in=waiting)
    ids = list(old.values_list("pk", flat=True)[:10_000])
    if not ids:
        return 0
    WebhookDelivery.objects.filter(event_id__in=ids).delete()
    Event.objects.filter(pk__in=ids).delete()
    return len(ids)


def events_send(*, limit: int | None = None) -> SendEventsSummary:
    """`manage.py send_events`: deliver every due delivery (`jobs.outbox.outbox_drain`), then prune."""
    summary = SendEventsSummary()
    outbox_drain(WEBHOOK_CHANNEL, summary, limit=limit)
    if not summary.database_lost:
        summary.pruned = events_prune()
    return summary


def webhook_deliveries_retry_now(*, delivery_pks: Iterable[int]) -> dict[str, int]:
    """Admin "Reintentar ahora": attempt the given deliveries now (failed ones re-armed)."""
    return outbox_retry_now(WEBHOOK_CHANNEL, pks=delivery_pks)
