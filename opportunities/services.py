"""Writes on opportunities: create, the process update, attachments (CONTRACT.md section 5).

Every function here is keyword-only and runs its writes in one transaction. Network work
(downloading comprobantes) happens before the transaction opens; files reach `MEDIA_ROOT` only
after the rows that reference them are committed.
"""
from __future__ import annotations

import datetime as dt
import enum
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from billing.downloads import DownloadedPdf, DownloadError, download_pdf
from crm.claims import claim_batch, claim_one
from crm.errors import ApiError

from .fields import parse_appointment
from .models import ActionHistory, Attachment, FacturacionSubEstado, Meeting, Opportunity, Stage, SvDelivery
from .serializers import APPOINTMENT_FIELDS, FIELD_COLUMNS, MAIN_FIELDS
from .sv import SvAuthError, SvClient, SvError, SvUnavailable, sv_configuration_problem

logger = logging.getLogger(__name__)

RESERVATION_REQUIRED_MESSAGE = "El campo reservationId no puede estar vacío"
CLINIC_HISTORY_REQUIRED_MESSAGE = "El campo cClinicHistory es obligatorio para el Cierre ganado"


class ProcessCase(enum.Enum):
    """The four cases of the source document section 3."""

    APPOINTMENT_ONLY = "solo_cita"
    MAIN_ONLY = "solo_datos_principales"
    MAIN_AND_APPOINTMENT = "datos_principales_y_cita"
    OTHER = "otro"

    @property
    def has_appointment(self) -> bool:
        return self in (ProcessCase.APPOINTMENT_ONLY, ProcessCase.MAIN_AND_APPOINTMENT)


def process_case_detect(sent_fields: Iterable[str]) -> ProcessCase:
    """Classify a process-update body by the keys that were sent (source document section 3).

    `sent_fields` are API keys whose values count as sent (not null, not blank).
    """
    sent = set(sent_fields)
    has_main = any(field in sent for field in MAIN_FIELDS)
    has_appointment = any(field in sent for field in APPOINTMENT_FIELDS)
    if has_appointment and has_main:
        return ProcessCase.MAIN_AND_APPOINTMENT
    if has_appointment:
        return ProcessCase.APPOINTMENT_ONLY
    if has_main:
        return ProcessCase.MAIN_ONLY
    return ProcessCase.OTHER


def _user_fields(user: AbstractBaseUser | None) -> dict[str, Any]:
    if user is None or not getattr(user, "is_authenticated", False):
        return {"user": None, "user_name": None}
    return {"user": user, "user_name": user.get_username()}


def jsonable(value: Any) -> Any:
    """`value` as JSON can hold it, in the API's formats: datetimes `yyyy-MM-dd HH:mm:ss` in
    `TIME_ZONE`, dates `yyyy-MM-dd`, decimals as text."""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


class HistoryLog:
    """The action-history records of one unit of work on one opportunity, written in one INSERT.

    `user` is the signed-in user, or None for the poller (`userName` null). Call `flush()` inside
    the unit's transaction, after everything else, so the records commit or roll back with it.
    """

    def __init__(self, *, opportunity: Opportunity, user: AbstractBaseUser | None) -> None:
        self.opportunity = opportunity
        self.user = user
        self.records: list[ActionHistory] = []

    def add(self, action: str, data: Mapping[str, Any]) -> None:
        """Queue one record: `action` (an `ActionHistory.Action`) with JSON-able `data`."""
        self.records.append(
            ActionHistory(opportunity=self.opportunity, action=action, data=dict(data), **_user_fields(self.user))
        )

    def flush(self) -> list[ActionHistory]:
        """Write the queued records (one query; none when empty) and return them."""
        records, self.records = self.records, []
        return ActionHistory.objects.bulk_create(records) if records else []


