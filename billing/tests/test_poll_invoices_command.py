"""`manage.py poll_invoices` (source document section 7; CONTRACT.md 7)."""
from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from billing.models import OpportunityServiceOrder
from opportunities.models import Opportunity

pytestmark = pytest.mark.django_db

SUMMARY = re.compile(r"^poll_invoices: checked=(\d+) invoiced=(\d+) errors=(\d+) seconds=\d+\.\d\d")


def run(*args, capture=None):
    out = io.StringIO()
    code = 0
    try:
        if capture is not None:
            with capture(execute=True):
                call_command("poll_invoices", *args, stdout=out)
        else:
            call_command("poll_invoices", *args, stdout=out)
    except SystemExit as exc:
        code = exc.code
    lines = out.getvalue().strip().splitlines()
    return code, lines


def counts(line):
    match = SUMMARY.match(line)
    assert match, line
    return tuple(int(g) for g in match.groups())


@pytest.fixture
def orders(make_opportunity):
    def make(n_opportunities=2, per_opportunity=2, start=100):
        rows = []
        so = start
        for _ in range(n_opportunities):
            opportunity = make_opportunity(stage="Cierre ganado", c_clinic_history="HC",
                                           c_facturacion_sub_estado="orden_servicio_pendiente_factura")
            for _ in range(per_opportunity):
                rows.append(OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=so))
                so += 1
        return rows

    return make


def test_poll_checks_every_pending_order_and_prints_one_summary(orders, mifact, django_capture_on_commit_callbacks):
    rows = orders()
    mifact.invoice(rows[0].service_order_id)
    code, lines = run("--workers", "1", capture=django_capture_on_commit_callbacks)
    assert code == 0
    assert len(lines) == 1
    assert counts(lines[0]) == (4, 1, 0)
    assert sorted(mifact.status_calls) == sorted(r.service_order_id for r in rows)
    assert mifact.sign_ins == 1
    first = Opportunity.objects.get(pk=rows[0].opportunity_id)
    assert first.c_facturacion_sub_estado == "factura_directa" and first.is_presaved is False
    assert OpportunityServiceOrder.objects.filter(facturado=False).count() == 3


def test_nothing_pending_exits_0_without_signing_in(db, mifact):
    code, lines = run()
    assert code == 0
    assert counts(lines[0]) == (0, 0, 0)
    assert mifact.sign_ins == 0


def test_sign_in_failure_exits_1(orders, mifact):
    orders()
    mifact.down = True
    code, lines = run("--workers", "1")
    assert code == 1
    assert counts(lines[0]) == (0, 0, 0)
    assert "fatal=" in lines[0]


def test_not_configured_exits_1(orders, settings):
    orders()
    settings.URL_INVOICE_MIFACT_V3 = ""
    code, lines = run("--workers", "1")
    assert code == 1


def test_service_down_after_sign_in_records_errors_and_exits_1(orders, mifact):
    rows = orders()
    from billing import services

    real = services.MifactClient.sign_in

    def sign_in_then_break(self):
        token = real(self)
        mifact.down = True
        return token

    services.MifactClient.sign_in = sign_in_then_break
    try:
        code, lines = run("--workers", "1")
    finally:
        services.MifactClient.sign_in = real
    assert code == 1
    assert counts(lines[0])[2] == len(rows)
    assert all("invoice-mifact" in r.last_error for r in OpportunityServiceOrder.objects.all())
    assert all(r.last_checked_at is not None for r in OpportunityServiceOrder.objects.all())


def test_a_failing_order_does_not_stop_the_run(orders, mifact, django_capture_on_commit_callbacks):
    rows = orders()
    mifact.invoice(rows[0].service_order_id, broken=True)
    mifact.invoice(rows[1].service_order_id)
    code, lines = run("--workers", "1", capture=django_capture_on_commit_callbacks)
    assert code == 0
    assert counts(lines[0]) == (4, 1, 1)


def test_opportunity_option_checks_only_that_opportunity(orders, mifact):
    rows = orders()
    code, lines = run("--opportunity", rows[0].opportunity_id, "--workers", "1")
    assert counts(lines[0]) == (2, 0, 0)
    assert sorted(mifact.status_calls) == [rows[0].service_order_id, rows[1].service_order_id]


def test_limit_option_bounds_the_run(orders, mifact):
    orders(n_opportunities=3, per_opportunity=3)
    code, lines = run("--limit", "4", "--workers", "1")
    assert counts(lines[0]) == (4, 0, 0)
    assert len(mifact.status_calls) == 4


def test_a_sweep_skips_orders_checked_moments_ago(orders, mifact, make_opportunity, put_process):
    rows = orders(n_opportunities=1, per_opportunity=1)
    code, lines = run("--workers", "1")
    assert counts(lines[0]) == (1, 0, 0)
    code, lines = run("--workers", "1")
    assert counts(lines[0]) == (0, 0, 0)
    # An explicit --opportunity check does not wait.
    code, lines = run("--opportunity", rows[0].opportunity_id, "--workers", "1")
    assert counts(lines[0]) == (1, 0, 0)


def test_invalid_options_are_refused(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("poll_invoices", "--limit", "0")
    with pytest.raises(CommandError):
        call_command("poll_invoices", "--workers", "0")


def test_cron_runs_poll_invoices_every_5_minutes(settings):
    assert ("*/5 * * * *", "django.core.management.call_command", ["poll_invoices"]) in settings.CRONJOBS
    assert settings.CRONTAB_LOCK_JOBS is True


def test_query_count_per_pending_order_is_constant(orders, mifact, django_assert_max_num_queries):
    orders(n_opportunities=5, per_opportunity=4)
    # claim batch (select + update + fetch) + per O.S: claim update + result update; plus count.
    with django_assert_max_num_queries(8 + 2 * 20):
        code, lines = run("--workers", "1")
    assert counts(lines[0]) == (20, 0, 0)
