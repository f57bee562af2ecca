"""Closing a sale through the process update, as the front-end does (README "Example session with curl")."""

from __future__ import annotations

import hashlib
from typing import Any

import requests

from devtools.testing import at_once, make_pdf
from e2e import bodies


def actions(history: list[dict[str, Any]]) -> list[str]:
    return [record["action"] for record in history]


def test_appointment_then_direct_invoice_then_service_order_close_one_opportunity(
    api, anonymous, pdf_server, mifact, sv, new_id
):
    reservation_id, service_order_id = new_id(), new_id()
    clinic_history = f"HC-{reservation_id}"
    created = api.create_opportunity("E2E - Consulta dermatología - Lucía Quispe")
    opportunity_id = created["id"]
    assert (created["stage"], created["cFacturacionSubEstado"], created["isPresaved"]) == ("Prospección", None, True)

    # Main data + appointment: stored, one meeting, not closed.
    updated = api.put_process(opportunity_id, bodies.data_and_appointment(reservation_id))["opportunity"]
    assert updated["stage"] == "Prospección"
    assert updated["cFacturacionSubEstado"] is None and updated["isPresaved"] is True
    assert updated["cDoctor"] == "Dra. Rosa Salazar" and updated["cPatientDocument"] == "71234567"
    assert updated["reservationId"] == reservation_id and updated["cDateReservation"] == "2026-03-02"
    meetings = api.listing(opportunity_id, "meetings")
    assert len(meetings) == 1, meetings
    meeting = meetings[0]
    assert meeting["reservationId"] == reservation_id and meeting["status"] == "Planned"
    assert (meeting["dateStart"], meeting["dateEnd"]) == ("2026-03-02 15:30:00", "2026-03-02 16:00:00")
    assert (meeting["doctor"], meeting["environment"], meeting["specialty"]) == (
        "Dra. Rosa Salazar",
        "Consultorio 3",
        "Dermatología",
    )
    assert {"meeting_created", "opportunity_updated"} <= set(actions(api.listing(opportunity_id, "action-history")))

    # Direct invoice: downloaded, attached, closed won with factura_directa.
    pdf = make_pdf(f"Factura directa F001-{reservation_id}")
    pdf_path = f"/facturas/F001-{reservation_id}.pdf"
    pdf_server.route(pdf_path, body=pdf)
    body = bodies.direct_invoice(clinic_history, pdf_server.url(pdf_path))
    invoiced = api.put_process(opportunity_id, body)["opportunity"]
    assert (invoiced["stage"], invoiced["cFacturacionSubEstado"], invoiced["isPresaved"]) == (
        "Cierre ganado",
        "factura_directa",
        False,
    )
    assert invoiced["cClinicHistory"] == clinic_history
    attachments = api.listing(opportunity_id, "attachments")
    assert len(attachments) == 1, attachments
    attachment = attachments[0]
    assert attachment["kind"] == "comprobante_soles" and attachment["serviceOrderId"] is None
    assert attachment["sourceUrl"] == pdf_server.url(pdf_path)
    assert attachment["size"] == len(pdf) and attachment["sha256"] == hashlib.sha256(pdf).hexdigest()
    # downloadUrl is a signed link: it opens without the token; the token route still needs one.
    download = anonymous.get(attachment["downloadUrl"])
    assert download.status_code == 200, download.text[:300]
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.content.startswith(b"%PDF-") and download.content == pdf
    token_route = f"/opportunity/{opportunity_id}/attachments/{attachment['id']}/download"
    assert api.get(token_route).content == pdf
    refused = anonymous.get(token_route)
    assert refused.status_code == 401 and refused.headers["Content-Type"].startswith("application/json")
    closed = [r for r in api.listing(opportunity_id, "action-history") if r["action"] == "closed_won"]
    assert len(closed) == 1 and "factura_directa" in str(closed[0]["data"]), closed
    # The clinic history and the reservation reached SV once, right after the PUT.
    patches = sv.patches(reservation_id)
    assert [(p.status, p.body) for p in patches] == [(200, {"clinicHistoryCrm": clinic_history})]

    # A service order on the same opportunity: registered; the direct invoice keeps the sub-state.
    body = bodies.service_orders(clinic_history, [service_order_id])
    with_orders = api.put_process(opportunity_id, body)["opportunity"]
    assert (with_orders["stage"], with_orders["cFacturacionSubEstado"], with_orders["isPresaved"]) == (
        "Cierre ganado",
        "factura_directa",
        False,
    )
    orders = api.listing(opportunity_id, "service-orders")
    assert len(orders) == 1, orders
    order = orders[0]
    assert order["serviceOrderId"] == service_order_id and order["facturado"] is False
    assert order["metadata"] == {"descripcion": "Procedimiento láser", "numero_os": f"OS-{service_order_id}"}
    assert order["lastCheckedAt"] is not None, "the PUT checks its pending O.S at invoice-mifact"
    registered = [
        r for r in api.listing(opportunity_id, "action-history") if r["action"] == "service_orders_registered"
    ]
    assert len(registered) == 1 and service_order_id in registered[0]["data"]["serviceOrderIds"]

    # Once invoice-mifact invoices the O.S, the next PUT completes it (docs/api.md "Service orders and the poller").
    mifact.invoice(service_order_id, soles=True, dolares=True, head_id=reservation_id)
    api.put_process(opportunity_id, {"cClinicHistory": clinic_history})
    order = api.listing(opportunity_id, "service-orders")[0]
    assert order["facturado"] is True and order["invoiceResultHeadId"] == reservation_id
    kinds = sorted(
        a["kind"] for a in api.listing(opportunity_id, "attachments") if a["serviceOrderId"] == service_order_id
    )
    assert kinds == ["comprobante_dolares", "comprobante_soles"]

    history = api.listing(opportunity_id, "action-history")
    assert {"meeting_created", "closed_won", "service_orders_registered", "service_order_invoiced"} <= set(
        actions(history)
    )
    assert [r["createdAt"] for r in history] == sorted((r["createdAt"] for r in history), reverse=True), (
        "history is newest first"
    )
    assert len(api.listing(opportunity_id, "meetings")) == 1
    assert len(sv.patches(reservation_id)) == 1, "the same clinic history is not sent to SV twice"


