"""`manage.py poll_invoices` as an operator and cron run it: the round, the summary, exit codes."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import OpportunityServiceOrder
from billing.tests.commands import run_command
from devtools.harness import Workspace, hermetic_env
from opportunities.models import Opportunity

pytestmark = pytest.mark.django_db

SUMMARY = re.compile(
    r"^poll_invoices: pending=(\d+) checked=(\d+) invoiced=(\d+) errors=(\d+) left=(\d+) "
    r"followed_up=\d+ replaced=\d+ voided=\d+ deferred=\d+ pauses=\d+ paused_seconds=\d+ seconds=\d+\.\d\d"
)


def run_with_stderr(*args, capture=None):
    """(exit code, stdout lines, stderr text) of one run."""
    code, out, err = run_command("poll_invoices", *args, capture=capture)
    return code, out.strip().splitlines(), err


def run(*args, capture=None):
    code, lines, _ = run_with_stderr(*args, capture=capture)
    return code, lines


def counts(line):
    """(checked, invoiced, errors) of a summary line."""
    return full_counts(line)[1:4]


def full_counts(line):
    """(pending, checked, invoiced, errors, left) of a summary line."""
    match = SUMMARY.match(line)
    assert match, line
    return tuple(int(g) for g in match.groups())


@pytest.fixture
def orders(make_opportunity):
    def make(n_opportunities=2, per_opportunity=2, start=100):
        rows = []
        so = start
        for _ in range(n_opportunities):
            opportunity = make_opportunity(
                stage="Cierre ganado",
                c_clinic_history="HC",
                c_facturacion_sub_estado="orden_servicio_pendiente_factura",
            )
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


def test_service_down_after_sign_in_records_errors_and_exits_1(orders, mifact, monkeypatch):
    rows = orders()
    from billing.services import poll as services

    real = services.MifactClient.sign_in

    def sign_in_then_break(self):
        token = real(self)
        mifact.down = True
        return token

    monkeypatch.setattr(services.MifactClient, "sign_in", sign_in_then_break)
    code, lines = run("--workers", "1")
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


def test_a_run_checks_orders_that_a_put_checked_moments_ago(
    mifact, make_opportunity, put_process, django_capture_on_commit_callbacks
):
    """An operator hears that an invoice was just issued and runs the poller right after the
    front-end's PUT checked the O.S: the run checks it again and completes it."""
    opportunity = make_opportunity(c_clinic_history="HC-1")
    assert put_process(opportunity.pk, {"cOrdenesServicio": [456, 457]}).status_code == 200
    assert sorted(mifact.status_calls) == [456, 457]  # the PUT's own check
    mifact.invoice(456)
    code, lines = run("--workers", "1", capture=django_capture_on_commit_callbacks)
    assert code == 0
    assert full_counts(lines[0]) == (2, 2, 1, 0, 0)
    assert sorted(mifact.status_calls) == [456, 456, 457, 457]
    opportunity.refresh_from_db()
    assert opportunity.c_facturacion_sub_estado == "factura_directa"


def test_a_run_skips_orders_another_run_checked_after_it_started(orders):
    """Overlapping runs never check one O.S twice in a round: the round is the run's own."""
    import datetime as dt

    from django.utils import timezone

    from billing.services.poll import service_orders_claim_batch

    first, second = orders(n_opportunities=1, per_opportunity=2)
    round_started_at = timezone.now()
    OpportunityServiceOrder.objects.filter(pk=first.pk).update(
        last_checked_at=round_started_at + dt.timedelta(seconds=1)
    )
    OpportunityServiceOrder.objects.filter(pk=second.pk).update(
        last_checked_at=round_started_at - dt.timedelta(seconds=1)
    )
    claimed = service_orders_claim_batch(limit=10, round_started_at=round_started_at)
    assert [row.pk for row in claimed] == [second.pk]


def test_orders_registered_after_the_run_started_wait_for_the_next_run(orders):
    from django.utils import timezone

    from billing.services.poll import service_orders_claim_batch

    before = timezone.now()
    orders(n_opportunities=1, per_opportunity=1)
    assert service_orders_claim_batch(limit=10, round_started_at=before) == []


def test_a_second_run_checks_everything_again(orders, mifact):
    orders(n_opportunities=1, per_opportunity=2)
    assert full_counts(run("--workers", "1")[1][0]) == (2, 2, 0, 0, 0)
    assert full_counts(run("--workers", "1")[1][0]) == (2, 2, 0, 0, 0)
    assert len(mifact.status_calls) == 4


