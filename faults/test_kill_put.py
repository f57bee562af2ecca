"""SIGKILL of the gunicorn worker serving a direct-invoice PUT, swept across the moments after the
last PDF byte (issue 17 B; defects A.1 and A.2): a deploy restarting workers, the OOM killer. The
front-end then sends the PUT again, as it does after a failed request."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import requests

from devtools.testing import make_pdf
from faults import invariants
from faults.support import (
    MediaWrites,
    SentMark,
    closing_body,
    kill_after,
    kill_at_first_write,
    kill_sweep,
    kills_at_first_write,
    pid_with_local_port,
    retry_put,
    sweep_figure,
)

_IDS = itertools.count(820001)


def _wait_for_workers(stack, count: int = 2, timeout: float = 30.0) -> None:
    """Until gunicorn has forked `count` workers again (a new one accepts once it has loaded the application)."""
    deadline = time.monotonic() + timeout
    while len(stack.gunicorn_worker_pids()) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def _kill_one(scene, api, offset: float | None) -> dict[str, Any]:
    """One direct-invoice PUT whose worker is killed `offset` s after the last PDF byte (None: when
    it stores the first file in MEDIA_ROOT)."""
    stack = scene.stack
    reservation_id = next(_IDS)
    opportunity_id = api.create_opportunity(f"Fallas - PUT {reservation_id}")["id"]
    mark, worker = SentMark(), {}

    def find_worker(client: tuple[str, int]) -> None:
        worker["pid"] = pid_with_local_port(stack.gunicorn_worker_pids(), client[1])

    urls = {}
    for currency in ("soles", "dolares"):
        path = f"/facturas/{reservation_id}-{currency}.pdf"
        stack.pdf_server.route(
            path,
            body=make_pdf(f"Factura directa {reservation_id} {currency}"),
            on_request=find_worker if currency == "soles" else None,
            on_sent=mark if currency == "dolares" else None,
        )
        urls[currency] = stack.pdf_server.url(path)
    body = closing_body(reservation_id, f"HC-{reservation_id}", urls)
    answer: dict[str, Any] = {}

    def put() -> None:
        with stack.session(stack.token) as http:
            try:
                answer["status"] = http.put(f"/opportunity/update-opportunity-procces/{opportunity_id}", json=body)
            except requests.RequestException as exc:
                answer["error"] = exc

    real = None
    with MediaWrites(stack.media) as writes:
        thread = threading.Thread(target=put)
        thread.start()
        if mark.event.wait(30) and worker.get("pid"):
            if offset is None:  # the moment the first file is stored in MEDIA_ROOT
                real = 0.0 if kill_at_first_write(writes, worker["pid"]) else None
            else:
                real = kill_after(mark, offset, worker["pid"])
        thread.join(60)
    state = invariants.close_state(scene, opportunity_id)
    _wait_for_workers(stack)
    retried = retry_put(api, opportunity_id, body)
    return {"real": real, "state": state, "retry": retried.status_code, "opportunity": opportunity_id}


def test_sigkill_of_the_worker_swept_across_a_direct_invoice_put_loses_no_comprobante(scene, api):
    results = kill_sweep(lambda offset: _kill_one(scene, api, offset), lambda result: (result["real"], result["state"]))
    at_write = [_kill_one(scene, api, None) for _ in range(kills_at_first_write())]
    seen = [(r["real"], r["state"]) for r in results if r["real"] is not None]
    states = sweep_figure(
        scene,
        seen,
        [(r["real"] is not None, r["state"]) for r in at_write],
        killed="the gunicorn worker",
        after="the last PDF byte of a direct-invoice PUT",
        leftover_of="workers",
    )

    # cron's next runs: the SV outbox, and the poll (which sweeps what killed processes left).
    results += at_write
    synced = scene.manage("sync_sv")
    final = scene.manage("poll_invoices")

    problems = []
    if not_killed := [r["opportunity"] for r in results if r["real"] is None]:
        problems.append(f"{len(not_killed)} PUTs were not killed (no PDF request, no worker found, nothing stored)")
    if not states["untouched"] or states["untouched"] == len(seen):
        problems.append(f"the sweep did not straddle the commit: {dict(states)}")
    problems += [f"{r['opportunity']}: the PUT sent again answered {r['retry']}" for r in results if r["retry"] != 200]
    for name, result in (("sync_sv", synced), ("poll_invoices", final)):
        if result.returncode != 0 or "Traceback" in result.stderr:
            problems.append(f"{name} exited {result.returncode}: {result.stdout} {result.stderr[-800:]}")
    closed = scene.stack.query(
        "SELECT count(*) AS n FROM opportunity WHERE id = ANY(%s) AND c_facturacion_sub_estado = 'factura_directa'",
        [r["opportunity"] for r in results],
    )[0]["n"]
    if closed != len(results):
        problems.append(f"{len(results) - closed} opportunities not closed after the PUT was sent again")
    problems += invariants.all_problems(scene)
    assert not problems, f"{scene.figures[-1]}\n" + "\n".join(problems)
