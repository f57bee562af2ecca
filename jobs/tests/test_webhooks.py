"""The signed events' outbox (jobs/webhooks.py, docs/api.md "Events"): signatures that
`standardwebhooks` verifies, order per stream, backoff, retention, receivers and the command."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from jobs.models import CommandRun, Event, WebhookDelivery, WebhookEndpoint
from jobs.outbox import OutboxAttempt, outbox_attempt, outbox_attempt_inline
from jobs.tests.webhook_receiver import URL, Receiver
from jobs.webhooks import WEBHOOK_CHANNEL, JsonPoster, events_prune, events_publish, signed_request

pytestmark = pytest.mark.django_db


def event(opportunity_id: str = "a" * 17, type_: str = "opportunity.updated", n: int = 0) -> Event:
    body = {"type": type_, "timestamp": "2026-12-05T10:00:00.000Z", "data": {"opportunityId": opportunity_id, "n": n}}
    return Event(type=type_, opportunity_id=opportunity_id, body=body)


def publish(capture: Any, *events: Event) -> list[WebhookDelivery]:
    """Publish `events` in one transaction and run what the commit schedules (the inline attempts)."""
    with capture(execute=True), transaction.atomic():
        return events_publish(list(events))


def send_events() -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("send_events", stdout=out, stderr=err)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_a_delivered_event_verifies_with_standardwebhooks(
    receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    (delivery,) = publish(django_capture_on_commit_callbacks, event())
    stored = Event.objects.get()
    assert stored.uid.startswith("evt_") and len(stored.uid) == 30
    ((headers, body),) = receiver.received
    assert headers["webhook-id"] == stored.uid
    assert headers["Content-Type"] == "application/json"
    assert int(headers["webhook-timestamp"]) == pytest.approx(timezone.now().timestamp(), abs=5)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(receiver.secret).verify(body, headers) == stored.body
    with pytest.raises(WebhookVerificationError):
        Webhook(receiver.secret).verify(body.replace(b'"n":0', b'"n":1'), headers)  # tampered body
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 1, "")
    assert delivery.delivered_at is not None and delivery.claimed_until is None


def test_a_retry_is_signed_again_with_its_own_timestamp() -> None:
    stored = Event.objects.create(
        **{k: v for k, v in event().__dict__.items() if k in ("type", "opportunity_id", "body")}
    )
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    earlier = timezone.now() - dt.timedelta(minutes=3)
    body, first = signed_request(stored, secret=secret, now=earlier)
    _, second = signed_request(stored, secret=secret, now=timezone.now())
    assert first["webhook-id"] == second["webhook-id"] == stored.uid  # the id receivers dedupe on
    assert first["webhook-signature"] != second["webhook-signature"]
    assert Webhook(secret).verify(body, first) == json.loads(body)


def test_a_stream_waits_behind_its_pending_older_event_then_goes_in_order(
    receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    receiver.down = True
    (first,) = publish(django_capture_on_commit_callbacks, event(n=1))
    first.refresh_from_db()
    assert (first.status, first.attempts) == ("pending", 1)
    assert first.next_attempt_at is not None
    assert first.next_attempt_at > timezone.now() + dt.timedelta(seconds=25)  # WEBHOOK_BACKOFF_SECONDS
    receiver.down = False
    (second,) = publish(django_capture_on_commit_callbacks, event(n=2))
    (other,) = publish(django_capture_on_commit_callbacks, event(opportunity_id="b" * 17, n=3))
    second.refresh_from_db()
    assert (second.status, second.attempts) == ("pending", 0)  # not sent before the older one
    assert [body["data"]["n"] for body in receiver.verified()] == [3]  # another opportunity's stream goes on

    code, out, _ = send_events()
    assert (code, out.split(" seconds=")[0]) == (0, "send_events: due=0 delivered=0 retried=0 failed=0 pruned=0")

    WebhookDelivery.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now())  # its backoff is over
    code, out, _ = send_events()
    assert code == 0 and out.startswith("send_events: due=2 delivered=2 "), out
    assert [body["data"]["n"] for body in receiver.verified()] == [3, 1, 2]
    assert len(set(receiver.ids())) == 3
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert CommandRun.objects.filter(command="send_events").latest("started_at").counts["delivered"] == 2
    assert other.pk


def test_backoff_doubles_up_to_its_cap_then_the_delivery_fails(
    receiver: Receiver, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.WEBHOOK_BACKOFF_SECONDS, settings.WEBHOOK_BACKOFF_MAX_SECONDS, settings.WEBHOOK_MAX_ATTEMPTS = 30, 100, 4
    receiver.down = True
    (delivery,) = publish(django_capture_on_commit_callbacks, event())
    delays = []
    for _ in range(3):
        delivery.refresh_from_db()
        assert delivery.next_attempt_at is not None
        delays.append(round((delivery.next_attempt_at - delivery.updated_at).total_seconds()))
        client = JsonPoster(service_name="webhook", timeout=1)
        result = outbox_attempt(WEBHOOK_CHANNEL, pk=delivery.pk, client=client, force=True)
        client.close()
    assert delays == [30, 60, 100]
    assert result is OutboxAttempt.FAILED
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 4, None)
    assert delivery.last_error == "el destino respondió 503"


def test_nothing_is_written_without_a_receiver_nor_when_the_change_rolls_back(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    assert publish(django_capture_on_commit_callbacks, event()) == []
    assert not Event.objects.exists()
    settings.WEBHOOK_URL, settings.WEBHOOK_SECRET = URL, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        events_publish([event()])
        raise RuntimeError("the change fails after its history")
    assert not Event.objects.exists() and not WebhookDelivery.objects.exists()


def test_admin_endpoints_get_the_types_they_ask_for_signed_with_their_own_secret(
    receiver: Receiver, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.WEBHOOK_URL = ""
    voided_only = WebhookEndpoint.objects.create(url=URL, event_types=["comprobante.voided"])
    WebhookEndpoint.objects.create(url="http://apagado.test/", active=False)
    assert voided_only.secret.startswith("whsec_")
    publish(django_capture_on_commit_callbacks, event(n=1), event(type_="comprobante.voided", n=2))
    assert [body["data"]["n"] for body in receiver.verified(voided_only.secret)] == [2]
    assert Event.objects.count() == 1  # the update went to nobody: not kept
    with pytest.raises(WebhookVerificationError):
        receiver.verified()  # WEBHOOK_SECRET did not sign it


def test_old_events_nobody_waits_for_are_pruned(
    receiver: Receiver, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.WEBHOOK_EVENTS_KEEP_DAYS = 30
    publish(django_capture_on_commit_callbacks, event(n=1))
    receiver.down = True
    publish(django_capture_on_commit_callbacks, event(opportunity_id="b" * 17, n=2))
    publish(django_capture_on_commit_callbacks, event(opportunity_id="c" * 17, n=3))
    old = timezone.now() - dt.timedelta(days=31)
    Event.objects.filter(body__data__n__in=[1, 2]).update(created_at=old)
    assert events_prune() == 1  # delivered and old; the pending one and the recent one stay
    assert sorted(Event.objects.values_list("body__data__n", flat=True)) == [2, 3]
    assert WebhookDelivery.objects.count() == 2


def test_a_switched_off_endpoint_holds_its_deliveries_until_it_is_on_again(
    receiver: Receiver, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.WEBHOOK_URL = ""
    endpoint = WebhookEndpoint.objects.create(url=URL)
    receiver.down = True
    (delivery,) = publish(django_capture_on_commit_callbacks, event())
    receiver.down = False
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert send_events()[1].startswith("send_events: due=0 delivered=0 ")
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=True)
    assert send_events()[1].startswith("send_events: due=1 delivered=1 ")
    assert len(receiver.verified(endpoint.secret)) == 1


def test_a_receiver_that_fails_costs_the_commit_one_attempt_not_one_per_event(
    receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    receiver.down = True
    deliveries = publish(django_capture_on_commit_callbacks, event(n=1), event(n=2), event(n=3))
    attempts = [WebhookDelivery.objects.get(pk=d.pk).attempts for d in deliveries]
    assert attempts == [1, 0, 0]
    receiver.down = False
    WebhookDelivery.objects.filter(pk=deliveries[0].pk).update(next_attempt_at=timezone.now())
    assert send_events()[1].startswith("send_events: due=3 delivered=3 ")
    assert [body["data"]["n"] for body in receiver.verified()] == [1, 2, 3]


def test_a_newer_event_written_while_an_older_was_in_flight_follows_it_at_once(
    receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    receiver.down = True
    (older,) = publish(django_capture_on_commit_callbacks, event(n=1))
    (newer,) = publish(django_capture_on_commit_callbacks, event(n=2))  # skipped: the older one waits
    receiver.down = False
    WebhookDelivery.objects.filter(pk=older.pk).update(next_attempt_at=timezone.now())
    assert outbox_attempt_inline(WEBHOOK_CHANNEL, pk=older.pk) is OutboxAttempt.DELIVERED
    assert [body["data"]["n"] for body in receiver.verified()] == [1, 2]  # handed off, not left for cron
    assert WebhookDelivery.objects.get(pk=newer.pk).status == "delivered"
