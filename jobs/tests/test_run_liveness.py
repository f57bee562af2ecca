"""A `running` run record whose process cannot be running any more is interrupted: on its own host
when the pid is gone or was reused, anywhere when its heartbeat is too old; a later run writes the
mark and its claims stop holding rows (docs/operations.md "Monitoring", run records)."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.db import IntegrityError, InterfaceError, OperationalError
from django.db.utils import Error as DatabaseError
from django.utils import timezone

from billing.models import OpportunityServiceOrder
from billing.services.poll import service_orders_claim_batch
from crm.database import connection_lost
from jobs.models import CommandRun
from jobs.run_liveness import PROCESS_GONE, process_start_ticks, run_interruption, this_host
from jobs.runs import command_run, runs_mark_interrupted

pytestmark = pytest.mark.django_db


def gone_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def running(**fields) -> CommandRun:
    values = {"command": "poll_invoices", "host": this_host(), "heartbeat_at": timezone.now(), **fields}
    return CommandRun.objects.create(**values)


def test_a_run_on_this_host_whose_process_is_gone_is_interrupted_at_once():
    run = running(pid=gone_pid())
    assert run_interruption(run, now=timezone.now()) == PROCESS_GONE == "interrumpida: el proceso ya no existe"


def test_a_run_of_a_live_process_is_not_interrupted_even_with_an_old_heartbeat():
    pid = os.getpid()
    run = running(
        pid=pid, process_started=process_start_ticks(pid), heartbeat_at=timezone.now() - dt.timedelta(hours=1)
    )
    assert run_interruption(run, now=timezone.now()) == ""


@pytest.mark.skipif(process_start_ticks(os.getpid()) is None, reason="needs Linux /proc")
def test_a_reused_pid_is_another_process():
    pid = os.getpid()
    started = process_start_ticks(pid)
    assert started is not None
    run = running(pid=pid, process_started=started - 1)
    assert run_interruption(run, now=timezone.now()) == PROCESS_GONE


def test_a_run_on_another_host_is_interrupted_only_once_its_heartbeat_is_too_old(settings):
    settings.COMMAND_RUN_STALE_SECONDS = 300
    now = timezone.now()
    run = running(host="otro-servidor", pid=gone_pid(), heartbeat_at=now - dt.timedelta(seconds=200))
    assert run_interruption(run, now=now) == ""
    run.heartbeat_at = now - dt.timedelta(minutes=7)
    assert run_interruption(run, now=now) == "interrumpida: sin señales de vida desde hace 7 min"


def test_a_finished_run_is_never_interrupted():
    run = running(pid=gone_pid(), outcome="ok", finished_at=timezone.now())
    assert run_interruption(run, now=timezone.now()) == ""


def test_a_later_run_marks_the_dead_run_failed_and_leaves_the_live_one():
    beat = timezone.now() - dt.timedelta(minutes=2)
    dead = running(pid=gone_pid(), heartbeat_at=beat)
    alive = running(pid=os.getpid(), process_started=process_start_ticks(os.getpid()))
    with command_run("sync_sv") as run:
        run.finish(outcome="ok", counts={})
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert (dead.outcome, dead.fatal, dead.finished_at) == ("failed", PROCESS_GONE, beat)
    assert alive.outcome == "running"
    assert runs_mark_interrupted() == 0


def test_a_run_records_its_process_and_a_first_heartbeat():
    with command_run("sync_sv") as run:
        row = CommandRun.objects.get(pk=run.run.pk)
        assert (row.host, row.pid, row.process_started) == (this_host(), os.getpid(), process_start_ticks(os.getpid()))
        assert row.heartbeat_at is not None and row.outcome == "running"
        run.finish(outcome="ok", counts={})


def test_the_claims_of_a_killed_run_stop_holding_once_it_is_marked(make_opportunity):
    opportunity = make_opportunity()
    row = OpportunityServiceOrder.objects.create(opportunity=opportunity, service_order_id=456)
    killed = running(pid=gone_pid())
    later = timezone.now() + dt.timedelta(seconds=1)
    assert [r.pk for r in service_orders_claim_batch(limit=10, round_started_at=later, run=killed)] == [row.pk]
    other = running(pid=os.getpid(), process_started=process_start_ticks(os.getpid()))
    assert service_orders_claim_batch(limit=10, round_started_at=later, run=other) == []  # held (300 s)
    assert runs_mark_interrupted() == 1
    assert [r.pk for r in service_orders_claim_batch(limit=10, round_started_at=later, run=other)] == [row.pk]
    row.refresh_from_db()
    assert row.claimed_by_run_id == other.pk


def test_the_next_poll_checks_what_a_killed_run_had_claimed(
    mifact, make_opportunity, django_capture_on_commit_callbacks
):
    row = OpportunityServiceOrder.objects.create(opportunity=make_opportunity(), service_order_id=456)
    killed = running(pid=gone_pid())
    OpportunityServiceOrder.objects.filter(pk=row.pk).update(
        claimed_until=timezone.now() + dt.timedelta(minutes=5), claimed_by_run=killed
    )
    mifact.invoice(456)
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("poll_invoices", "--workers", "1", stdout=out, stderr=io.StringIO())
    assert "checked=1 invoiced=1" in out.getvalue()
    killed.refresh_from_db()
    assert (killed.outcome, killed.fatal) == ("failed", PROCESS_GONE)


class _Cause(Exception):
    def __init__(self, sqlstate):
        super().__init__("x")
        self.sqlstate = sqlstate


def _wrapped(error_class: type[DatabaseError], cause: BaseException | None) -> DatabaseError:
    error = error_class("x")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (_wrapped(InterfaceError, None), True),
        (_wrapped(OperationalError, _Cause("57P01")), True),  # pg_terminate_backend
        (_wrapped(OperationalError, _Cause("08006")), True),  # connection failure
        (_wrapped(OperationalError, _Cause(None)), True),  # the socket closed under the client
        (_wrapped(OperationalError, _Cause("40P01")), False),  # a deadlock: one statement
        (_wrapped(OperationalError, _Cause("55P03")), False),  # lock not available
        (_wrapped(IntegrityError, _Cause("23505")), False),
    ],
)
def test_a_lost_connection_is_told_from_a_failed_statement(error, lost):
    assert connection_lost(error) is lost
