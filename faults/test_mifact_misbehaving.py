"""invoice-mifact misbehaving in each way the issue lists (issue 17 B): its status call answers an
HTML page, JSON cut short, 500, 401 after a good sign-in, or hangs past the client's timeout; or
the comprobante URL it reports answers 404, is not a PDF, or is cut mid-body. The PUT answers
JSON, the poll ends with its summary and no traceback, nothing is half-done, and once
invoice-mifact behaves again the next poll completes the O.S."""

from __future__ import annotations

import itertools

from devtools.testing import make_pdf
from e2e import bodies
from faults import invariants
from faults.support import SUMMARY_RE

_IDS = itertools.count(840001)
STATUS_FAULTS = ["html", "truncated_json", "error_500", "unauthorized", "hang"]
URL_FAULTS = ["comprobante_404", "comprobante_not_pdf", "comprobante_cut"]
#: Seconds a hanging status call waits (the suite's INVOICE_MIFACT_TIMEOUT is 2).
HANG_SECONDS = 5


def _bad_comprobante(pdf_server, fault: str, service_order_id: int) -> str:
    path = f"/malos/{fault}-{service_order_id}.pdf"
    pdf = make_pdf(f"O.S {service_order_id}")
    if fault == "comprobante_404":
        pdf_server.route(path, status=404, body=b"<html><body>Not Found</body></html>")
    elif fault == "comprobante_not_pdf":
        pdf_server.route(path, body=b"<!DOCTYPE html><html><body>Comprobante</body></html>")
    else:  # announced whole, the connection closed half-way
        pdf_server.route(path, body=pdf[: len(pdf) // 2], headers={"Content-Length": str(len(pdf))})
    return pdf_server.url(path)


def _register(scene, api, fault: str) -> tuple[str, int, list[str]]:
    """An O.S that invoice-mifact reports invoiced, registered by a PUT that checks it at once
    against the misbehaving service; returns (opportunity, O.S, problems with the PUT's answer)."""
    stack = scene.stack
    service_order_id = next(_IDS)
    opportunity_id = api.create_opportunity(f"Fallas - invoice-mifact {fault}")["id"]
    if fault in URL_FAULTS:
        stack.mifact_urls(service_order_id, {"soles": _bad_comprobante(stack.pdf_server, fault, service_order_id)})
    stack.mifact.invoice(service_order_id, soles=True, dolares=True, head_id=service_order_id)
    put = api.put(
        f"/opportunity/update-opportunity-procces/{opportunity_id}",
        json=bodies.service_orders(f"HC-{service_order_id}", [service_order_id]),
    )
    if put.status_code != 200 or not put.headers.get("Content-Type", "").startswith("application/json"):
        return opportunity_id, service_order_id, [f"the PUT answered {put.status_code}: {put.text[:300]}"]
    return opportunity_id, service_order_id, []


def _poll_problems(scene, opportunity_ids: list[str]) -> list[str]:
    """Run poll_invoices against the misbehaving service: its summary, no traceback, the O.S left
    pending with the error recorded, no attachment, nothing left behind."""
    poll = scene.manage("poll_invoices")
    problems = []
    lines = [line for line in poll.stdout.splitlines() if line.strip()]
    if poll.returncode not in (0, 1) or len(lines) != 1 or not SUMMARY_RE.match(lines[0]):
        problems.append(f"poll_invoices exited {poll.returncode} with stdout {poll.stdout[-400:]!r}")
    if "Traceback" in poll.stderr + poll.stdout:
        problems.append(f"poll_invoices printed a traceback: {poll.stderr[-800:]}")
    rows = scene.stack.query(
        "SELECT s.service_order_id, s.facturado, s.last_error, "
        "(SELECT count(*) FROM opportunity_attachment a WHERE a.opportunity_id = s.opportunity_id) AS attachments "
        "FROM opportunity_service_order s WHERE s.opportunity_id = ANY(%s)",
        opportunity_ids,
    )
    for row in rows:
        if row["facturado"] or not row["last_error"] or row["attachments"]:
            problems.append(f"O.S {row['service_order_id']}: expected pending, its error kept, no attachment: {row}")
    return problems + invariants.all_problems(scene)


def test_invoice_mifact_misbehaving_leaves_service_orders_pending_and_the_next_poll_completes_them(scene, api):
    stack = scene.stack
    problems: list[str] = []
    opportunities: list[str] = []
    for fault in STATUS_FAULTS:
        stack.mifact_faults(mode=fault, hangSeconds=HANG_SECONDS)
        opportunity_id, _, put_problems = _register(scene, api, fault)
        opportunities.append(opportunity_id)
        problems += [f"{fault}: {p}" for p in put_problems + _poll_problems(scene, [opportunity_id])]
    stack.mifact_faults(mode=None)
    registered = [_register(scene, api, fault) for fault in URL_FAULTS]
    problems += [f"{fault}: {p}" for fault, (_, _, found) in zip(URL_FAULTS, registered, strict=True) for p in found]
    url_opportunities = [opportunity_id for opportunity_id, _, _ in registered]
    problems += [f"{', '.join(URL_FAULTS)}: {p}" for p in _poll_problems(scene, url_opportunities)]
    opportunities += url_opportunities

    for _, service_order_id, _ in registered:
        stack.mifact_urls(service_order_id, {})
    healed = scene.manage("poll_invoices")
    pending = stack.pending_service_orders(opportunities)
    if healed.returncode != 0 or pending:
        problems.append(f"once invoice-mifact behaved, poll_invoices exited {healed.returncode}, {pending} pending")
    problems += invariants.all_problems(scene)
    assert not problems, "\n".join(problems)