def opportunity_create(*, user: AbstractBaseUser | None, data: Mapping[str, Any]) -> Opportunity:
    """Create an opportunity from validated `POST /opportunity` data (camelCase keys).

    New opportunities start in `Prospección` with `isPresaved = true`.
    """
    values: dict[str, Any] = {"name": data["name"]}
    if "amount" in data:
        values["amount"] = data["amount"]
    for key, column in FIELD_COLUMNS.items():
        if key in data:
            values[column] = data[key]
    with transaction.atomic():
        opportunity = Opportunity.objects.create(**values)
        log = HistoryLog(opportunity=opportunity, user=user)
        log.add(ActionHistory.Action.OPPORTUNITY_CREATED, {"name": opportunity.name, "stage": opportunity.stage})
        log.flush()
    return opportunity


def _meeting_times(opportunity: Opportunity) -> tuple[dt.datetime | None, dt.datetime | None]:
    times = parse_appointment(opportunity.c_appointment)
    day = opportunity.c_date_reservation
    if times is None or day is None:
        return None, None
    zone = ZoneInfo(settings.TIME_ZONE)
    start, end = times
    return dt.datetime.combine(day, start, tzinfo=zone), dt.datetime.combine(day, end, tzinfo=zone)


def _meeting_name(opportunity: Opportunity) -> str:
    patient = " ".join(
        part
        for part in (
            opportunity.c_patientsname,
            opportunity.c_patients_paternal_last_name,
            opportunity.c_patients_maternal_last_name,
        )
        if part
    )
    title = f"Cita: {patient or opportunity.name}"
    if opportunity.c_specialty:
        title += f" ({opportunity.c_specialty})"
    return title[:255]


def meeting_upsert(
    *, opportunity: Opportunity, reservation_id: int, meeting: Meeting | None, log: HistoryLog
) -> Meeting:
    """Create, or update, the opportunity's meeting for `reservation_id` from its stored appointment.

    `meeting` is that meeting as read under the opportunity's lock (`opportunity_lock`), or None
    when the opportunity has none for `reservation_id` yet. Adds `meeting_created` or (when
    something changed) `meeting_updated` to `log`. Must run inside the caller's transaction with
    the opportunity row locked. Source document section 8.2 (appointment data make a meeting).
    """
    date_start, date_end = _meeting_times(opportunity)
    values = {
        "name": _meeting_name(opportunity),
        "date_start": date_start,
        "date_end": date_end,
        "doctor": opportunity.c_doctor,
        "environment": opportunity.c_environment,
        "specialty": opportunity.c_specialty,
        "tariff": opportunity.c_tariff,
    }
    if meeting is None:
        meeting = Meeting.objects.create(opportunity=opportunity, reservation_id=reservation_id, **values)
        log.add(
            ActionHistory.Action.MEETING_CREATED,
            {"meetingId": meeting.pk, "reservationId": reservation_id, **{k: jsonable(v) for k, v in values.items()}},
        )
        return meeting
    changes = {
        key: {"old": jsonable(getattr(meeting, key)), "new": jsonable(value)}
        for key, value in values.items()
        if getattr(meeting, key) != value
    }
    if changes:
        for key in changes:
            setattr(meeting, key, values[key])
        meeting.save(update_fields=[*changes, "updated_at"])
        log.add(
            ActionHistory.Action.MEETING_UPDATED,
            {"meetingId": meeting.pk, "reservationId": reservation_id, "changes": changes},
        )
    return meeting


def _store_file_after_commit(attachment_id: int, name: str, pdf: DownloadedPdf) -> None:
    try:
        with pdf.path.open("rb") as handle:
            saved = default_storage.save(name, File(handle, name=pdf.file_name))
        if saved != name:
            Attachment.objects.filter(pk=attachment_id).update(file=saved)
    except Exception as exc:
        # A row without its file would be served as a broken download: drop the row. When the
        # PDF came from an O.S, put the O.S back to pending so the poller downloads it again
        # (a direct invoice is sent again by the front-end; the same PDF is then accepted).
        logger.exception("Could not store attachment %s; removing its row", attachment_id)
        attachment = Attachment.objects.filter(pk=attachment_id).first()
        if attachment is not None:
            if attachment.service_order_id is not None:
                from billing.models import OpportunityServiceOrder

                OpportunityServiceOrder.objects.filter(
                    opportunity_id=attachment.opportunity_id, service_order_id=attachment.service_order_id
                ).update(facturado=False, last_error=f"no se pudo guardar el comprobante: {exc.__class__.__name__}; "
                                                     "se reintentará", updated_at=timezone.now())
            attachment.delete()
    finally:
        pdf.discard()


