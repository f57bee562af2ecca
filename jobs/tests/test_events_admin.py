"""The events in the admin (jobs/admin.py, docs/admin.md "Events"): the deliveries' list and its
"Reintentar ahora" for Facturación, endpoints with a secret shown once, the roles' access."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import transaction
from django.urls import reverse, reverse_lazy

from devtools.admin_testing import role_client
from jobs.models import Event, WebhookDelivery, WebhookEndpoint
from jobs.tests.webhook_receiver import URL, Receiver
from jobs.webhooks import events_publish
from sales.roles import BILLING, SALES, SUPERVISION

pytestmark = pytest.mark.django_db

DELIVERIES = reverse_lazy("admin:jobs_webhookdelivery_changelist")


@pytest.fixture
def delivery(receiver: Receiver, django_capture_on_commit_callbacks: Any) -> WebhookDelivery:
    """A failed event delivery: it ran out of attempts while the receiver was down (it is up again)."""
    receiver.down = True
    body = {"type": "comprobante.voided", "timestamp": "2026-12-05T10:00:00.000Z", "data": {"opportunityId": "a"}}
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        (delivery,) = events_publish([Event(type="comprobante.voided", opportunity_id="a", body=body)])
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=30)
    receiver.down = False
    return delivery


def test_billing_retries_a_failed_delivery_now(
    delivery: WebhookDelivery, receiver: Receiver, django_user_model: Any
) -> None:
    client = role_client(django_user_model, BILLING)
    listing = client.get(DELIVERIES, {"status__exact": "failed"})
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [delivery]
    assert "el destino respondió 503" in listing.content.decode()
    assert "Reintentar envío del evento ahora" in listing.content.decode()
    response = client.post(DELIVERIES, {"action": "retry_now", "_selected_action": [delivery.pk]}, follow=True)
    assert response.status_code == 200
    assert "Entregados: 1" in " ".join(str(m) for m in get_messages(response.wsgi_request))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == ("delivered", "")
    assert len(receiver.verified()) == 1


def test_supervision_reads_and_sales_sees_nothing(
    delivery: WebhookDelivery, receiver: Receiver, django_user_model: Any
) -> None:
    supervision = role_client(django_user_model, SUPERVISION)
    form = supervision.get(DELIVERIES).context["action_form"]
    assert form is None or "retry_now" not in [value for value, _ in form.fields["action"].choices]
    supervision.post(DELIVERIES, {"action": "retry_now", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.status == "failed" and receiver.received == []
    assert supervision.get(reverse("admin:jobs_webhookendpoint_add")).status_code == 403
    sales = role_client(django_user_model, SALES)
    for name in ("webhookdelivery", "webhookendpoint", "event"):
        assert sales.get(reverse(f"admin:jobs_{name}_changelist")).status_code == 403


def test_an_added_endpoint_shows_its_secret_once(admin_client: Any) -> None:
    response = admin_client.post(
        reverse("admin:jobs_webhookendpoint_add"),
        {"url": URL, "description": "Contabilidad", "active": "on", "event_types": ["service_order.invoiced"]},
        follow=True,
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["service_order.invoiced"] and endpoint.secret.startswith("whsec_")
    assert endpoint.secret in " ".join(str(m) for m in get_messages(response.wsgi_request))
    change = admin_client.get(reverse("admin:jobs_webhookendpoint_change", args=[endpoint.pk]))
    listing = admin_client.get(reverse("admin:jobs_webhookendpoint_changelist"))
    for page in (change, listing):
        assert page.status_code == 200
        assert endpoint.secret not in page.content.decode() and endpoint.secret[:10] in page.content.decode()


def test_an_endpoint_is_switched_off_not_deleted(admin_client: Any) -> None:
    endpoint = WebhookEndpoint.objects.create(url=URL)
    assert admin_client.get(reverse("admin:jobs_webhookendpoint_delete", args=[endpoint.pk])).status_code == 403
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
