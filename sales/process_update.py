"""The process update (`PUT /opportunity/update-opportunity-procces/<id>`): customer, patient and
appointment data, the meeting, and the close as *Cierre ganado* by direct invoice (`cFacturas`)
or by service orders (`cOrdenesServicio`) (docs/decisions.md). It orchestrates the opportunity
core and billing; neither of them knows it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from billing.comprobantes import StoredPdf, attachment_store_pdfs, comprobantes_download
from billing.downloads import DownloadError
from billing.services.checks import opportunity_check_service_orders
from billing.services.registration import (
    opportunity_close_with_service_orders,
    service_orders_register,
)
from crm.errors import InvalidRequest, NotFound
from opportunities.history import Actor, HistoryLog, jsonable
from opportunities.meetings import meeting_upsert
from opportunities.models import ActionHistory, FacturacionSubEstado, Meeting, Opportunity, Stage
from opportunities.process_case import FIELD_COLUMNS, process_case_detect
from opportunities.selectors import OPPORTUNITY_NOT_FOUND
from opportunities.services import CLOSE_COLUMNS, opportunity_close_won
from opportunities.sv_outbox import sv_delivery_enqueue
from opportunities.versions import IfMatch, opportunity_version_require

logger = logging.getLogger(__name__)

RESERVATION_REQUIRED_MESSAGE = "El campo reservationId no puede estar vacío"
CLINIC_HISTORY_REQUIRED_MESSAGE = "El campo cClinicHistory es obligatorio para el Cierre ganado"


def _download_facturas(facturas: Mapping[str, str]) -> list[tuple[str, StoredPdf]]:
    try:
        return comprobantes_download(facturas)
    except DownloadError as exc:
        kind = next(k for k, url in facturas.items() if url == exc.url)
        raise InvalidRequest(
            f"No se pudo descargar el comprobante {exc.url}: {exc.reason}",
            errors={f"cFacturas.{kind}": [f"{exc.reason} ({exc.url})"]},
        ) from exc


def _apply_fields(*, opportunity: Opportunity, data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    changes: dict[str, dict[str, Any]] = {}
    for key, column in FIELD_COLUMNS.items():
        if key not in data:
            continue
        old, new = getattr(opportunity, column), data[key]
        if old != new:
            changes[key] = {"old": jsonable(old), "new": jsonable(new)}
            setattr(opportunity, column, new)
    return changes


def _require_clinic_history(data: Mapping[str, Any], stored: str) -> None:
    if not (data.get("cClinicHistory") or stored):
        raise InvalidRequest(
            CLINIC_HISTORY_REQUIRED_MESSAGE, errors={"cClinicHistory": [CLINIC_HISTORY_REQUIRED_MESSAGE]}
        )


def opportunity_lock(*, opportunity_id: str, reservation_id: int | None) -> tuple[Opportunity, Meeting | None]:
    """Lock the opportunity row (`SELECT ... FOR UPDATE OF opportunity`), then read its meeting for
    `reservation_id` (None when it has none yet, or when `reservation_id` is None). Only the
    opportunity row is locked; every writer of an opportunity's meetings holds that lock. Must
    run inside a transaction.

    The meeting is read by a statement of its own, after the lock is held: under READ COMMITTED
    a statement that waited for the row lock sees the locked row's newest version, but not rows
    that the transaction holding the lock inserted (a double-submitted PUT would then insert the
    same meeting twice).

    Raises `NotFound` for an unknown id.
    """
    opportunity = Opportunity.objects.select_for_update(of=("self",)).filter(pk=opportunity_id).first()
    if opportunity is None:
        raise NotFound(OPPORTUNITY_NOT_FOUND)
    if reservation_id is None:
        return opportunity, None
    return opportunity, Meeting.objects.filter(opportunity=opportunity, reservation_id=reservation_id).first()


def opportunity_process_update(
    *, opportunity_id: str, user: Actor, data: Mapping[str, Any], if_match: IfMatch | None = None
) -> Opportunity:
    """Apply a process update (docs/api.md "Process update").

    `data` is the validated body (camelCase keys, only fields that count as sent). In order:
    detect the case; require `reservationId` when appointment fields are sent; require the
    clinic history when closing; download and store `cFacturas` PDFs (before any lock: a row
    never points to a file that is not durably stored); then, in one
    transaction: store the fields, create or update the meeting, attach the PDFs and close as
    *Cierre ganado* / `factura_directa`; register `cOrdenesServicio` and close with sub-state
    `orden_servicio_pendiente_factura`; write the history (one INSERT) and the SV outbox row.
    After the commit, every pending O.S of the opportunity is checked against invoice-mifact
    (`billing.services.checks`). A body without URLs, O.S or pending O.S costs a handful of queries and
    one commit.

    With `if_match` (the request's `If-Match`), the opportunity's version is checked under the
    row lock, before any write (`opportunities.versions`).

    Raises `InvalidRequest` (nothing changed) for a missing `reservationId`, a missing clinic
    history or a failed download; `PreconditionFailed` when `if_match` does not match the
    opportunity's version (nothing changed); `NotFound` for an unknown id.
    """
    case = process_case_detect(data.keys())
    if case.has_appointment and "reservationId" not in data:
        raise InvalidRequest(RESERVATION_REQUIRED_MESSAGE, errors={"reservationId": [RESERVATION_REQUIRED_MESSAGE]})
    facturas = {k: v for k, v in (data.get("cFacturas") or {}).items() if v}
    service_order_ids: list[int] = list(data.get("cOrdenesServicio") or [])

    pdfs: list[tuple[str, StoredPdf]] = []
    if facturas:
        # Check before downloading; the check is repeated under the lock below.
        stored = Opportunity.objects.filter(pk=opportunity_id).values_list("c_clinic_history", flat=True).first()
        if stored is None:
            raise NotFound(OPPORTUNITY_NOT_FOUND)
        _require_clinic_history(data, stored)
        pdfs = _download_facturas(facturas)
    with transaction.atomic():
        opportunity, meeting = opportunity_lock(
            opportunity_id=opportunity_id,
            reservation_id=data["reservationId"] if case.has_appointment else None,
        )
        opportunity_version_require(opportunity=opportunity, if_match=if_match)
        if facturas or service_order_ids:
            _require_clinic_history(data, opportunity.c_clinic_history)
        log = HistoryLog(opportunity=opportunity, user=user)
        changes = _apply_fields(opportunity=opportunity, data=data)
        if changes:
            log.add(ActionHistory.Action.OPPORTUNITY_UPDATED, {"case": case.value, "changes": changes})
        if case.has_appointment:
            meeting_upsert(opportunity=opportunity, reservation_id=data["reservationId"], meeting=meeting, log=log)
        if pdfs:
            attachments = attachment_store_pdfs(opportunity=opportunity, pdfs=pdfs)
            closed = opportunity_close_won(
                opportunity=opportunity,
                sub_state=FacturacionSubEstado.FACTURA_DIRECTA,
                log=log,
                data={"via": "cFacturas", "attachmentIds": [a.pk for a in attachments]},
            )
            if attachments and not closed:
                log.add(ActionHistory.Action.INVOICE_ATTACHED, {"attachmentIds": [a.pk for a in attachments]})
        if service_order_ids:
            service_orders_register(
                opportunity=opportunity,
                service_order_ids=service_order_ids,
                metadata=data.get("cOrdenesServicioMetadata"),
                log=log,
            )
            opportunity_close_with_service_orders(opportunity=opportunity, log=log, service_order_ids=service_order_ids)
        columns = {FIELD_COLUMNS[key] for key in changes}
        if pdfs or service_order_ids:
            columns |= CLOSE_COLUMNS
        if columns:
            opportunity.save(update_fields=[*sorted(columns), "modified_at"])
        log.flush()
        sv_delivery_enqueue(opportunity=opportunity)

    # After the update, check the opportunity's pending O.S (network, outside the transaction;
    # failures are recorded on the rows and never fail the request). Read after the commit, so
    # O.S that a concurrent PUT registered meanwhile are seen too. O.S are registered only by a
    # close, which puts the opportunity in Cierre ganado, and nothing takes it out of that stage:
    # in any other stage it has none, and the read is skipped.
    if opportunity.stage == Stage.CIERRE_GANADO and opportunity_check_service_orders(opportunity_id=opportunity_id):
        opportunity.refresh_from_db()
    logger.info(
        "Process update applied (case %s, %d field(s) changed)",
        case.value,
        len(changes),
        extra={"opportunity_id": opportunity.pk},
    )
    return opportunity