def attachment_store_pdfs(
    *,
    opportunity: Opportunity,
    pdfs: Iterable[tuple[str, DownloadedPdf]],
    service_order_id: int | None = None,
) -> list[Attachment]:
    """Attach downloaded PDFs `(kind, pdf)` to `opportunity`; returns the attachments created.

    A PDF whose SHA-256 the opportunity already has is not stored again. Must run inside a
    transaction: each file is moved from its temporary path into storage only after that
    transaction commits (and its temp file deleted); on rollback the caller discards the PDFs.
    """
    existing = set(opportunity.attachments.values_list("sha256", flat=True))
    created: list[Attachment] = []
    for kind, pdf in pdfs:
        if pdf.sha256 in existing:
            transaction.on_commit(pdf.discard)
            continue
        existing.add(pdf.sha256)
        name = f"invoices/{opportunity.pk}/{pdf.sha256[:16]}-{pdf.file_name}"
        attachment = Attachment.objects.create(
            opportunity=opportunity,
            kind=kind,
            file=name,
            file_name=pdf.file_name,
            size=pdf.size,
            sha256=pdf.sha256,
            content_type=pdf.content_type,
            source_url=pdf.source_url,
            service_order_id=service_order_id,
        )
        transaction.on_commit(
            lambda attachment_id=attachment.pk, name=name, pdf=pdf: _store_file_after_commit(
                attachment_id, name, pdf
            )
        )
        created.append(attachment)
    return created


def discard_pdfs(pdfs: Iterable[tuple[str, DownloadedPdf]]) -> None:
    """Delete the temporary files of downloaded PDFs (used when their transaction fails)."""
    for _kind, pdf in pdfs:
        pdf.discard()


def comprobantes_download(urls: Mapping[str, str]) -> list[tuple[str, DownloadedPdf]]:
    """Download every comprobante of `urls` (`{kind: url}`, soles first) through the safe
    downloader; returns `[(kind, pdf)]` in temporary files. All or nothing: on any failure the
    files already downloaded are deleted and the `DownloadError` (or other error) propagates."""
    downloaded: list[tuple[str, DownloadedPdf]] = []
    try:
        for kind in (Attachment.Kind.COMPROBANTE_SOLES, Attachment.Kind.COMPROBANTE_DOLARES):
            url = urls.get(kind.value)
            if url:
                downloaded.append((kind.value, download_pdf(url)))
    except BaseException:
        discard_pdfs(downloaded)
        raise
    return downloaded


def _download_facturas(facturas: Mapping[str, str]) -> list[tuple[str, DownloadedPdf]]:
    try:
        return comprobantes_download(facturas)
    except DownloadError as exc:
        kind = next(k for k, url in facturas.items() if url == exc.url)
        raise ApiError(
            f"No se pudo descargar el comprobante {exc.url}: {exc.reason}",
            errors={f"cFacturas.{kind}": [f"{exc.reason} ({exc.url})"]},
        ) from exc


