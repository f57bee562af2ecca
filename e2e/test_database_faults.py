"""`poll_invoices` when the database drops its connections or the run is killed (docs/operations.md
"Monitoring", run records; docs/api.md "Service orders and the poller").

PostgreSQL only (E2E_DATABASE_URL): the faults are the server's (`pg_terminate_backend`, as in a
failover) and the operating system's (SIGKILL, as the OOM killer or cron's timeout). The poll runs
against a second invoice-mifact stand-in that answers slowly, so a run is mid-flight when the
fault lands; its database connections carry their own `application_name` (libpq's `PGAPPNAME`),
so only the poll's backends are terminated, never gunicorn's.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.harness import free_port, mifact_standin_argv
from e2e import bodies
from e2e.harness import MIFACT_PASSWORD, MIFACT_USER, PYTHON, ROOT, MifactControl, Stack
from e2e.test_service_orders import SUMMARY_RE, reads_as_spanish

pytestmark = pytest.mark.skipif(
    not os.environ.get("E2E_DATABASE_URL", "").startswith("postgres"),
    reason="database faults are PostgreSQL's (pg_terminate_backend): set E2E_DATABASE_URL",
)

#: The poll's application_name: the backends the tests terminate.
APP_NAME = "crm-e2e-db-fault"
#: Seconds the slow stand-in waits before answering each status call.
LATENCY_MS = 300
POLL_ENV = {"POLL_WORKERS": "4", "POLL_BATCH_SIZE": "4", "PGAPPNAME": APP_NAME}


@pytest.fixture(scope="module")
def slow_mifact(stack: Stack) -> Iterator[MifactControl]:
    port = free_port()
    argv = mifact_standin_argv(port, MIFACT_USER, MIFACT_PASSWORD, "--latency-ms", str(LATENCY_MS), "--log-requests")
    stack.spawn("slow_mifact", argv)
    control = MifactControl(f"http://127.0.0.1:{port}/api", stack.log_path("slow_mifact"))
    try:
        stack.wait_until_up("slow_mifact", f"{control.base_url}/_standin/state")
        yield control
    finally:
        stack.workspace.stop("slow_mifact")


def _psql(stack: Stack, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(stack.database_url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        cursor = conn.execute(statement, params or None)
        return cursor.fetchall() if cursor.description else []


def _terminate_poll_backends(stack: Stack) -> int:
    rows = _psql(
        stack,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = %s AND pid <> pg_backend_pid()",
        APP_NAME,
    )
    return len(rows)


def _invoiced_pending_orders(
    api: Any, slow_mifact: MifactControl, new_id: Any, name: str
) -> list[tuple[str, list[int]]]:
    """Three opportunities with four O.S each, all invoiced on the slow stand-in (the PUT asked the
    session's stand-in, where they are pending)."""
    registered = []
    for n in range(3):
        ids = [new_id() for _ in range(4)]
        opportunity_id = api.create_opportunity(f"{name} {n}")["id"]
        api.put_process(opportunity_id, bodies.service_orders(f"HC-{ids[0]}", ids))
        for service_order_id in ids:
            slow_mifact.invoice(service_order_id, soles=True, dolares=False, head_id=service_order_id)
        registered.append((opportunity_id, ids))
    return registered


def _start_poll(stack: Stack, slow_mifact: MifactControl, **extra: str) -> subprocess.Popen[str]:
    env = stack.env_with(URL_INVOICE_MIFACT_V3=slow_mifact.base_url, **POLL_ENV, **extra)
    return stack.manage_popen("poll_invoices", env=env)


def _poll_mid_flight(
    stack: Stack, api: Any, slow_mifact: MifactControl, new_id: Any, name: str
) -> tuple[list[tuple[str, list[int]]], list[int], int, subprocess.Popen[str]]:
    """Twelve invoiced O.S and a poll that has checked some of them: (registered, their ids, the
    last run record's id before it, the running poll)."""
    registered = _invoiced_pending_orders(api, slow_mifact, new_id, name)
    before = _last_run_id(stack)
    calls = slow_mifact.state()["status_calls"]
    poll = _start_poll(stack, slow_mifact)
    _wait_for_status_calls(slow_mifact, calls + 5, poll)
    return registered, [so for _, ids in registered for so in ids], before, poll


def _wait_for_status_calls(slow_mifact: MifactControl, at_least: int, poll: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while slow_mifact.state()["status_calls"] < at_least:
        assert poll.poll() is None, f"the poll ended before the fault: {poll.communicate()}"
        assert time.monotonic() < deadline, "the poll never reached invoice-mifact"
        time.sleep(0.02)


def _run_records(stack: Stack, since_id: int) -> list[dict[str, Any]]:
    rows = _psql(
        stack,
        "SELECT id, outcome, fatal, finished_at IS NOT NULL, counts FROM crm_commandrun "
        "WHERE command = 'poll_invoices' AND id > %s ORDER BY id",
        since_id,
    )
    return [{"id": r[0], "outcome": r[1], "fatal": r[2], "finished": r[3], "counts": r[4]} for r in rows]


def _last_run_id(stack: Stack) -> int:
    return _psql(stack, "SELECT coalesce(max(id), 0) FROM crm_commandrun")[0][0]


def _claimed(stack: Stack, ids: list[int]) -> int:
    rows = _psql(
        stack,
        "SELECT count(*) FROM opportunity_service_order WHERE service_order_id = ANY(%s) AND claimed_until > now()",
        ids,
    )
    return rows[0][0]


def _one_stderr_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, f"a traceback on stderr ({stderr.count('Traceback')}):\n{stderr[-3000:]}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr[-3000:]}"
    return lines[0]


def _summary_line(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and SUMMARY_RE.match(lines[0]), f"not one summary line on stdout: {stdout!r}"
    return lines[0]


def _assert_all_completed_once(api: Any, registered: list[tuple[str, list[int]]]) -> None:
    for opportunity_id, ids in registered:
        opportunity = api.opportunity(opportunity_id)
        assert (opportunity["cFacturacionSubEstado"], opportunity["isPresaved"]) == ("factura_directa", False)
        orders = api.listing(opportunity_id, "service-orders")
        assert {(o["serviceOrderId"], o["facturado"]) for o in orders} == {(so, True) for so in ids}, orders
        pairs = Counter((a["serviceOrderId"], a["kind"]) for a in api.listing(opportunity_id, "attachments"))
        assert pairs == Counter({(so, "comprobante_soles"): 1 for so in ids}), pairs
        history = api.listing(opportunity_id, "action-history")
        assert sorted(
            r["data"]["serviceOrderId"] for r in history if r["action"] == "service_order_invoiced"
        ) == sorted(ids)


def _poll_to_completion(stack: Stack, slow_mifact: MifactControl) -> subprocess.CompletedProcess[str]:
    env = stack.env_with(URL_INVOICE_MIFACT_V3=slow_mifact.base_url, POLL_WORKERS="4", POLL_BATCH_SIZE="4")
    return subprocess.run(
        [str(PYTHON), str(ROOT / "manage.py"), "poll_invoices"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_connections_terminated_mid_poll_end_the_run_in_one_spanish_line_and_the_next_run_completes_all(
    stack, api, slow_mifact, new_id
):
    """Regression: an OperationalError escaped from the main thread, each worker printed tracebacks
    on its dead connection (120-238 of them), there was no summary line, and the O.S stayed claimed
    for POLL_CLAIM_SECONDS, so the next run skipped them."""
    registered, all_ids, before, poll = _poll_mid_flight(stack, api, slow_mifact, new_id, "E2E - conexión cortada")
    assert _terminate_poll_backends(stack) >= 1
    stdout, stderr = poll.communicate(timeout=120)

    assert poll.returncode == 1, (poll.returncode, stdout, stderr[-3000:])
    line = _one_stderr_line(stderr)
    assert line.startswith("poll_invoices: ") and "base de datos" in line and reads_as_spanish(line), line
    _summary_line(stdout)
    (record,) = _run_records(stack, before)
    assert (record["outcome"], record["finished"]) == ("failed", True), record
    assert "base de datos" in record["fatal"], record
    assert _claimed(stack, all_ids) == 0, "the run left its O.S claimed although the database was back"

    second = _poll_to_completion(stack, slow_mifact)
    assert second.returncode == 0, (second.stdout, second.stderr)
    assert second.stderr == "", second.stderr
    _assert_all_completed_once(api, registered)


def test_a_database_down_longer_than_the_retries_leaves_nothing_that_blocks_the_next_run(
    stack, api, slow_mifact, new_id
):
    """The database stays unreachable for the poll until it gave up: it cannot even finish its
    record; the next run marks that record interrupted and takes the O.S at once."""
    registered = _invoiced_pending_orders(api, slow_mifact, new_id, "E2E - base caída")
    before = _last_run_id(stack)
    calls = slow_mifact.state()["status_calls"]
    stop = threading.Event()

    def keep_terminating() -> None:
        while not stop.is_set():
            _terminate_poll_backends(stack)
            stop.wait(0.02)

    poll = _start_poll(stack, slow_mifact, COMMAND_DB_RETRY_SECONDS="1")
    _wait_for_status_calls(slow_mifact, calls + 5, poll)
    killer = threading.Thread(target=keep_terminating, daemon=True)
    killer.start()
    try:
        stdout, stderr = poll.communicate(timeout=120)
    finally:
        stop.set()
        killer.join(timeout=10)

    assert poll.returncode == 1, (poll.returncode, stdout, stderr[-3000:])
    line = _one_stderr_line(stderr)
    assert "base de datos" in line and reads_as_spanish(line), line
    _summary_line(stdout)

    second = _poll_to_completion(stack, slow_mifact)
    assert second.returncode == 0, (second.stdout, second.stderr)
    _assert_all_completed_once(api, registered)
    first, _ = _run_records(stack, before)
    assert (first["outcome"], first["finished"]) == ("failed", True), first
    assert "base de datos" in first["fatal"] or first["fatal"].startswith("interrumpida"), first


def test_a_killed_poll_is_marked_interrupted_and_its_claims_do_not_block_the_next_run(stack, api, slow_mifact, new_id):
    """Regression: a SIGKILLed run stayed `running` for ever and its O.S stayed claimed for
    POLL_CLAIM_SECONDS (300 s), so the next run skipped them."""
    registered, all_ids, before, poll = _poll_mid_flight(stack, api, slow_mifact, new_id, "E2E - poll matado")
    poll.kill()
    poll.communicate(timeout=30)
    (killed,) = _run_records(stack, before)
    assert killed["outcome"] == "running", killed
    assert _claimed(stack, all_ids) > 0, "nothing was claimed when the run was killed: the test proves nothing"

    second = _poll_to_completion(stack, slow_mifact)
    assert second.returncode == 0, (second.stdout, second.stderr)
    _assert_all_completed_once(api, registered)
    killed, latest = _run_records(stack, before)
    assert (killed["outcome"], killed["finished"]) == ("failed", True), killed
    assert killed["fatal"] == "interrumpida: el proceso ya no existe", killed
    assert latest["outcome"] == "ok", latest


def test_health_names_an_interrupted_last_poll_as_the_failure(stack, api, manage, slow_mifact, new_id):
    """/health counts a killed run as a failure: with O.S waiting past the limit it is a 503 whose
    reason says the last run was interrupted (not a run in progress)."""
    opportunity_id, ids = api.create_opportunity("E2E - salud con poll matado")["id"], [new_id() for _ in range(6)]
    api.put_process(opportunity_id, bodies.service_orders(f"HC-{ids[0]}", ids))
    poll = _start_poll(stack, slow_mifact)
    _wait_for_status_calls(slow_mifact, slow_mifact.state()["status_calls"] + 2, poll)
    poll.kill()
    poll.communicate(timeout=30)
    # Age the record: every O.S waiting for an hour, the good runs long ago, the killed run's
    # heartbeat 20 minutes old (it is `running` on this host with a pid that is gone).
    script = (
        "import datetime as dt; from django.utils import timezone; "
        "from billing.models import OpportunityServiceOrder as O; from jobs.models import CommandRun as R; "
        "now = timezone.now(); "
        "O.objects.filter(facturado=False).update(created_at=now - dt.timedelta(hours=1)); "
        "R.objects.exclude(outcome='running').filter(command='poll_invoices')"
        ".update(started_at=now - dt.timedelta(hours=2)); "
        "R.objects.filter(outcome='running').update(started_at=now - dt.timedelta(minutes=20))"
    )
    assert manage("shell", "-c", script).returncode == 0
    response = api.health_until(lambda answer: answer.status_code == 503 and "interrumpida" in answer.text)
    assert response.status_code == 503, response.text
    reason = response.json()["reason"]
    assert re.search(r"interrumpida: el proceso ya no existe", reason), reason
    # Leave the session healthy for the tests after this one: the O.S waiting as new, a good run.
    restore = (
        "from django.utils import timezone; from billing.models import OpportunityServiceOrder as O; "
        "O.objects.filter(facturado=False).update(created_at=timezone.now())"
    )
    assert manage("shell", "-c", restore).returncode == 0
    assert manage("poll_invoices").returncode == 0
    # ...and wait out /health's cache (HEALTH_CACHE_SECONDS, 5 s, in each gunicorn worker), so the
    # next test reads no worker's 503 of this one.
    healthy = api.health_until(lambda answer: answer.status_code == 200)
    assert healthy.status_code == 200, "health stayed degraded after a good poll"
    time.sleep(6)
