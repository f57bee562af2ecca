"""The staff's start page (the admin index): its figures, that each links to the admin list that
shows exactly that many rows, the weekly closings, the runs, permissions, and a query count that
does not grow with the rows."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import OpportunityServiceOrder
from crm.tests.test_offline_pages import SAME_ORIGIN_POLICY, policy_of
from devtools.admin_testing import grant
from devtools.workspace_data import Workspace, seed_workspace
from jobs.models import CommandRun
from jobs.run_liveness import this_host
from opportunities.models import ActionHistory, Opportunity
from sales.start_page import WEEKS, cron_frequency, week_start

pytestmark = pytest.mark.django_db

INDEX = "/admin/"
# The start page's queries, whatever the rows: the session and the user, the user's and the
# groups' permissions, then its own nine reads (pending O.S aggregate, the oldest pending O.S,
# O.S on more than one sale, SV aggregate, comprobantes without a valid file, the last run of each
# of the three commands, closings per week).
MAX_QUERIES = 13


def text_of(response: Any) -> str:
    """The page's text as a person reads it (tags removed, spaces collapsed)."""
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))
    return re.sub(r" ([,.)])", r"\1", text)


def result_count(client: Client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.context["cl"].result_count


def test_the_start_page_tells_staff_what_waits_and_why(staff_client: Client, workspace: Workspace) -> None:
    response = staff_client.get(INDEX)
    assert response.status_code == 200
    start = response.context["start"]
    invoices = start.invoices
    assert (invoices.waiting_sales, invoices.pending_orders, invoices.errors) == (3, 4, 2)
    assert invoices.oldest_sale == workspace.jose
    assert invoices.errors_by_actor == {"ti": 1, "facturacion": 1}
    assert [bar.value for bar in invoices.ages] == [1, 1, 1, 1]
    assert (start.deliveries.pending, start.deliveries.failed) == (2, 1)

    text = text_of(response)
    assert "Ventas esperando factura 3" in text
    assert "La que más espera: Procedimiento láser - José Peña, desde hace 10 días" in text
    assert "O.S con error 2 de 4 O.S pendientes" in text
    assert "Debe actuar TI de la clínica: 1" in text and "Debe actuar Facturación: 1" in text
    assert "Pendientes: 2" in text and "Fallidos: 1" in text
    assert "poll_invoices (Consulta de facturas en invoice-mifact): última ejecución" in text
    assert "parcial. El CRM no tiene configurada la conexión con el sistema de facturación" in text
    assert "Debe actuar: TI de la clínica." in text
    assert "sync_sv (Envío de historias clínicas a SV): última ejecución" in text and "correcta" in text
    # Times in the clinic's zone.
    oldest = timezone.localtime(workspace.orders[789].created_at)
    assert f"({oldest:%d/%m/%Y %H:%M})" in text
    # Charts drawn on the server, nothing from other hosts.
    assert response.content.decode().count('<svg class="crm-chart"') == 2
    assert policy_of(response) == SAME_ORIGIN_POLICY
    assert not re.search(r'(?:src|href)="(?:https?:)?//', response.content.decode())


def test_every_number_links_to_the_list_it_counts(staff_client: Client, workspace: Workspace) -> None:
    start = staff_client.get(INDEX).context["start"]
    invoices = start.invoices
    assert result_count(staff_client, invoices.waiting_url) == invoices.waiting_sales == 3
    assert result_count(staff_client, invoices.pending_url) == invoices.pending_orders == 4
    assert result_count(staff_client, invoices.errors_url) == invoices.errors == 2
    for who, count, url in invoices.errors_for:
        assert result_count(staff_client, url) == count == 1, who
    for bar in invoices.ages:
        assert result_count(staff_client, bar.url) == bar.value, bar.label
    assert result_count(staff_client, start.deliveries.pending_url) == 2
    assert result_count(staff_client, start.deliveries.failed_url) == 1
    for run in start.runs:
        assert result_count(staff_client, run.url) == 1
    oldest = staff_client.get(invoices.oldest_url)
    assert oldest.status_code == 200 and workspace.jose.name in oldest.content.decode()
    # The waiting list behind the number starts with the sale that waited longest.
    waiting = staff_client.get(invoices.waiting_url).context["cl"].result_list
    assert [sale.pk for sale in waiting] == [workspace.jose.pk, workspace.lucia.pk, workspace.ramon.pk]
    for column in start.closings.columns:
        for part in column.parts:
            assert result_count(staff_client, part.url) == part.value, (column.label, part.label)


def test_the_numbers_link_from_the_page_itself(staff_client: Client, workspace: Workspace) -> None:
    page = staff_client.get(INDEX).content.decode()
    waiting_list = reverse("admin:billing_saleawaitinginvoice_changelist")
    assert f'<a href="{waiting_list}">3</a>' in page
    links = {unescape(href) for href in re.findall(r'href="([^"]+)"', page)}
    assert reverse("admin:opportunities_opportunity_change", args=[workspace.jose.pk]) in links
    assert any(urlsplit(link).query.startswith("cierre=") for link in links)  # the chart's bars
    assert any("espera=gt7d" in link for link in links)


def test_sales_closed_per_week_count_each_sale_once_by_its_first_closing(
    staff_client: Client, workspace: Workspace
) -> None:
    closings = staff_client.get(INDEX).context["start"].closings
    assert len(closings.columns) == WEEKS
    first_week = week_start(workspace.now - dt.timedelta(weeks=WEEKS - 1))
    expected: dict[tuple[str, str], int] = {}
    for record in workspace.closings:
        if record.created_at < first_week:
            continue
        way = "factura_directa" if record.data["via"] == "cFacturas" else "orden_servicio"
        key = (f"{week_start(record.created_at):%d/%m}", way)
        expected[key] = expected.get(key, 0) + 1
    drawn = {
        (column.label, part.label): part.value for column in closings.columns for part in column.parts if part.value
    }
    labels = {"factura_directa": "Factura directa", "orden_servicio": "Orden de servicio (O.S)"}
    assert drawn == {(week, labels[way]): n for (week, way), n in expected.items()}
    # Lucía, José, Ramón and María by O.S (María's invoice, a second closed_won, is not a sale);
    # Carlos by direct invoice; the 200-day-old closing is outside the 12 weeks.
    assert closings.totals == {"factura_directa": 1, "orden_servicio": 4}


def test_a_closing_late_on_sunday_in_lima_counts_in_that_week(staff_client: Client, make_opportunity: Any) -> None:
    opportunity = make_opportunity()
    now = timezone.now()
    sunday = week_start(now) - dt.timedelta(minutes=30)  # Sunday 23:30 Lima is Monday 04:30 UTC
    record = ActionHistory.objects.create(
        opportunity=opportunity, action="closed_won", data={"subState": "factura_directa", "via": "cFacturas"}
    )
    ActionHistory.objects.filter(pk=record.pk).update(created_at=sunday)
    columns = staff_client.get(INDEX).context["start"].closings.columns
    assert [sum(p.value for p in c.parts) for c in columns][-2:] == [1, 0]


def test_runs_that_never_ran_or_stopped_say_who_must_act(staff_client: Client, make_opportunity: Any) -> None:
    text = text_of(staff_client.get(INDEX))
    assert "poll_invoices (Consulta de facturas en invoice-mifact): nunca se ejecutó" in text
    assert "No hay registro de ninguna ejecución: revisar la tarea programada (cron)." in text
    run = CommandRun.objects.create(command="sync_sv", host="h", outcome="ok", finished_at=timezone.now())
    CommandRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - dt.timedelta(hours=3))
    text = text_of(staff_client.get(INDEX))
    assert "No se ejecuta desde hace 3 h: revisar la tarea programada (cron), que debe correr cada 5 minutos." in text
    assert "send_events (Envío de eventos firmados a otros sistemas): nunca se ejecutó" in text
    assert text.count("Debe actuar: TI de la clínica.") == 3  # poll_invoices and send_events never ran, sync_sv stopped