#: Double submits, each on its own opportunity: with two gunicorn workers only the first two
#: PUTs of a burst race, so one burst alone may miss a race that several rarely all miss.
DOUBLE_SUBMIT_ROUNDS = 4


def double_submit(stack, opportunity_id: str, body: dict[str, Any], copies: int = 8) -> list[tuple[int, str]]:
    """Send `copies` identical PUTs at the same moment (threads behind a barrier); returns
    (status, text) per answer, status 0 when no answer came."""

    def submit(_: int) -> requests.Response:
        with stack.session(stack.token) as http:
            return http.put(f"/opportunity/update-opportunity-procces/{opportunity_id}", json=body)

    answers = at_once(copies, submit)
    return [(a.status_code, a.text[:300]) if isinstance(a, requests.Response) else (0, repr(a)) for a in answers]


def test_eight_identical_puts_at_once_make_one_meeting(api, stack, new_id):
    """Regression: concurrent identical PUTs that create the same reservation's meeting
    answer 500 on PostgreSQL (the second insert of the meeting hits its unique constraint)."""
    problems = []
    for round_number in range(1, DOUBLE_SUBMIT_ROUNDS + 1):
        reservation_id = new_id()
        opportunity_id = api.create_opportunity(f"E2E - doble envío {round_number}")["id"]

        answers = double_submit(stack, opportunity_id, bodies.data_and_appointment(reservation_id))

        statuses = sorted(status for status, _ in answers)
        if statuses != [200] * 8:
            other = next((text for status, text in answers if status != 200), "")
            problems.append(f"round {round_number}: statuses {statuses}; first other answer: {other}")
        meetings = [m for m in api.listing(opportunity_id, "meetings") if m["reservationId"] == reservation_id]
        if len(meetings) != 1:
            problems.append(f"round {round_number}: {len(meetings)} meetings for the reservation")
        created = [
            r
            for r in api.listing(opportunity_id, "action-history")
            if r["action"] == "meeting_created" and r["data"].get("reservationId") == reservation_id
        ]
        if len(created) != 1:
            problems.append(f"round {round_number}: {len(created)} meeting_created records for the reservation")
    assert not problems, "\n".join(problems)


def test_a_mistyped_field_name_is_reported_as_ignored_and_changes_nothing(api, new_id):
    """Regression: a PUT whose keys are all unknown (a typo such as `doctor` for
    `cDoctor`) is silently accepted; it should answer which fields it ignored."""
    opportunity_id = api.create_opportunity("E2E - campo mal escrito")["id"]
    api.put_process(opportunity_id, bodies.data_and_appointment(new_id()))
    before = api.opportunity(opportunity_id)
    history_before = api.listing(opportunity_id, "action-history")

    response = api.put(f"/opportunity/update-opportunity-procces/{opportunity_id}", json={"doctor": "x"})

    assert response.status_code == 200, response.text[:500]
    assert api.opportunity(opportunity_id) == before
    assert api.listing(opportunity_id, "action-history") == history_before
    answer = response.json()
    assert answer.get("ignoredFields") == ["doctor"], f"no ignoredFields in the answer: {sorted(answer)}"
