"""The staff's pages cost the same however much data there is (docs/admin.md "The opportunity
page", bench/staff_pages.py for the figures at scale): the opportunity page shows the newest
history records only, with a link to the whole history; the lists read a fixed number of queries
and no full-table count."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import OpportunityServiceOrder
from devtools.admin_testing import grant
from opportunities.models import ActionHistory, Opportunity
from sales.admin_history import HISTORY_ON_PAGE

pytestmark = pytest.mark.django_db


def add_history(opportunity: Opportunity, count: int, *, start: int = 1) -> None:
    """`count` records whose sentence names "Doctor-NNN", one minute apart, the highest newest."""
    base = timezone.now() - dt.timedelta(days=1)
    ActionHistory.objects.bulk_create(
        ActionHistory(
            opportunity=opportunity,
            action="opportunity_updated",
            user_name="ventas",
            data={"case": "solo_datos_principales", "changes": {"cDoctor": {"old": "", "new": f"Doctor-{n:03d}"}}},
        )
        for n in range(start, start + count)
    )
    for record in ActionHistory.objects.filter(opportunity=opportunity, created_at__gte=base):
        number = int(record.data["changes"]["cDoctor"]["new"].split("-")[1])
        ActionHistory.objects.filter(pk=record.pk).update(created_at=base + dt.timedelta(minutes=number))


def page_queries(client: Client, url: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries), response.text


def test_the_opportunity_page_shows_the_newest_history_and_links_to_all_of_it(
    staff_client: Client, make_opportunity: Any
) -> None:
    opportunity = make_opportunity(name="Venta larga")
    add_history(opportunity, HISTORY_ON_PAGE + 10)

    page = staff_client.get(reverse("admin:opportunities_opportunity_change", args=[opportunity.pk]))

    text = page.text
    shown = [n for n in range(1, HISTORY_ON_PAGE + 11) if f"Doctor-{n:03d}" in text]
    assert shown == list(range(11, HISTORY_ON_PAGE + 11))  # the newest 50
    assert text.index("Doctor-060") < text.index("Doctor-011")  # newest first
    assert f"Se muestran los {HISTORY_ON_PAGE} registros más recientes de {HISTORY_ON_PAGE + 10}." in text
    link = page.context["history"].all_url
    assert f'href="{link.replace("&", "&amp;")}">Ver todo el historial ({HISTORY_ON_PAGE + 10} registros)' in text

    # The link is the history list filtered to this opportunity: every record, the oldest too.
    make_opportunity(name="Otra venta").history.create(action="opportunity_created", data={"name": "Otra venta"})
    listed = staff_client.get(link)
    assert listed.status_code == 200
    assert {r.opportunity_id for r in listed.context["cl"].result_list} == {opportunity.pk}
    assert listed.context["cl"].result_count == HISTORY_ON_PAGE + 10
    assert "Doctor-001" in listed.text and "Doctor-060" in listed.text


def test_a_short_history_is_shown_whole_with_a_link_to_its_list(staff_client: Client, make_opportunity: Any) -> None:
    opportunity = make_opportunity()
    add_history(opportunity, 3)
    text = staff_client.get(reverse("admin:opportunities_opportunity_change", args=[opportunity.pk])).text
    assert all(f"Doctor-{n:03d}" in text for n in (1, 2, 3))
    assert "Se muestran los" not in text
    assert "Ver el historial en su lista" in text


def test_the_opportunity_page_can_still_be_saved_with_a_long_history(
    admin_client: Client, make_opportunity: Any
) -> None:
    """A correction saves on a page whose history is cut to the newest records."""
    opportunity = make_opportunity(name="Venta larga", c_patientsname="Lucía")
    add_history(opportunity, HISTORY_ON_PAGE + 5)
    url = reverse("admin:opportunities_opportunity_change", args=[opportunity.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {name: ("" if value is None else value) for name, value in form.initial.items() if name in form.fields}
    data["c_patientsname"] = "Lucía Rosa"
    for formset in admin_client.get(url).context["inline_admin_formsets"]:
        management = formset.formset.management_form
        data.update({management.add_prefix(k): v for k, v in management.initial.items()})
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    opportunity.refresh_from_db()
    assert opportunity.c_patientsname == "Lucía Rosa"


def test_the_opportunity_page_reads_as_many_queries_with_5_or_500_history_records(
    staff_client: Client, make_opportunity: Any
) -> None:
    small, large = make_opportunity(name="Corta"), make_opportunity(name="Larga")
    for opportunity in (small, large):
        OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=hash(opportunity.pk) % 10**6)
    add_history(small, 5)
    add_history(large, 500)
    counts = [
        page_queries(staff_client, reverse("admin:opportunities_opportunity_change", args=[o.pk]))[0]
        for o in (small, large)
    ]
    assert counts[0] == counts[1], counts


def add_rows(make_opportunity: Any, count: int, offset: int) -> None:
    """`count` sales, each with a pending O.S (one in three failed) and an invoiced one."""
    for i in range(offset, offset + count):
        opportunity = make_opportunity(name=f"Venta {i}", stage="Cierre ganado", c_clinic_history=f"HC-{i}")
        failed = i % 3 == 0
        OpportunityServiceOrder.objects.create(
            opportunity=opportunity,
            service_order_id=50_000 + i,
            last_error="invoice-mifact: x" if failed else "",
            last_error_kind="unavailable" if failed else "",
            metadata={"numero_os": f"OS-{50_000 + i}"},
        )
        OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=90_000 + i, facturado=True)
        add_history(opportunity, 2)


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:index",
        "admin:billing_saleawaitinginvoice_changelist",
        "admin:billing_opportunityserviceorder_changelist",
        "admin:opportunities_opportunity_changelist",
        "admin:opportunities_actionhistory_changelist",
    ],
)
def test_the_staff_pages_read_as_many_queries_with_5_or_50_sales(
    staff_client: Client, make_opportunity: Any, url_name: str
) -> None:
    url = reverse(url_name)
    add_rows(make_opportunity, 5, 0)
    few, _ = page_queries(staff_client, url)
    add_rows(make_opportunity, 45, 5)
    many, text = page_queries(staff_client, url)
    assert many == few, (few, many)
    if url_name != "admin:index":
        assert "Venta 49" in text or "OS-50049" in text or "Doctor-002" in text  # the rows are really listed


def test_the_history_section_needs_the_history_view_permission(django_user_model: Any, make_opportunity: Any) -> None:
    opportunity = make_opportunity()
    add_history(opportunity, 3)
    user = django_user_model.objects.create_user(username="solo-oportunidades", password="x", is_staff=True)
    grant(user, "opportunities.view_opportunity")
    client = Client()
    client.force_login(user)
    page = client.get(reverse("admin:opportunities_opportunity_change", args=[opportunity.pk]))
    assert page.status_code == 200
    assert 'id="history-group"' not in page.text and "Doctor-001" not in page.text
    grant(user, "opportunities.view_actionhistory")
    user = django_user_model.objects.get(pk=user.pk)  # permissions are cached per user object
    client.force_login(user)
    page = client.get(reverse("admin:opportunities_opportunity_change", args=[opportunity.pk]))
    assert 'id="history-group"' in page.text and "Doctor-001" in page.text
