"""The database drops every connection (`pg_terminate_backend`, as in a failover) during a poll and
during a burst of PUTs (issue 17 B; defects A.3 and A.5)."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from devtools.testing import make_pdf
from e2e import bodies
from e2e.harness import json_error
from faults import invariants
from faults.support import SUMMARY_RE, closing_body

_IDS = itertools.count(830001)


def test_connections_terminated_during_a_poll_leave_a_failed_run_and_the_next_run_completes_everything(scene, api):
    stack = scene.stack
    opportunities, service_orders = [], []
    for _ in range(6):
        ids = [next(_IDS) for _ in range(4)]
        opportunity_id = api.create_opportunity(f"Fallas - caída de la base {ids[0]}")["id"]
        api.put_process(opportunity_id, bodies.service_orders(f"HC-{ids[0]}", ids))
        opportunities.append(opportunity_id)
        service_orders += ids
    for service_order_id in service_orders:
        stack.mifact.invoice(service_order_id, soles=True, dolares=True, head_id=service_order_id)
    stack.mifact_faults(latencySeconds=0.25)  # 24 O.S, 4 workers: a run of about 2 s
    offset = stack.mifact.log_offset()

    poll = scene.popen("poll_invoices", "--workers", "4")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(1 for r in stack.mifact.requests_since(offset) if "/files/" in r[1]) < 4:
        time.sleep(0.02)
    terminated = stack.terminate_backends()
    time.sleep(0.3)
    terminated += stack.terminate_backends()
    stdout, stderr = poll.communicate(timeout=120)
    stack.mifact_faults(latencySeconds=0)
    run = stack.query(
        "SELECT outcome, finished_at FROM crm_commandrun WHERE command = 'poll_invoices' AND started_at >= %s "
        "ORDER BY started_at DESC LIMIT 1",
        scene.started_at,
    )
    after = scene.manage("poll_invoices")

    scene.figure(
        f"pg_terminate_backend during poll_invoices ({terminated} connections): exit {poll.returncode}, "
        f"{stderr.count('Traceback')} tracebacks in {len(stderr.splitlines())} lines of stderr; the next run: "
        f"{after.stdout.strip()}"
    )
    problems = []
    lines = [line for line in stderr.splitlines() if line.strip()]
    if poll.returncode != 1 or len(lines) != 1 or "Traceback" in stderr:
        problems.append(
            f"the run hit by the drop: exit {poll.returncode}, stderr {len(lines)} lines: {stderr[-600:]!r}"
        )
    if not any(SUMMARY_RE.match(line) for line in stdout.splitlines()):
        problems.append(f"the run hit by the drop printed no summary line: {stdout[-300:]!r}")
    if not run or run[0]["outcome"] != "failed" or run[0]["finished_at"] is None:
        problems.append(f"its run record is {run}, not finished as failed")
    if after.returncode != 0:
        problems.append(f"the next poll_invoices exited {after.returncode}: {after.stderr[-600:]}")
    pending = stack.pending_service_orders(opportunities)
    if pending:
        problems.append(f"{len(pending)} O.S still pending after the next run (claims of the dropped run held?)")
    problems += invariants.all_problems(scene)
    assert not problems, "\n".join(problems)


def test_connections_terminated_during_a_burst_of_puts_answer_json_and_lose_nothing(scene, api):
    stack = scene.stack
    jobs = []
    for _ in range(16):
        reservation_id = next(_IDS)
        opportunity_id = api.create_opportunity(f"Fallas - ráfaga {reservation_id}")["id"]
        urls = {}
        for currency in ("soles", "dolares"):
            path = f"/rafaga/{reservation_id}-{currency}.pdf"
            stack.pdf_server.route(path, body=make_pdf(f"Ráfaga {reservation_id} {currency}"))
            urls[currency] = stack.pdf_server.url(path)
        close = closing_body(reservation_id, f"HC-{reservation_id}", urls)
        steps = [bodies.data_and_appointment(reservation_id), close]
        jobs.append((opportunity_id, steps))
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()
    done = threading.Event()

    def run(job: tuple[str, list[dict[str, Any]]]) -> None:
        opportunity_id, steps = job
        with stack.session(stack.token) as http:
            for body in steps:
                for _ in range(6):  # the front-end sends a failed PUT again
                    try:
                        response = http.put(f"/opportunity/update-opportunity-procces/{opportunity_id}", json=body)
                    except requests.RequestException as exc:
                        with lock:
                            answers.append((0, repr(exc)))
                        continue
                    with lock:
                        answers.append((response.status_code, response.text[:200]))
                    if response.status_code == 200:
                        break
                    error = json_error(response, response.status_code)
                    if error:
                        with lock:
                            answers.append((-1, f"not a JSON error: {error}"))
                    time.sleep(0.2)

    def terminator() -> int:
        count = 0
        for _ in range(4):
            if done.wait(0.4):
                break
            count += stack.terminate_backends()
        return count

    with ThreadPoolExecutor(5) as pool:
        killing = pool.submit(terminator)
        futures = [pool.submit(lambda part: [run(job) for job in part], jobs[i::4]) for i in range(4)]
        for future in futures:
            future.result(timeout=180)
        done.set()
        terminated = killing.result()

    # Connections dropped while idle: the next requests of each worker must not fail (A.5).
    stack.terminate_backends()
    with ThreadPoolExecutor(4) as pool:
        after = list(pool.map(lambda i: api.get(f"/opportunity/{jobs[i % len(jobs)][0]}").status_code, range(8)))
    final = scene.manage("poll_invoices")

    statuses = sorted({status for status, _ in answers})
    scene.figure(
        f"pg_terminate_backend x4 ({terminated} connections) during 32 PUTs by 4 clients: answers {statuses}, "
        f"{sum(1 for s, _ in answers if s != 200)} retried; the 8 requests after an idle drop: {after}"
    )
    problems = [f"answer {status}: {text}" for status, text in answers if status not in (200, 503)]
    if after != [200] * 8:
        problems.append(f"requests after the connections were dropped while idle answered {after}")
    if final.returncode != 0:
        problems.append(f"poll_invoices exited {final.returncode}: {final.stderr[-600:]}")
    closed = stack.query(
        "SELECT count(*) AS n FROM opportunity WHERE id = ANY(%s) AND c_facturacion_sub_estado = 'factura_directa'",
        [opportunity_id for opportunity_id, _ in jobs],
    )[0]["n"]
    if closed != len(jobs):
        problems.append(f"{len(jobs) - closed} of {len(jobs)} opportunities not closed")
    problems += invariants.all_problems(scene)
    assert not problems, "\n".join(problems)
