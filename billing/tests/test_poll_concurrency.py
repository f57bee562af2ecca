"""Two pollers at once (and a poller with a PUT) never complete one O.S twice.

Real concurrency needs PostgreSQL row locks: on SQLite these tests are skipped.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections

from billing.models import OpportunityServiceOrder
from billing.services.poll import service_orders_poll
from opportunities.models import ActionHistory, Attachment, Opportunity

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="concurrency needs PostgreSQL row locks (SKIP LOCKED); run with DATABASE_URL=postgres://...",
    ),
]


def run_together(*targets: Callable[[], Any]) -> list[Any]:
    """Start every target in its own thread (own database connection) at the same instant."""
    barrier = threading.Barrier(len(targets))
    results: list[Any] = [None] * len(targets)

    def runner(index: int, target: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = target()
        except BaseException as exc:  # surfaced by the assertion below
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a target hung"
    assert not any(isinstance(r, BaseException) for r in results), results
    return results


def make_pending(n_opportunities: int, per_opportunity: int) -> list[OpportunityServiceOrder]:
    rows = []
    service_order_id = 1000
    for index in range(n_opportunities):
        opportunity = Opportunity.objects.create(
            name=f"Venta {index}",
            stage="Cierre ganado",
            c_clinic_history=f"HC-{index}",
            c_facturacion_sub_estado="orden_servicio_pendiente_factura",
        )
        for _ in range(per_opportunity):
            rows.append(OpportunityServiceOrder(opportunity=opportunity, service_order_id=service_order_id))
            service_order_id += 1
    return OpportunityServiceOrder.objects.bulk_create(rows)


def test_two_pollers_over_the_same_invoiced_order_attach_it_once(mifact, media_root):
    (row,) = make_pending(1, 1)
    mifact.invoice(row.service_order_id, soles=True, dolares=True)
    summaries = run_together(
        lambda: service_orders_poll(opportunity_id=row.opportunity_id, workers=1),
        lambda: service_orders_poll(opportunity_id=row.opportunity_id, workers=1),
    )
    assert sum(s.invoiced for s in summaries) == 1
    assert mifact.status_calls == [row.service_order_id]
    assert Attachment.objects.count() == 2
    assert ActionHistory.objects.filter(action="service_order_invoiced").count() == 1
    assert len([p for p in media_root.rglob("*") if p.is_file()]) == 2


def test_two_pollers_over_500_orders_check_each_once_and_attach_each_invoice_once(mifact, media_root):
    rows = make_pending(50, 10)
    invoiced = {r.service_order_id for r in rows[::2]}
    for service_order_id in invoiced:
        mifact.invoice(service_order_id)
    summaries = run_together(
        lambda: service_orders_poll(workers=4),
        lambda: service_orders_poll(workers=4),
    )
    calls = Counter(mifact.status_calls)
    assert set(calls) == {r.service_order_id for r in rows}
    assert max(calls.values()) == 1, [so for so, n in calls.items() if n > 1]
    assert sum(s.checked for s in summaries) == 500
    assert all(s.checked > 0 for s in summaries), "both pollers should have shared the work"
    assert sum(s.invoiced for s in summaries) == 250
    assert Attachment.objects.count() == 250
    assert Counter(Attachment.objects.values_list("service_order_id", flat=True)).most_common(1)[0][1] == 1
    assert ActionHistory.objects.filter(action="service_order_invoiced").count() == 250
    assert OpportunityServiceOrder.objects.filter(facturado=True).count() == 250
    assert len([p for p in media_root.rglob("*") if p.is_file()]) == 250


def test_a_put_and_a_poller_at_once_complete_the_order_once(mifact, media_root, user):
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import AccessToken

    (row,) = make_pending(1, 1)
    mifact.invoice(row.service_order_id)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")

    def put() -> int:
        return client.put(
            f"/opportunity/update-opportunity-procces/{row.opportunity_id}", {"cPatientsname": "Ana"}, format="json"
        ).status_code

    results = run_together(put, lambda: service_orders_poll(opportunity_id=row.opportunity_id, workers=1))
    assert results[0] == 200
    assert Attachment.objects.count() == 1
    assert ActionHistory.objects.filter(action="service_order_invoiced").count() == 1
    assert len(mifact.status_calls) == 1


def test_two_pollers_at_once_attach_each_reissue_once(mifact, media_root, settings):
    import datetime as dt

    from django.utils import timezone

    settings.POLL_BATCH_SIZE = 5  # small claims, so that both pollers get some

    rows = make_pending(20, 5)
    an_hour_ago = timezone.now() - dt.timedelta(hours=2)
    OpportunityServiceOrder.objects.update(
        facturado=True, invoice_result_head_id=1, invoiced_at=an_hour_ago, last_checked_at=an_hour_ago
    )
    for row in rows:  # each comprobante voided and reissued as head 2 at invoice-mifact
        mifact.invoice(row.service_order_id, head_id=2)
    summaries = run_together(
        lambda: service_orders_poll(workers=4),
        lambda: service_orders_poll(workers=4),
    )
    calls = Counter(mifact.status_calls)
    assert max(calls.values()) == 1
    assert sum(s.replaced for s in summaries) == 100
    assert all(s.followed_up > 0 for s in summaries), "both pollers should have shared the work"
    assert ActionHistory.objects.filter(action="service_order_invoice_replaced").count() == 100
    assert Counter(Attachment.objects.values_list("service_order_id", flat=True)).most_common(1)[0][1] == 1
    assert OpportunityServiceOrder.objects.filter(invoice_result_head_id=2).count() == 100
    assert len([p for p in media_root.rglob("*") if p.is_file()]) == 100
