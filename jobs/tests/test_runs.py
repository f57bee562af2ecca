"""Run records of the periodic commands: one row per run, finished even when the run crashes,
pruned after `COMMAND_RUNS_KEEP_DAYS`."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing.models import OpportunityServiceOrder
from jobs.models import CommandRun
from jobs.runs import command_run, last_successful_run

pytestmark = pytest.mark.django_db


def run_command(name: str, *args: str) -> int | str | None:
    try:
        call_command(name, *args, stdout=io.StringIO(), stderr=io.StringIO())
    except SystemExit as exc:
        return exc.code
    return 0


def test_a_poll_run_writes_one_finished_row_with_its_counts(
    mifact, make_opportunity, django_capture_on_commit_callbacks
):
    opportunity = make_opportunity(c_clinic_history="HC-1")
    OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=456)
    mifact.invoice(456)
    with django_capture_on_commit_callbacks(execute=True):  # the PDF moves into storage on commit
        assert run_command("poll_invoices", "--workers", "1") == 0
    run = CommandRun.objects.get()
    assert (run.command, run.outcome, run.fatal) == ("poll_invoices", "ok", "")
    assert run.counts == {
        "pending": 1,
        "checked": 1,
        "invoiced": 1,
        "errors": 0,
        "left": 0,
        "followed_up": 0,
        "replaced": 0,
        "voided": 0,
        "deferred": 0,
        "pauses": 0,
        "paused_seconds": 0,
    }
    assert run.host and run.finished_at is not None and run.finished_at >= run.started_at


def test_a_poll_that_could_check_nothing_is_recorded_failed_with_its_reason(mifact, make_opportunity):
    OpportunityServiceOrder.objects.create(opportunity=make_opportunity(), service_order_id=456)
    mifact.down = True
    assert run_command("poll_invoices", "--workers", "1") == 1
    run = CommandRun.objects.get()
    assert run.outcome == "failed" and "invoice-mifact" in run.fatal
    assert last_successful_run(command="poll_invoices") is None


def test_a_sync_run_is_recorded(db, settings):
    settings.URL_SV = ""
    assert run_command("sync_sv") == 0
    run = CommandRun.objects.get()
    assert (run.command, run.outcome, run.counts["due"]) == ("sync_sv", "ok", 0)


def test_a_crashing_run_leaves_its_row_marked_failed(db, monkeypatch):
    from billing.management.commands import poll_invoices

    def crash(**kwargs):
        raise RuntimeError("disco lleno")

    monkeypatch.setattr(poll_invoices, "service_orders_poll", crash)
    with pytest.raises(RuntimeError):
        run_command("poll_invoices")
    run = CommandRun.objects.get()
    assert run.outcome == "failed" and run.fatal == "RuntimeError: disco lleno" and run.finished_at is not None


def test_rows_older_than_the_keep_days_are_pruned_by_the_next_run(db, settings):
    settings.COMMAND_RUNS_KEEP_DAYS = 30
    old = CommandRun.objects.create(command="sync_sv", host="a", started_at=timezone.now() - dt.timedelta(days=31))
    recent = CommandRun.objects.create(command="sync_sv", host="a", started_at=timezone.now() - dt.timedelta(days=29))
    with command_run("sync_sv") as run:
        run.finish(outcome="ok", counts={})
    assert not CommandRun.objects.filter(pk=old.pk).exists()
    assert CommandRun.objects.filter(pk=recent.pk).exists()
    assert CommandRun.objects.count() == 2
