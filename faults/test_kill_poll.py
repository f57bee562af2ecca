"""SIGKILL swept across the completion of an invoiced O.S by `manage.py poll_invoices` (issue 17 B;
defects A.1 and A.2): cron killing a long run, the OOM killer."""

from __future__ import annotations

import itertools
import time

from devtools.testing import make_pdf
from e2e import bodies
from faults import invariants
from faults.support import (
    MediaWrites,
    SentMark,
    kill_after,
    kill_at_first_write,
    kill_sweep,
    kills_at_first_write,
    sweep_figure,
)

_IDS = itertools.count(810001)
#: Seconds a killed run's claims last in this test (production: 300), so the last run retries them.
CLAIM_SECONDS = 2


def _invoiced_service_order(stack, api, pdf_server) -> tuple[str, int, SentMark]:
    """An opportunity closed with one O.S that invoice-mifact reports invoiced, its comprobantes
    (soles, dolares) on the PDF server; the mark fires after the last byte of the second one."""
    service_order_id = next(_IDS)
    opportunity_id = api.create_opportunity(f"Fallas - poll {service_order_id}")["id"]
    api.put_process(opportunity_id, bodies.service_orders(f"HC-{service_order_id}", [service_order_id]))
    mark = SentMark()
    urls = {}
    for currency in ("soles", "dolares"):
        path = f"/mifact/os-{service_order_id}-{currency}.pdf"
        pdf = make_pdf(f"O.S {service_order_id} {currency}")
        pdf_server.route(path, body=pdf, on_sent=mark if currency == "dolares" else None)
        urls[currency] = pdf_server.url(path)
    stack.mifact_urls(service_order_id, urls)
    stack.mifact.invoice(service_order_id, soles=True, dolares=True, head_id=service_order_id)
    return opportunity_id, service_order_id, mark


def _kill_one(scene, api, offset: float) -> tuple[float | None, str, str]:
    """One poll run killed `offset` s after the last PDF byte: (real offset, close state, opportunity)."""
    stack = scene.stack
    opportunity_id, _, mark = _invoiced_service_order(stack, api, stack.pdf_server)
    poll = scene.popen("poll_invoices", "--opportunity", opportunity_id, POLL_CLAIM_SECONDS=str(CLAIM_SECONDS))
    real = kill_after(mark, offset, poll.pid)
    poll.communicate(timeout=60)
    return real, invariants.close_state(scene, opportunity_id), opportunity_id


def _kill_at_first_write(scene, api) -> tuple[bool, str, str]:
    """One poll run killed the moment it stores the first file in MEDIA_ROOT: (fired, state, opportunity)."""
    stack = scene.stack
    opportunity_id, _, _ = _invoiced_service_order(stack, api, stack.pdf_server)
    with MediaWrites(stack.media) as writes:
        poll = scene.popen("poll_invoices", "--opportunity", opportunity_id, POLL_CLAIM_SECONDS=str(CLAIM_SECONDS))
        fired = kill_at_first_write(writes, poll.pid)
        poll.communicate(timeout=60)
    return fired, invariants.close_state(scene, opportunity_id), opportunity_id


def test_sigkill_swept_across_a_poll_completion_loses_no_comprobante(scene, api):
    stack = scene.stack
    sweep = kill_sweep(lambda offset: _kill_one(scene, api, offset), lambda result: (result[0], result[1]))
    at_write = [_kill_at_first_write(scene, api) for _ in range(kills_at_first_write())]
    last_kill = time.monotonic()
    opportunities = [opportunity_id for _, _, opportunity_id in sweep + at_write]
    no_download = sum(1 for real, _, _ in sweep if real is None)
    seen = [(real, state) for real, state, _ in sweep if real is not None]
    states = sweep_figure(
        scene,
        seen,
        [(fired, state) for fired, state, _ in at_write],
        killed="poll_invoices",
        after="the last PDF byte",
        leftover_of="runs",
    )

    # The next cron run, once the killed runs' claims have expired, completes what they left.
    time.sleep(max(0.0, last_kill + CLAIM_SECONDS + 0.5 - time.monotonic()))
    final = scene.manage("poll_invoices")

    problems = [f"{no_download} runs never downloaded the comprobantes"] if no_download else []
    if unfired := sum(1 for fired, _, _ in at_write if not fired):
        problems.append(f"{unfired} runs stored no file in MEDIA_ROOT")
    if not states["untouched"] or states["untouched"] == len(seen):
        problems.append(f"the sweep did not straddle the completion: {dict(states)}")
    if final.returncode != 0 or "Traceback" in final.stderr:
        problems.append(f"the last poll_invoices exited {final.returncode}: {final.stdout} {final.stderr[-800:]}")
    pending = stack.pending_service_orders(opportunities)
    if pending:
        problems.append(f"{len(pending)} O.S still pending after the last poll_invoices")
    problems += invariants.all_problems(scene)
    assert not problems, f"{scene.figures[-1]}\n" + "\n".join(problems)
