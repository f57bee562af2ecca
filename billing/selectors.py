"""Reads on service orders, and on the sales waiting for their invoice."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from opportunities.models import Opportunity

from .models import OpportunityServiceOrder
from .schedule import backoff_over_q


def service_orders_pending() -> QuerySet[OpportunityServiceOrder]:
    """Every O.S with `facturado = false` (served by the partial index)."""
    return OpportunityServiceOrder.objects.filter(facturado=False)


def service_orders_invoiced() -> QuerySet[OpportunityServiceOrder]:
    """Every O.S with `facturado = true`."""
    return OpportunityServiceOrder.objects.filter(facturado=True)


def follow_up_enabled() -> bool:
    return settings.INVOICE_FOLLOW_UP_DAYS > 0 and settings.INVOICE_FOLLOW_UP_INTERVAL_MINUTES > 0


def service_orders_due_follow_up(*, round_started_at: dt.datetime, opportunity_id: str | None = None) -> QuerySet:
    """Invoiced O.S of a poll round that are due a follow-up check: invoiced in the last
    `INVOICE_FOLLOW_UP_DAYS`, not checked in the `INVOICE_FOLLOW_UP_INTERVAL_MINUTES` before the
    round started, no error backoff running. Empty when follow-ups are off. (The schedule by age
    does not apply: the follow-up window is already short.)"""
    if not follow_up_enabled():
        return OpportunityServiceOrder.objects.none()
    window_start = round_started_at - dt.timedelta(days=settings.INVOICE_FOLLOW_UP_DAYS)
    checked_before = round_started_at - dt.timedelta(minutes=settings.INVOICE_FOLLOW_UP_INTERVAL_MINUTES)
    due = service_orders_invoiced().filter(invoiced_at__gte=window_start, created_at__lte=round_started_at)
    due = due.filter(Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=checked_before))
    due = due.filter(backoff_over_q(now=round_started_at))  # an error backoff (billing/backoff.py)
    return due if opportunity_id is None else due.filter(opportunity_id=opportunity_id)


def service_orders_forced(*, opportunity_id: str) -> QuerySet[OpportunityServiceOrder]:
    """Every O.S of one opportunity, pending and invoiced alike, whenever each was last checked:
    what a check a person asks for takes (`poll_invoices --opportunity`, the admin's "Consultar
    estado de facturación ahora"). No schedule applies: neither the poll round's "not checked
    since it started" nor the follow-up window and interval of `service_orders_due_follow_up`.
    Pending first, then in the order they were registered."""
    return OpportunityServiceOrder.objects.filter(opportunity_id=opportunity_id).order_by(
        "facturado", "created_at", "id"
    )


def _same_id_elsewhere() -> QuerySet[OpportunityServiceOrder]:
    """The rows with the outer row's O.S id on another opportunity (for subqueries)."""
    return OpportunityServiceOrder.objects.filter(service_order_id=OuterRef("service_order_id")).exclude(
        opportunity_id=OuterRef("opportunity_id")
    )


def service_orders_with_shared_count(queryset: QuerySet[OpportunityServiceOrder]) -> QuerySet[OpportunityServiceOrder]:
    """`queryset` annotated with `shared_with`: on how many other opportunities the same O.S id is
    registered (0 normally; docs/decisions.md "The same O.S on two sales")."""
    others = _same_id_elsewhere().order_by().values("service_order_id").annotate(n=Count("id")).values("n")[:1]
    return queryset.annotate(shared_with=Coalesce(Subquery(others), 0))


def service_orders_shared() -> QuerySet[OpportunityServiceOrder]:
    """Every O.S row whose O.S id is also registered on another opportunity."""
    return OpportunityServiceOrder.objects.filter(Exists(_same_id_elsewhere()))


def shared_service_order_count() -> int:
    """How many O.S ids are registered on more than one opportunity (one query; the start page).
    An O.S id is on one opportunity at most once (a unique constraint), so two opportunities
    differ from each other exactly when the group's first and last differ: no per-group distinct
    count, and the (O.S id, opportunity) index is read alone."""
    return (
        OpportunityServiceOrder.objects.values("service_order_id")
        .annotate(first=Min("opportunity_id"), last=Max("opportunity_id"))
        .exclude(first=F("last"))
        .count()
    )


def opportunities_sharing(*, service_order: OpportunityServiceOrder) -> QuerySet[Opportunity]:
    """The other opportunities the O.S id of `service_order` is registered on."""
    return (
        Opportunity.objects.filter(service_orders__service_order_id=service_order.service_order_id)
        .exclude(pk=service_order.opportunity_id)
        .order_by("created_at", "id")
    )


def service_order_list(*, opportunity: Opportunity) -> QuerySet[OpportunityServiceOrder]:
    """The opportunity's service orders, in the order they were registered."""
    return OpportunityServiceOrder.objects.filter(opportunity=opportunity).order_by("created_at", "id")


@dataclass(frozen=True)
class WaitingAge:
    """A range of time a pending O.S has waited since it was registered: at least `since`, less
    than `until` (None: no bound)."""

    key: str
    label: str
    since: dt.timedelta | None
    until: dt.timedelta | None

    def q(self, now: dt.datetime) -> Q:
        """O.S registered within this range before `now`."""
        condition = Q()
        if self.since is not None:
            condition &= Q(created_at__lte=now - self.since)
        if self.until is not None:
            condition &= Q(created_at__gt=now - self.until)
        return condition


HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
WAITING_AGES: tuple[WaitingAge, ...] = (
    WaitingAge("lt1h", "menos de 1 hora", None, HOUR),
    WaitingAge("1h-24h", "de 1 a 24 horas", HOUR, DAY),
    WaitingAge("1d-7d", "de 1 a 7 días", DAY, 7 * DAY),
    WaitingAge("gt7d", "más de 7 días", 7 * DAY, None),
)


def sales_awaiting_invoice(queryset: QuerySet[Opportunity]) -> QuerySet[Opportunity]:
    """The opportunities of `queryset` with pending O.S (`facturado = false`), annotated with
    `waiting_since` (the oldest pending O.S's registration), `last_checked_at` (their newest check,
    None when never checked) and `pending_count`."""
    pending = service_orders_pending().filter(opportunity=OuterRef("pk")).order_by().values("opportunity")
    return queryset.filter(Exists(pending)).annotate(
        waiting_since=Subquery(pending.annotate(oldest=Min("created_at")).values("oldest")[:1]),
        last_checked_at=Subquery(pending.annotate(newest=Max("last_checked_at")).values("newest")[:1]),
        pending_count=Coalesce(Subquery(pending.annotate(n=Count("id")).values("n")[:1]), 0),
    )


def pending_backlog() -> tuple[int, dt.datetime | None]:
    """How many O.S wait for an invoice, and when the oldest of them was registered (one query;
    `/health` and `/metrics`)."""
    found = service_orders_pending().aggregate(count=Count("id"), oldest=Min("created_at"))
    return found["count"], found["oldest"]