def test_the_event_sender_is_one_of_the_automatic_processes(staff_client: Client) -> None:
    run = CommandRun.objects.create(command="send_events", host="h", outcome="ok", finished_at=timezone.now())
    response = staff_client.get(INDEX)
    assert 'id="crm-run-send_events" class="crm-ok"' in response.content.decode()
    purpose = r"send_events \(Envío de eventos firmados a otros sistemas\)"
    assert re.search(purpose + r": última ejecución [^.]*, correcta\.", text_of(response))
    CommandRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - dt.timedelta(minutes=40))
    response = staff_client.get(INDEX)
    assert 'id="crm-run-send_events" class="crm-alert"' in response.content.decode()
    assert "que debe correr cada minuto." in text_of(response)


def test_staff_see_only_the_figures_of_the_lists_they_may_open(django_user_model: Any, workspace: Workspace) -> None:
    viewer = grant(
        django_user_model.objects.create_user(username="solo-oportunidades", password="x", is_staff=True),
        "opportunities.view_opportunity",
    )
    client = Client()
    client.force_login(viewer)
    response = client.get(INDEX)
    assert response.status_code == 200
    start = response.context["start"]
    assert (start.invoices, start.deliveries, start.runs, start.closings) == (None, None, None, None)
    assert "Ventas esperando factura" not in response.content.decode()


