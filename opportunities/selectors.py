"""Reads on opportunities and what hangs from them (docs/api.md "Endpoints")."""

from __future__ import annotations

import re

from django.core.files import File
from django.db.models import Case, CharField, Count, Exists, OuterRef, Q, QuerySet, Value, When

from crm.errors import NotFound

from .attachment_files import attachment_file_checked_open
from .models import ActionHistory, Attachment, Meeting, Opportunity, SvDelivery

OPPORTUNITY_ID_RE = re.compile(r"[0-9a-f]{17}")
OPPORTUNITY_NOT_FOUND = "Oportunidad no encontrada"
ATTACHMENT_NOT_FOUND = "Comprobante no encontrado"
ATTACHMENT_FILE_MISSING = "El archivo del comprobante no está disponible"


def opportunity_id_check(*, opportunity_id: str) -> None:
    """Raise `NotFound` for an id that cannot exist (ids are 17 lowercase hex characters);
    no query."""
    if not OPPORTUNITY_ID_RE.fullmatch(opportunity_id or ""):
        raise NotFound(OPPORTUNITY_NOT_FOUND)


def opportunity_must_exist(*, opportunity_id: str) -> None:
    """Raise `NotFound` unless the opportunity exists (one cheap query, no row fetched)."""
    opportunity_id_check(opportunity_id=opportunity_id)
    if not Opportunity.objects.filter(pk=opportunity_id).exists():
        raise NotFound(OPPORTUNITY_NOT_FOUND)


def opportunity_get(*, opportunity_id: str) -> Opportunity:
    """Return the opportunity with `opportunity_id`; raises `NotFound` when there is none."""
    opportunity_id_check(opportunity_id=opportunity_id)
    try:
        return Opportunity.objects.get(pk=opportunity_id)
    except Opportunity.DoesNotExist:
        raise NotFound(OPPORTUNITY_NOT_FOUND) from None


def meeting_list(*, opportunity: Opportunity) -> QuerySet[Meeting]:
    """The opportunity's meetings, earliest first."""
    return Meeting.objects.filter(opportunity=opportunity).order_by("date_start", "id")


def action_history_list(*, opportunity: Opportunity) -> QuerySet[ActionHistory]:
    """The opportunity's action history, newest first."""
    return ActionHistory.objects.filter(opportunity=opportunity).order_by("-created_at", "-id")


def attachment_list(*, opportunity: Opportunity) -> QuerySet[Attachment]:
    """The opportunity's attached comprobantes, oldest first."""
    return Attachment.objects.filter(opportunity=opportunity).order_by("created_at", "id")


def attachment_get(*, opportunity: Opportunity, attachment_id: int) -> Attachment:
    """One attachment of `opportunity`; raises `NotFound` when it is not one of its own."""
    try:
        return Attachment.objects.get(opportunity=opportunity, pk=attachment_id)
    except (Attachment.DoesNotExist, ValueError):
        raise NotFound(ATTACHMENT_NOT_FOUND) from None


def attachment_file_open(*, attachment: Attachment) -> File:
    """The attachment's stored PDF, open for reading; raises `NotFound` when the file is missing,
    marked by `attachments_check` or cut (`attachment_files.attachment_file_checked_open`)."""
    try:
        return attachment_file_checked_open(attachment)
    except OSError:  # FileNotFoundError included
        raise NotFound(ATTACHMENT_FILE_MISSING) from None


# The ways a sale is closed as Cierre ganado, as the start page and the history list name them.
CLOSING_DIRECT = "factura_directa"
CLOSING_SERVICE_ORDERS = "orden_servicio"
CLOSING_WAYS = {CLOSING_DIRECT: "Factura directa", CLOSING_SERVICE_ORDERS: "Orden de servicio (O.S)"}


def first_closings(*, way: str | None = None) -> QuerySet[ActionHistory]:
    """The `closed_won` records that closed their opportunity for the first time, annotated with
    `closing_way` (`CLOSING_DIRECT` or `CLOSING_SERVICE_ORDERS`) from their `data.via` (`subState`
    for records without it): one per sale closed (docs/decisions.md, "Sales closed per week").

    Later `closed_won` records of the same opportunity are not new sales: the sub-state moving to
    `factura_directa` when its O.S is invoiced, or a direct invoice after a close with O.S.
    `way` keeps the closings of that way only.
    """
    closed_won = ActionHistory.Action.CLOSED_WON
    earlier = ActionHistory.objects.filter(opportunity=OuterRef("opportunity"), action=closed_won).filter(
        Q(created_at__lt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), id__lt=OuterRef("id"))
    )
    closings = (
        ActionHistory.objects.filter(action=closed_won)
        .exclude(Exists(earlier))
        .annotate(
            closing_way=Case(
                When(data__via="cFacturas", then=Value(CLOSING_DIRECT)),
                When(data__via="cOrdenesServicio", then=Value(CLOSING_SERVICE_ORDERS)),
                When(data__subState="factura_directa", then=Value(CLOSING_DIRECT)),
                default=Value(CLOSING_SERVICE_ORDERS),
                output_field=CharField(),
            )
        )
    )
    return closings if way is None else closings.filter(closing_way=way)


def sv_backlog() -> dict[str, int]:
    """SV deliveries still to deliver, by status: `{"pending": n, "failed": n}` (one query;
    `/health` and `/metrics`)."""
    statuses = (SvDelivery.Status.PENDING, SvDelivery.Status.FAILED)
    return SvDelivery.objects.aggregate(**{status.value: Count("id", filter=Q(status=status)) for status in statuses})
