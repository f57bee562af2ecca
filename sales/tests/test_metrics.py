"""`/metrics`: Prometheus figures, only for a configured token or an allow-listed address."""

from __future__ import annotations

import re

import pytest

from billing.models import OpportunityServiceOrder
from jobs.models import CommandRun
from opportunities.models import SvDelivery

pytestmark = pytest.mark.django_db


def value(text: str, name: str, **labels: str) -> float:
    """The value of one sample `name{labels}` in an exposition."""
    for line in text.splitlines():
        if not line.startswith(name + ("{" if labels else " ")):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if labels else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{labels} not in the exposition")


def test_without_a_token_or_allowed_addresses_metrics_do_not_exist(anon_client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", []
    response = anon_client.get("/metrics")
    assert response.status_code == 404 and response.json()["statusCode"] == 404


def test_an_unauthenticated_caller_is_refused(anon_client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "s3cr3t-token", []
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": "s3cr3t-token"}):
        response = anon_client.get("/metrics", **headers)
        assert response.status_code == 403, headers
        assert response.json() == {"statusCode": 403, "message": "Acceso a las métricas denegado", "error": "Forbidden"}


def test_an_allow_listed_address_is_served(anon_client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", ["10.0.0.0/8"]
    assert anon_client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert anon_client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 403


def test_the_token_gets_the_backlog_and_the_runs(anon_client, settings, make_opportunity, mifact, put_process):
    settings.METRICS_TOKEN = "s3cr3t-token"
    opportunity = make_opportunity(c_clinic_history="HC-1")
    assert put_process(opportunity.pk, {"cOrdenesServicio": [456, 457]}).status_code == 200  # checks both inline
    SvDelivery.objects.create(opportunity=opportunity, reservation_id=1, clinic_history="HC-1", status="failed")
    CommandRun.objects.create(command="poll_invoices", host="app1", outcome="ok")
    CommandRun.objects.create(command="send_events", host="app1", outcome="ok")
    response = anon_client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cr3t-token")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert value(text, "crm_service_orders_pending") == OpportunityServiceOrder.objects.filter(facturado=False).count()
    assert value(text, "crm_service_orders_oldest_pending_seconds") >= 0
    assert value(text, "crm_sv_deliveries", status="failed") == 1
    assert value(text, "crm_sv_deliveries", status="pending") == 0
    assert value(text, "crm_command_last_success_timestamp_seconds", command="poll_invoices") > 0
    assert value(text, "crm_command_last_success_timestamp_seconds", command="send_events") > 0
    assert value(text, "crm_outgoing_requests_total", service="invoice-mifact", outcome="ok") >= 3  # sign-in, 2 checks
    assert "crm_outgoing_request_seconds_bucket" in text
    assert "django_http_responses_total_by_status_view_method_total" in text
