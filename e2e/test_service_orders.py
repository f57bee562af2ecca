"""Service orders (O.S) and the poller, as cron and an operator run it (docs/api.md "Service orders and
the poller")."""

from __future__ import annotations

import re
import subprocess
from collections import Counter

from devtools.harness import free_port
from e2e import bodies

SUMMARY_RE = re.compile(
    r"^poll_invoices: pending=\d+ checked=(\d+) invoiced=(\d+) errors=(\d+) left=\d+ "
    r"followed_up=\d+ replaced=\d+ voided=\d+ deferred=\d+ pauses=\d+ paused_seconds=\d+ seconds=[\d.]+"
)
#: Words that make a one-line reason read as Spanish (at least two must appear).
SPANISH_WORDS = {
    "no",
    "se",
    "pudo",
    "con",
    "el",
    "la",
    "de",
    "del",
    "está",
    "configurada",
    "configurado",
    "conectar",
    "respondió",
    "disponible",
    "servicio",
    "credenciales",
    "rechazó",
}


def summary(stdout: str) -> tuple[int, int, int]:
    """(checked, invoiced, errors) of the one summary line; asserts there is exactly one line."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one summary line on stdout, got: {stdout!r}"
    match = SUMMARY_RE.match(lines[0])
    assert match, f"not a poll_invoices summary line: {lines[0]!r}"
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def reads_as_spanish(text: str) -> bool:
    return len(set(re.findall(r"[a-záéíóúñ]+", text.lower())) & SPANISH_WORDS) >= 2


def register_pending(api, new_id, count: int = 1, name: str = "E2E - O.S") -> tuple[str, list[int]]:
    """An opportunity closed with `count` new O.S (not invoiced yet); returns (id, O.S ids)."""
    ids = [new_id() for _ in range(count)]
    opportunity_id = api.create_opportunity(name)["id"]
    after = api.put_process(opportunity_id, bodies.service_orders(f"HC-{ids[0]}", ids))["opportunity"]
    assert (after["stage"], after["cFacturacionSubEstado"]) == ("Cierre ganado", "orden_servicio_pendiente_factura")
    return opportunity_id, ids


def test_poll_right_after_a_put_completes_the_service_order_invoiced_meanwhile(api, mifact, manage, new_id):
    """Regression: poll_invoices skips every O.S that a PUT checked in the last 30 s
    (a fixed re-check window), so an O.S invoiced just after the PUT waited for a later run."""
    opportunity_id, (service_order_id,) = register_pending(api, new_id, name="E2E - O.S facturada enseguida")
    mifact.invoice(service_order_id, soles=True, dolares=True, head_id=service_order_id)

    result = manage("poll_invoices")

    assert result.returncode == 0, result
    checked, invoiced, errors = summary(result.stdout)
    assert checked >= 1 and invoiced >= 1, f"the O.S the PUT checked a moment ago was skipped: {result.stdout!r}"
    opportunity = api.opportunity(opportunity_id)
    assert (opportunity["stage"], opportunity["cFacturacionSubEstado"], opportunity["isPresaved"]) == (
        "Cierre ganado",
        "factura_directa",
        False,
    )
    (order,) = api.listing(opportunity_id, "service-orders")
    assert order["facturado"] is True and order["invoiceResultHeadId"] == service_order_id
    kinds = sorted(
        a["kind"] for a in api.listing(opportunity_id, "attachments") if a["serviceOrderId"] == service_order_id
    )
    assert kinds == ["comprobante_dolares", "comprobante_soles"]


def test_polling_while_invoice_mifact_is_down_exits_non_zero_with_a_spanish_reason(api, stack, manage, new_id):
    """Regression: with invoice-mifact unreachable, poll_invoices prints urllib3's
    "Retrying" warnings on stderr instead of one Spanish reason; the operator (cron mail) should
    get the summary line on stdout and the reason on stderr, nothing else."""
    register_pending(api, new_id, name="E2E - O.S con invoice-mifact caído")
    # The PUT has just checked the O.S; each run still takes it (the round is the run's own).
    closed_port = f"http://127.0.0.1:{free_port()}/api"
    runs = {
        "unreachable": manage("poll_invoices", env=stack.env_with(URL_INVOICE_MIFACT_V3=closed_port)),
        "not configured": manage("poll_invoices", env=stack.env_with(URL_INVOICE_MIFACT_V3="")),
    }

    problems = []
    for case, result in runs.items():
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        if result.returncode == 0:
            problems.append(f"{case}: exit code 0 although nothing could be checked")
        if len(lines) != 1 or not SUMMARY_RE.match(lines[0]) or SUMMARY_RE.match(lines[0]).group(1) != "0":
            problems.append(f"{case}: stdout is not one summary line with checked=0")
        for stream in ("stdout", "stderr"):
            text = getattr(result, stream)
            if "Traceback" in text:
                problems.append(f"{case}: a traceback on {stream}")
            if "Retrying" in text:
                problems.append(f"{case}: urllib3 'Retrying' warnings on {stream}")
        if not reads_as_spanish(result.stderr) or not re.search(r"invoice[-_ ]mifact", result.stderr, re.I):
            problems.append(f"{case}: stderr has no Spanish reason naming invoice-mifact (or its URL setting)")
    unset = runs["not configured"]
    if not re.search(r"configurad[ao]", unset.stderr):  # on stderr, like the reason of the other case
        problems.append("not configured: stderr does not say that it is not configured")
    for wrong in ("401", "rechaz", "conectar", "refused"):
        if wrong in (unset.stdout + unset.stderr).lower():
            problems.append(f"not configured: misleading reason ({wrong!r})")

    assert not problems, "\n".join(problems) + "".join(
        f"\n--- {case}: exit {r.returncode}\nstdout: {r.stdout!r}\nstderr: {r.stderr!r}" for case, r in runs.items()
    )


def test_two_pollers_at_once_download_and_attach_each_invoice_exactly_once(api, stack, mifact, new_id):
    registered = [register_pending(api, new_id, count=4, name=f"E2E - pollers {n}") for n in range(10)]
    all_ids = [so for _, ids in registered for so in ids]
    assert len(all_ids) == 40
    for service_order_id in all_ids:
        mifact.invoice(service_order_id, soles=True, dolares=True, head_id=service_order_id)
    log_offset = mifact.log_offset()
    # Small batches, so that both runs claim while the other works; both runs start after the
    # PUTs checked the O.S, so both compete for all of them (only the claims keep them apart).
    env = stack.env_with(POLL_BATCH_SIZE="4", POLL_WORKERS="4")

    pollers = [stack.manage_popen("poll_invoices", env=env) for _ in range(2)]
    outputs = []
    for poller in pollers:
        try:
            outputs.append(poller.communicate(timeout=120))
        except subprocess.TimeoutExpired:
            for p in pollers:
                p.kill()
            raise

    for poller, (stdout, stderr) in zip(pollers, outputs, strict=True):
        assert poller.returncode == 0, (poller.returncode, stdout, stderr)
        assert "Traceback" not in stderr, stderr
    counts = [summary(stdout) for stdout, _ in outputs]
    assert sum(invoiced for _, invoiced, _ in counts) >= 40, counts
    assert all(errors == 0 for _, _, errors in counts), counts

    for opportunity_id, ids in registered:
        opportunity = api.opportunity(opportunity_id)
        assert (opportunity["cFacturacionSubEstado"], opportunity["isPresaved"]) == ("factura_directa", False)
        orders = api.listing(opportunity_id, "service-orders")
        assert {(o["serviceOrderId"], o["facturado"], o["invoiceResultHeadId"]) for o in orders} == {
            (so, True, so) for so in ids
        }
        attachments = api.listing(opportunity_id, "attachments")
        pairs = Counter((a["serviceOrderId"], a["kind"]) for a in attachments)
        expected = {(so, kind) for so in ids for kind in ("comprobante_soles", "comprobante_dolares")}
        assert set(pairs) == expected and set(pairs.values()) == {1}, pairs
        assert len({a["sha256"] for a in attachments}) == len(attachments) == 8
        invoiced = [r for r in api.listing(opportunity_id, "action-history") if r["action"] == "service_order_invoiced"]
        assert len(invoiced) == 4, invoiced

    served = Counter((method, path) for method, path, status in mifact.requests_since(log_offset) if status == 200)
    state = mifact.state()["service_orders"]
    for service_order_id in all_ids:
        assert state[str(service_order_id)]["facturado"] is True
        assert served[("GET", f"/api/service-order/{service_order_id}/invoice-status")] == 1, service_order_id
        for currency in ("soles", "dolares"):
            assert served[("GET", f"/api/files/os-{service_order_id}-{currency}.pdf")] == 1, (
                service_order_id,
                currency,
            )


def test_a_void_shows_at_once_in_the_api_as_no_current_comprobante_until_the_reissue(api, mifact, manage, new_id):
    """A clerk told of a void runs `poll_invoices --opportunity ID`: invoice-mifact is asked now
    (not after INVOICE_FOLLOW_UP_INTERVAL_MINUTES), and `GET .../service-orders` no longer presents
    the voided comprobante as current; the earlier one stays on the attachments."""
    opportunity_id, (service_order_id,) = register_pending(api, new_id, name="E2E - O.S anulada y reemitida")
    mifact.invoice(service_order_id, soles=True, dolares=True, head_id=service_order_id)
    assert manage("poll_invoices", "--opportunity", opportunity_id).returncode == 0
    (order,) = api.listing(opportunity_id, "service-orders")
    assert order["facturado"] is True and order["invoiceResultHeadId"] == service_order_id
    assert order["urlSoles"] and order["urlDolares"]

    mifact.void(service_order_id)
    result = manage("poll_invoices", "--opportunity", opportunity_id)
    assert result.returncode == 0, result
    assert "followed_up=1 replaced=0 voided=1" in result.stdout
    (order,) = api.listing(opportunity_id, "service-orders")
    assert (order["facturado"], order["invoiceResultHeadId"], order["urlSoles"], order["urlDolares"]) == (
        False,
        None,
        None,
        None,
    )
    assert order["voidedAt"] and order["invoicedAt"]
    attachments = [a for a in api.listing(opportunity_id, "attachments") if a["serviceOrderId"] == service_order_id]
    assert sorted(a["status"] for a in attachments) == ["anulado", "anulado"]
    assert api.opportunity(opportunity_id)["isPresaved"] is True

    mifact.invoice(service_order_id, soles=True, head_id=service_order_id + 1)
    result = manage("poll_invoices", "--opportunity", opportunity_id)
    assert "pending=1 checked=1 invoiced=1" in result.stdout, result
    (order,) = api.listing(opportunity_id, "service-orders")
    assert order["facturado"] is True and order["invoiceResultHeadId"] == service_order_id + 1
    assert order["urlSoles"] and order["urlDolares"] is None
    attachments = [a for a in api.listing(opportunity_id, "attachments") if a["serviceOrderId"] == service_order_id]
    assert sorted(a["status"] for a in attachments) == ["anulado", "anulado", "vigente"]
