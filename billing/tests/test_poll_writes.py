"""The poll writes its "not invoiced yet" answers in batches (billing/services/poll_writes.py):
one statement per batch instead of one per O.S, each row with its own check time."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import OpportunityServiceOrder
from billing.services.poll import service_orders_poll
from billing.services.poll_writes import PendingAnswers

pytestmark = pytest.mark.django_db


def _answer_writes(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("UPDATE") and '"last_checked_at" = CASE' in q["sql"]
    ]


def test_a_run_writes_its_answers_once_per_batch(make_opportunity, mifact, settings):
    settings.POLL_BATCH_SIZE = 10
    opportunity = make_opportunity(stage="Cierre ganado", c_clinic_history="HC")
    rows = [OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=i) for i in range(30)]
    OpportunityServiceOrder.objects.filter(pk=rows[0].pk).update(
        last_error="invoice-mifact: respondió 404", last_error_kind="unknown_order", error_streak=2
    )
    mifact.invoice(5)
    with CaptureQueriesContext(connection) as queries:
        summary = service_orders_poll(workers=1)
    assert (summary.checked, summary.invoiced, summary.errors) == (30, 1, 0)
    assert len(_answer_writes(queries)) == 3  # 29 answers, batches of 10
    fresh = OpportunityServiceOrder.objects.order_by("service_order_id")
    assert all(row.last_checked_at is not None and row.claimed_until is None for row in fresh)
    first = fresh[0]
    assert (first.last_error, first.last_error_kind, first.error_streak) == ("", "", 0)
    assert fresh.get(service_order_id=5).facturado


def test_each_row_keeps_its_own_check_time(make_opportunity):
    opportunity = make_opportunity()
    a, b = (OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=i) for i in (1, 2))
    OpportunityServiceOrder.objects.filter(pk__in=[a.pk, b.pk]).update(claimed_until=timezone.now())
    answers = PendingAnswers()
    early = timezone.now() - dt.timedelta(seconds=30)
    late = timezone.now()
    answers.add(a.pk, early)
    answers.add(b.pk, late)
    assert answers.flush() == 2 and answers.flush() == 0
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.last_checked_at, b.last_checked_at) == (early, late)
    assert a.claimed_until is None and b.claimed_until is None