def test_service_down_with_orders_pending_exits_1_with_the_reason_on_stderr(orders, mifact):
    orders()
    mifact.down = True
    code, lines, err = run_with_stderr("--workers", "1")
    assert code == 1
    assert len(lines) == 1 and full_counts(lines[0])[-1] == 4
    assert "invoice-mifact" in err and "quedan 4 O.S para la próxima ejecución" in err


def test_service_failing_midway_reports_what_was_left_and_exits_0(orders, mifact, settings, monkeypatch):
    """Some O.S were checked: not the "could check nothing" failure, but the reason is on stderr."""
    orders(n_opportunities=1, per_opportunity=3)
    settings.POLL_BATCH_SIZE = 1
    from billing.mifact import MifactClient

    real = MifactClient.get_invoice_status

    def first_ok_then_down(self, service_order_id, token=None):
        try:
            return real(self, service_order_id, token)
        finally:
            mifact.down = True

    monkeypatch.setattr(MifactClient, "get_invoice_status", first_ok_then_down)
    code, lines, err = run_with_stderr("--workers", "1")
    assert code == 0
    pending, checked, invoiced, errors, left = full_counts(lines[0])
    assert (pending, checked, left) == (3, 1, 2)
    assert "quedan 2 O.S" in err


def test_missing_credentials_are_reported_as_missing_not_as_refused(orders, mifact, settings):
    orders()
    settings.INVOICE_MIFACT_USERNAME = ""
    settings.INVOICE_MIFACT_PASSWORD = ""
    code, lines, err = run_with_stderr("--workers", "1")
    assert code == 1
    assert "faltan las credenciales de invoice-mifact" in err
    assert "401" not in lines[0] + err and "rechaz" not in lines[0] + err
    assert mifact.sign_ins == 0


def test_an_unknown_opportunity_exits_2_with_a_spanish_message(db, mifact):
    code, lines, err = run_with_stderr("--opportunity", "no-existe")
    assert code == 2
    assert lines == []
    assert "no existe la oportunidad 'no-existe'" in err


def test_verbosity_2_prints_one_line_per_order_then_the_summary(orders, mifact, django_capture_on_commit_callbacks):
    rows = orders(n_opportunities=1, per_opportunity=2)
    mifact.invoice(rows[0].service_order_id)
    mifact.unknown.add(rows[1].service_order_id)
    code, lines = run("--workers", "1", "-v", "2", capture=django_capture_on_commit_callbacks)
    assert code == 0
    assert sorted(lines[:-1]) == [
        f"O.S {rows[0].service_order_id}: facturada: comprobantes adjuntados",
        f"O.S {rows[1].service_order_id}: error: invoice-mifact respondió 404 para la O.S {rows[1].service_order_id}",
    ]
    assert full_counts(lines[-1]) == (2, 2, 1, 1, 0)


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--limit", "0"], "opción --limit: debe ser un número entero mayor o igual a 1"),
        (["--workers", "x"], "opción --workers: «x» no es un número entero"),
        (["--limit"], "la opción --limit necesita un valor"),
        (["--nope"], "opciones no reconocidas: --nope"),
    ],
)
def test_option_errors_are_spanish_and_exit_2(db, args, expected):
    with pytest.raises(CommandError) as raised:
        call_command("poll_invoices", *args)
    assert str(raised.value) == f"Error: {expected}"
    assert raised.value.returncode == 2


def test_option_errors_from_the_command_line_are_spanish_and_exit_2():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "manage.py", "poll_invoices", "--limit", "0"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "ENV_FILE": "", "DEBUG": "true"},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "opción --limit: debe ser un número entero mayor o igual a 1" in result.stderr
    assert "usage" not in result.stderr and "argument" not in result.stderr


def test_query_count_per_pending_order_is_constant(orders, mifact, django_assert_max_num_queries):
    orders(n_opportunities=5, per_opportunity=4)
    # claim batch (select + update + fetch) + per O.S: claim update + result update; plus count;
    # the run record's own: running records to mark interrupted, the release of its claims.
    with django_assert_max_num_queries(10 + 2 * 20):
        code, lines = run("--workers", "1")
    assert counts(lines[0]) == (20, 0, 0)


@pytest.mark.parametrize("command", ["poll_invoices", "attachments_check"])
def test_an_unknown_opportunity_from_the_command_line_exits_2_with_one_spanish_line(command):
    """What cron and an operator see: Django's `CommandError: <message>` (docs/decisions.md)."""
    with Workspace("crm-cli-") as workspace:
        env = hermetic_env(
            {"DEBUG": "true", "DATABASE_URL": f"sqlite:///{workspace.dir / 'crm.sqlite3'}", **workspace.files_env}
        )
        workspace.manage(env, "migrate", "-v0")
        result = workspace.manage_run(env, command, "--opportunity", "no-existe")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "CommandError: no existe la oportunidad 'no-existe'\n"
