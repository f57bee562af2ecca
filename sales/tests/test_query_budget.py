"""Query budgets of the process update: bounded, and independent of how much the
opportunity already has (meetings, attachments, service orders)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from billing.models import OpportunityServiceOrder
from jobs.webhooks import active_endpoints
from opportunities.models import Attachment, Meeting
from sales.example_bodies import DATA_AND_APPOINTMENT

MAIN_AND_APPOINTMENT = {**DATA_AND_APPOINTMENT, "cClinicHistory": "HC-000123"}


def measure(api_client: Any, opportunity_id: str, body: dict, monkeypatch: Any) -> tuple[int, int, int]:
    """(status, queries, commits) of one PUT. SQLite logs BEGIN (IMMEDIATE)/COMMIT as queries; they are
    not counted as queries here (PostgreSQL does not log them), commits are counted apart."""
    wrapper = connections["default"]
    commits = []
    real_commit = wrapper.commit

    def counting_commit() -> None:
        commits.append(1)
        real_commit()

    with monkeypatch.context() as patch:
        patch.setattr(wrapper, "commit", counting_commit)
        with CaptureQueriesContext(wrapper) as captured:
            response = api_client.put(f"/opportunity/update-opportunity-procces/{opportunity_id}", body, format="json")
    queries = [q for q in captured if not q["sql"].startswith(("BEGIN", "COMMIT"))]
    return response.status_code, len(queries), len(commits)


@pytest.mark.django_db(transaction=True)
def test_a_put_without_urls_or_service_orders_does_at_most_10_queries_and_one_commit(
    api_client, make_opportunity, monkeypatch
):
    opportunity = make_opportunity()
    status, queries, commits = measure(api_client, opportunity.pk, MAIN_AND_APPOINTMENT, monkeypatch)
    assert status == 200
    assert queries <= 10, queries
    assert commits == 1
    # The same body again changes nothing and costs less.
    status, again, commits = measure(
        api_client, opportunity.pk, {**MAIN_AND_APPOINTMENT, "cDoctor": "Dr. Salas"}, monkeypatch
    )
    assert status == 200 and again <= 10 and commits == 1


@pytest.mark.django_db(transaction=True)
def test_put_queries_do_not_grow_with_meetings_attachments_or_service_orders(api_client, make_opportunity, monkeypatch):
    def loaded(n: int) -> str:
        opportunity = make_opportunity(c_clinic_history="HC-1")
        for index in range(n):
            Meeting.objects.create(opportunity=opportunity, name=f"Cita {index}", reservation_id=10_000 + index)
            Attachment.objects.create(
                opportunity=opportunity,
                kind="comprobante_soles",
                file=f"x/{index}.pdf",
                file_name=f"{index}.pdf",
                size=1,
                sha256=f"{index:064d}",
                source_url="http://x",
            )
            OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=index + 1, facturado=True)
        return opportunity.pk

    small, big = loaded(1), loaded(40)
    active_endpoints()  # the process's webhook endpoints, read once per WEBHOOK_ENDPOINTS_CACHE_SECONDS
    counts = [measure(api_client, pk, MAIN_AND_APPOINTMENT, monkeypatch)[1] for pk in (small, big)]
    assert counts[0] == counts[1], counts


@pytest.mark.django_db(transaction=True)
def test_the_meeting_is_read_after_the_opportunity_is_locked(api_client, make_opportunity):
    """Updating an existing meeting (main + appointment data): the locking read of the opportunity
    alone, then the meeting read by its own statement (it must see what a transaction that held
    the lock just committed), the meeting and opportunity updates, the version bump and one
    history insert; after the commit, no read of pending O.S: an opportunity that is not in
    Cierre ganado has none."""
    opportunity = make_opportunity()
    body = {key: value for key, value in MAIN_AND_APPOINTMENT.items() if key != "cClinicHistory"}
    url = f"/opportunity/update-opportunity-procces/{opportunity.pk}"
    assert api_client.put(url, body, format="json").status_code == 200
    with CaptureQueriesContext(connections["default"]) as captured:
        response = api_client.put(url, {**body, "cDoctor": "Dr. Salas"}, format="json")
    assert response.status_code == 200
    statements = [q["sql"] for q in captured if not q["sql"].startswith(("BEGIN", "COMMIT"))]
    tables = [
        (sql.split()[0], sql.split('FROM "')[-1].split('"')[0] if sql.startswith("SELECT") else "")
        for sql in statements
    ]
    assert tables == [
        ("SELECT", "auth_user"),
        ("SELECT", "opportunity"),
        ("SELECT", "opportunity_meeting"),
        ("UPDATE", ""),
        ("UPDATE", ""),
        ("UPDATE", ""),
        ("INSERT", ""),
    ], statements
    assert "SET version = version + 1" in statements[5]
    assert "JOIN" not in statements[1]
    if connections["default"].vendor == "postgresql":
        assert statements[1].endswith('FOR UPDATE OF "opportunity"')
    assert Meeting.objects.get(opportunity=opportunity).doctor == "Dr. Salas"


@pytest.mark.django_db(transaction=True)
def test_a_closed_opportunity_reads_its_pending_service_orders_after_the_commit(api_client, make_opportunity):
    opportunity = make_opportunity(stage="Cierre ganado", c_facturacion_sub_estado="orden_servicio_pendiente_factura")
    url = f"/opportunity/update-opportunity-procces/{opportunity.pk}"
    with CaptureQueriesContext(connections["default"]) as captured:
        assert api_client.put(url, {"cPatientsname": "Rosa"}, format="json").status_code == 200
    assert 'FROM "opportunity_service_order"' in captured[-1]["sql"]