def _index_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(INDEX).status_code == 200
    return len(queries.captured_queries)


def test_the_start_page_query_count_does_not_grow_with_rows(staff_client: Client, make_opportunity: Any) -> None:
    seed_workspace()
    few = _index_queries(staff_client)
    assert few <= MAX_QUERIES
    for i in range(40):
        opportunity = make_opportunity(name=f"Venta {i}", stage="Cierre ganado", c_clinic_history=f"HC-{i}")
        OpportunityServiceOrder.objects.create(
            opportunity=opportunity, service_order_id=10_000 + i, last_error="x" if i % 3 else "", last_error_kind="x"
        )
        ActionHistory.objects.create(
            opportunity=opportunity, action="closed_won", data={"via": "cOrdenesServicio", "subState": "x"}
        )
    assert Opportunity.objects.count() > 40
    assert _index_queries(staff_client) == few


def test_voided_comprobantes_waiting_for_a_reissue_are_shown_and_linked(
    staff_client: Client, workspace: Workspace
) -> None:
    OpportunityServiceOrder.objects.filter(pk=workspace.orders[457].pk).update(voided_at=timezone.now())
    response = staff_client.get(INDEX)
    assert "Con el comprobante anulado, esperando reemisión: 1" in text_of(response)
    invoices = response.context["start"].invoices
    assert invoices.voided == 1
    assert result_count(staff_client, invoices.voided_url) == 1
    waiting = staff_client.get(reverse("admin:billing_saleawaitinginvoice_changelist"))
    assert "457 (comprobante anulado: espera reemisión)" in text_of(waiting)


def test_a_killed_run_shows_as_interrupted_not_in_progress(staff_client: Client, make_opportunity: Any) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a pid that is gone: the run was killed (SIGKILL, OOM) before it finished
    CommandRun.objects.create(command="poll_invoices", host=this_host(), pid=child.pid, heartbeat_at=timezone.now())
    response = staff_client.get(INDEX)
    text = text_of(response)
    assert re.search(
        r"poll_invoices \(Consulta de facturas en invoice-mifact\): última ejecución [^.]*, interrumpida\.", text
    )
    assert f"Ejecución interrumpida: el proceso ya no existe (servidor {this_host()})" in text
    assert 'id="crm-run-poll_invoices" class="crm-alert"' in response.content.decode()


def test_the_stale_message_says_how_often_cron_runs_the_command(settings: Any) -> None:
    assert [cron_frequency(c) for c in ("poll_invoices", "sync_sv", "send_events")] == [
        "cada 5 minutos",
        "cada 5 minutos",
        "cada minuto",
    ]
    settings.CRONJOBS = [("*/10 * * * *", "crm.cron.command_for_cron", ["poll_invoices"])]
    assert cron_frequency("poll_invoices") == "cada 10 minutos"
    assert cron_frequency("sync_sv") == "según la tarea programada"
