"""`/health` tells the truth about invoice polling; `/health/live` only that the process answers."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from django.core.cache import cache
from django.utils import timezone

from billing.models import OpportunityServiceOrder
from jobs.models import CommandRun
from jobs.run_liveness import this_host

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def pending_since(make_opportunity, minutes: int) -> OpportunityServiceOrder:
    row = OpportunityServiceOrder.objects.create(opportunity=make_opportunity(), service_order_id=456)
    OpportunityServiceOrder.objects.filter(pk=row.pk).update(created_at=timezone.now() - dt.timedelta(minutes=minutes))
    return row


def poll_run(minutes_ago: int, outcome: str = "ok") -> CommandRun:
    started = timezone.now() - dt.timedelta(minutes=minutes_ago)
    return CommandRun.objects.create(
        command="poll_invoices", host="app1", started_at=started, finished_at=started, outcome=outcome
    )


def test_health_is_ok_with_nothing_pending(anon_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        response = anon_client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["pendingServiceOrders"] == 0 and body["svBacklog"] == 0


def test_a_dead_cron_turns_health_into_a_503_that_names_the_reason(anon_client, make_opportunity, settings):
    settings.HEALTH_POLL_MAX_AGE_MINUTES = 15
    pending_since(make_opportunity, minutes=60)
    poll_run(minutes_ago=40)  # the last run that reached invoice-mifact, aged on purpose
    response = anon_client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded" and body["statusCode"] == 503 and body["message"] == body["reason"]
    assert "poll_invoices no funciona desde hace 40 min" in body["reason"]
    assert body["pendingServiceOrders"] == 1 and body["oldestPendingSeconds"] >= 3600
    assert 40 * 60 <= body["lastSuccessfulPollSeconds"] < 41 * 60


def test_failed_runs_do_not_count_as_polling(anon_client, make_opportunity):
    pending_since(make_opportunity, minutes=60)
    poll_run(minutes_ago=1, outcome="failed")
    response = anon_client.get("/health")
    assert response.status_code == 503
    assert "nunca funcionó" in response.json()["reason"]


def test_a_recent_successful_poll_keeps_health_ok(anon_client, make_opportunity):
    pending_since(make_opportunity, minutes=60)
    poll_run(minutes_ago=3, outcome="partial")
    assert anon_client.get("/health").status_code == 200


def test_service_orders_registered_a_moment_ago_do_not_trip_it(anon_client, make_opportunity):
    pending_since(make_opportunity, minutes=2)
    assert anon_client.get("/health").status_code == 200


def test_health_is_cached_for_a_few_seconds(anon_client, make_opportunity, django_assert_num_queries, settings):
    settings.HEALTH_CACHE_SECONDS = 5
    anon_client.get("/health")
    with django_assert_num_queries(0):
        assert anon_client.get("/health").status_code == 200


def test_health_is_503_when_the_database_fails(anon_client, monkeypatch):
    from django.db import connection
    from django.db.utils import OperationalError

    def broken_cursor(*args, **kwargs):
        raise OperationalError("down")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = anon_client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "caída"


def test_live_answers_without_the_database(anon_client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = anon_client.get("/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_a_killed_last_poll_counts_as_the_failure_the_reason_names(anon_client, make_opportunity):
    pending_since(make_opportunity, minutes=60)
    poll_run(minutes_ago=40)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # the newest run's process is gone: it is `running` in the record only
    CommandRun.objects.create(command="poll_invoices", host=this_host(), pid=child.pid, heartbeat_at=timezone.now())
    response = anon_client.get("/health")
    assert response.status_code == 503
    assert response.json()["reason"] == (
        "Hay O.S esperando factura y poll_invoices no funciona desde hace 40 min (límite 15 min) "
        "(última ejecución: interrumpida: el proceso ya no existe)"
    )