def _apply_fields(
    *, opportunity: Opportunity, data: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    changes: dict[str, dict[str, Any]] = {}
    for key, column in FIELD_COLUMNS.items():
        if key not in data:
            continue
        old, new = getattr(opportunity, column), data[key]
        if old != new:
            changes[key] = {"old": jsonable(old), "new": jsonable(new)}
            setattr(opportunity, column, new)
    return changes


# The columns `opportunity_close_won` may change.
CLOSE_COLUMNS = frozenset({"stage", "c_facturacion_sub_estado", "is_presaved"})


def opportunity_close_won(
    *,
    opportunity: Opportunity,
    sub_state: str,
    log: HistoryLog,
    data: Mapping[str, Any],
) -> bool:
    """Put `opportunity` in *Cierre ganado* with billing `sub_state` (source document section 4).

    `factura_directa` also sets `isPresaved = false`. Adds `closed_won` (with `data`) to `log`
    when the stage or sub-state changed; returns whether it did. The caller saves the opportunity.
    """
    changed = opportunity.stage != Stage.CIERRE_GANADO or opportunity.c_facturacion_sub_estado != sub_state
    opportunity.stage = Stage.CIERRE_GANADO
    opportunity.c_facturacion_sub_estado = sub_state
    if sub_state == FacturacionSubEstado.FACTURA_DIRECTA:
        opportunity.is_presaved = False
    if changed:
        log.add(ActionHistory.Action.CLOSED_WON, {"stage": Stage.CIERRE_GANADO.value, "subState": sub_state, **data})
    return changed


def _require_clinic_history(data: Mapping[str, Any], stored: str) -> None:
    if not (data.get("cClinicHistory") or stored):
        raise ApiError(CLINIC_HISTORY_REQUIRED_MESSAGE, errors={"cClinicHistory": [CLINIC_HISTORY_REQUIRED_MESSAGE]})


def opportunity_lock(*, opportunity_id: str, reservation_id: int | None) -> tuple[Opportunity, Meeting | None]:
    """Lock the opportunity row (`SELECT ... FOR UPDATE OF opportunity`), then read its meeting for
    `reservation_id` (None when it has none yet, or when `reservation_id` is None). Only the
    opportunity row is locked; every writer of an opportunity's meetings holds that lock. Must
    run inside a transaction.

    The meeting is read by a statement of its own, after the lock is held: under READ COMMITTED
    a statement that waited for the row lock sees the locked row's newest version, but not rows
    that the transaction holding the lock inserted (a double-submitted PUT would then insert the
    same meeting twice).

    Raises `Opportunity.DoesNotExist` for an unknown id.
    """
    opportunity = Opportunity.objects.select_for_update(of=("self",)).get(pk=opportunity_id)
    if reservation_id is None:
        return opportunity, None
    return opportunity, Meeting.objects.filter(opportunity=opportunity, reservation_id=reservation_id).first()


def opportunity_process_update(
    *, opportunity_id: str, user: AbstractBaseUser | None, data: Mapping[str, Any]
) -> Opportunity:
    """Apply a process update (source document sections 2, 3, 8; CONTRACT.md section 5).

    `data` is the validated body (camelCase keys, only fields that count as sent). In order:
    detect the case; require `reservationId` when appointment fields are sent; require the
    clinic history when closing; download `cFacturas` PDFs (before any lock); then, in one
    transaction: store the fields, create or update the meeting, attach the PDFs and close as
    *Cierre ganado* / `factura_directa`; register `cOrdenesServicio` and close with sub-state
    `orden_servicio_pendiente_factura`; write the history (one INSERT) and the SV outbox row.
    After the commit, every pending O.S of the opportunity is checked against invoice-mifact
    (`billing.services`). A body without URLs, O.S or pending O.S costs a handful of queries and
    one commit.

    Raises `ApiError` (400, nothing changed) for a missing `reservationId`, a missing clinic
    history or a failed download; `Opportunity.DoesNotExist` for an unknown id.
    """
    # billing depends on this module; import it here to keep the dependency one-way at load time.
    from billing import services as billing_services

    case = process_case_detect(data.keys())
    if case.has_appointment and "reservationId" not in data:
        raise ApiError(RESERVATION_REQUIRED_MESSAGE, errors={"reservationId": [RESERVATION_REQUIRED_MESSAGE]})
    facturas = {k: v for k, v in (data.get("cFacturas") or {}).items() if v}
    service_order_ids: list[int] = list(data.get("cOrdenesServicio") or [])

    pdfs: list[tuple[str, DownloadedPdf]] = []
    if facturas:
        # Check before downloading; the check is repeated under the lock below.
        stored = Opportunity.objects.filter(pk=opportunity_id).values_list("c_clinic_history", flat=True).first()
        if stored is None:
            raise Opportunity.DoesNotExist(opportunity_id)
        _require_clinic_history(data, stored)
        pdfs = _download_facturas(facturas)
    try:
        with transaction.atomic():
            opportunity, meeting = opportunity_lock(
                opportunity_id=opportunity_id,
                reservation_id=data["reservationId"] if case.has_appointment else None,
            )
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
                billing_services.service_orders_register(
                    opportunity=opportunity,
                    service_order_ids=service_order_ids,
                    metadata=data.get("cOrdenesServicioMetadata"),
                    log=log,
                )
                billing_services.opportunity_close_with_service_orders(opportunity=opportunity, log=log)
            columns = {FIELD_COLUMNS[key] for key in changes}
            if pdfs or service_order_ids:
                columns |= CLOSE_COLUMNS
            if columns:
                opportunity.save(update_fields=[*sorted(columns), "modified_at"])
            log.flush()
            sv_delivery_enqueue(opportunity=opportunity)
    except BaseException:
        discard_pdfs(pdfs)
        raise

    # After the update, check the opportunity's pending O.S (network, outside the transaction;
    # failures are recorded on the rows and never fail the request). Read after the commit, so
    # O.S that a concurrent PUT registered meanwhile are seen too.
    if billing_services.opportunity_check_service_orders(opportunity_id=opportunity_id):
        opportunity.refresh_from_db()
    return opportunity


# --- SV sync: the clinic history reaches the clinic system (CONTRACT.md section 8) ------------


class SvAttemptResult(enum.Enum):
    """What one delivery attempt ended in."""

    DELIVERED = "delivered"
    RETRY = "retry"  # failed; next attempt scheduled with backoff
    FAILED = "failed"  # failed and out of attempts
    SKIPPED = "skipped"  # claimed elsewhere, or no longer pending
    SERVICE_ERROR = "service_error"  # SV unreachable or refused our credentials (also scheduled)


def _sv_claim_duration() -> dt.timedelta:
    return dt.timedelta(seconds=max(60, 3 * settings.SV_TIMEOUT))


def _sv_backoff(attempts: int) -> dt.timedelta:
    base = max(1, settings.SV_SYNC_BACKOFF_SECONDS)
    cap = max(base, settings.SV_SYNC_BACKOFF_MAX_SECONDS)
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def sv_delivery_enqueue(*, opportunity: Opportunity) -> SvDelivery | None:
    """Write an outbox row when `opportunity` has a clinic history and a reservation id whose pair
    has not been delivered (or is not already waiting); return it, or None when nothing is due.

    Runs inside the process-update transaction (the opportunity row locked), so it is rolled back
    with the update. A new pair supersedes the reservation's older pending rows (SV must end with
    the newest clinic history); a failed row for the same pair is re-armed. After the commit one
    immediate attempt is made with `SV_INLINE_TIMEOUT`.
    """
    if not opportunity.c_clinic_history or not opportunity.reservation_id:
        return None
    current = list(
        SvDelivery.objects.filter(opportunity=opportunity, reservation_id=opportunity.reservation_id)
        .exclude(status=SvDelivery.Status.SUPERSEDED)
        .order_by("-created_at", "-id")
    )
    latest = current[0] if current else None
    now = timezone.now()
    # While SV cannot be called, the row says why it waits (the admin shows it).
    problem = sv_configuration_problem()
    not_tried = f"no se intentó: {problem}"[:2000] if problem else ""
    if latest is not None and latest.clinic_history == opportunity.c_clinic_history:
        if latest.status != SvDelivery.Status.FAILED:
            return None
        latest.status, latest.attempts, latest.next_attempt_at = SvDelivery.Status.PENDING, 0, now
        latest.last_error = not_tried or latest.last_error
        latest.save(update_fields=["status", "attempts", "next_attempt_at", "last_error", "updated_at"])
        delivery = latest
    else:
        waiting = [d.pk for d in current if d.status == SvDelivery.Status.PENDING]
        if waiting:
            SvDelivery.objects.filter(pk__in=waiting).update(status=SvDelivery.Status.SUPERSEDED, updated_at=now)
        delivery = SvDelivery.objects.create(
            opportunity=opportunity,
            reservation_id=opportunity.reservation_id,
            clinic_history=opportunity.c_clinic_history,
            next_attempt_at=now,
            last_error=not_tried,
        )
    if not problem:
        transaction.on_commit(lambda pk=delivery.pk: sv_delivery_attempt_inline(delivery_pk=pk))
    return delivery


def sv_delivery_attempt(
    *, delivery_pk: int, client: SvClient, force: bool = False, claimed: bool = False
) -> SvAttemptResult:
    """Claim one pending delivery and send it to SV; record the outcome on the row.

    Success: `delivered` with `delivered_at`. Failure: `attempts + 1`, `last_error`, and the next
    attempt after an exponential backoff (`SV_SYNC_BACKOFF_SECONDS` doubling, capped at
    `SV_SYNC_BACKOFF_MAX_SECONDS`), or `failed` after `SV_SYNC_MAX_ATTEMPTS`. `force` ignores
    `next_attempt_at` (admin "retry now"); `claimed` means the caller already holds the claim.
    Never raises for SV's failures.
    """
    now = timezone.now()
    due = SvDelivery.objects.filter(status=SvDelivery.Status.PENDING)
    if not force:
        due = due.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    if not claimed and not claim_one(due, pk=delivery_pk, now=now, until=now + _sv_claim_duration()):
        return SvAttemptResult.SKIPPED
    delivery = SvDelivery.objects.get(pk=delivery_pk)
    try:
        client.update_clinic_history(reservation_id=delivery.reservation_id, clinic_history=delivery.clinic_history)
    except SvError as exc:
        attempts = delivery.attempts + 1
        gave_up = attempts >= settings.SV_SYNC_MAX_ATTEMPTS
        SvDelivery.objects.filter(pk=delivery_pk).update(
            attempts=attempts,
            last_error=str(exc)[:2000],
            status=SvDelivery.Status.FAILED if gave_up else SvDelivery.Status.PENDING,
            next_attempt_at=None if gave_up else timezone.now() + _sv_backoff(attempts),
            claimed_until=None,
            updated_at=timezone.now(),
        )
        if gave_up:
            logger.error("SV delivery %s failed for good after %s attempts: %s", delivery_pk, attempts, exc)
            return SvAttemptResult.FAILED
        if isinstance(exc, (SvUnavailable, SvAuthError)):
            return SvAttemptResult.SERVICE_ERROR
        return SvAttemptResult.RETRY
    SvDelivery.objects.filter(pk=delivery_pk).update(
        status=SvDelivery.Status.DELIVERED,
        attempts=delivery.attempts + 1,
        last_error="",
        delivered_at=timezone.now(),
        next_attempt_at=None,
        claimed_until=None,
        updated_at=timezone.now(),
    )
    return SvAttemptResult.DELIVERED


def _sv_record_not_tried(deliveries: QuerySet[SvDelivery], reason: str) -> int:
    """Write on pending `deliveries` why they could not be tried (shown in the admin); their
    attempts and schedule are kept. Returns how many rows were marked."""
    return deliveries.filter(status=SvDelivery.Status.PENDING).update(
        last_error=f"no se intentó: {reason}"[:2000], updated_at=timezone.now()
    )


def sv_delivery_attempt_inline(*, delivery_pk: int) -> SvAttemptResult:
    """The attempt made right after a PUT commits: short timeout, never raises (the PUT must
    answer whatever SV does). While SV cannot be called (`URL_SV` or credentials unset) it only
    writes the reason on the row (`sv_delivery_enqueue` does not schedule it then)."""
    problem = sv_configuration_problem()
    if problem:
        _sv_record_not_tried(SvDelivery.objects.filter(pk=delivery_pk), problem)
        return SvAttemptResult.SKIPPED
    try:
        client = SvClient.from_settings(timeout=settings.SV_INLINE_TIMEOUT)
        try:
            return sv_delivery_attempt(delivery_pk=delivery_pk, client=client)
        finally:
            client.close()
    except Exception:  # the PUT has committed; a bug here must not turn it into a 500
        logger.exception("SV delivery %s: inline attempt crashed; sync_sv will retry", delivery_pk)
        return SvAttemptResult.SKIPPED


@dataclass
class SvSyncSummary:
    """Counts of one `sync_sv` run; `fatal` says why nothing could be delivered, or ""."""

    due: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    seconds: float = 0.0
    fatal: str = ""

    @property
    def line(self) -> str:
        text = (f"sync_sv: due={self.due} delivered={self.delivered} retried={self.retried} "
                f"failed={self.failed} seconds={self.seconds:.2f}")
        return f"{text} fatal={self.fatal!r}" if self.fatal else text


def sv_deliveries_sync(*, limit: int | None = None, batch_size: int = 50) -> SvSyncSummary:
    """Deliver every due outbox row (CONTRACT.md 8; `manage.py sync_sv`).

    Rows are claimed in batches (`crm.claims`), so two runs at once never deliver one row twice.
    With `URL_SV` unset nothing is done and `fatal` says so. A batch whose every attempt failed
    on SV itself (unreachable, credentials) ends the run; those rows keep their backoff.
    """
    started = time.monotonic()
    summary = SvSyncSummary()
    now = timezone.now()
    due = SvDelivery.objects.filter(status=SvDelivery.Status.PENDING).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    summary.due = due.count() if limit is None else min(limit, due.count())
    if summary.due == 0:
        summary.seconds = time.monotonic() - started
        return summary
    problem = sv_configuration_problem()
    if problem:
        _sv_record_not_tried(due, problem)
        summary.fatal = problem
        summary.seconds = time.monotonic() - started
        return summary
    client = SvClient.from_settings()
    done = 0
    try:
        while limit is None or done < limit:
            size = batch_size if limit is None else min(batch_size, limit - done)
            claim_now = timezone.now()
            ids = claim_batch(due.order_by(F("next_attempt_at").asc(nulls_first=True), "id"), limit=size,
                              now=claim_now, until=claim_now + _sv_claim_duration())
            if not ids:
                break
            done += len(ids)
            service_errors = 0
            for pk in ids:
                result = sv_delivery_attempt(delivery_pk=pk, client=client, claimed=True)
                if result is SvAttemptResult.DELIVERED:
                    summary.delivered += 1
                elif result is SvAttemptResult.FAILED:
                    summary.failed += 1
                elif result in (SvAttemptResult.RETRY, SvAttemptResult.SERVICE_ERROR):
                    summary.retried += 1
                    if result is SvAttemptResult.SERVICE_ERROR:
                        service_errors += 1
            if service_errors == len(ids):
                summary.fatal = "SV no disponible"
                break
    finally:
        client.close()
    if summary.delivered:
        summary.fatal = ""
    summary.seconds = time.monotonic() - started
    return summary


def sv_deliveries_retry_now(*, delivery_pks: Iterable[int]) -> dict[str, int]:
    """Admin "retry now": re-arm the given failed/pending rows and attempt each one now.

    Returns counts by result name. Raises `SvNotConfigured` when `URL_SV` is unset.
    """
    delivery_pks = list(delivery_pks)
    client = SvClient.from_settings()
    SvDelivery.objects.filter(pk__in=delivery_pks, status=SvDelivery.Status.FAILED).update(
        status=SvDelivery.Status.PENDING, attempts=0, updated_at=timezone.now()
    )
    counts: dict[str, int] = {}
    try:
        for pk in delivery_pks:
            result = sv_delivery_attempt(delivery_pk=pk, client=client, force=True)
            counts[result.value] = counts.get(result.value, 0) + 1
    finally:
        client.close()
    return counts
