"""The polling schedule in the admin (docs/admin.md, docs/operations.md "Polling schedule"): which
pending O.S the cron no longer asks about ("consultas detenidas": no invoice after
`POLL_DAILY_UNTIL_DAYS`), a list filter for them on the O.S list and on the waiting list, when the
cron asks next, and the "Reanudar consultas" action (restart the schedule from now and check
right away)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from billing.admin_checks import service_orders_check_now
from billing.models import OpportunityServiceOrder
from billing.schedule import PollSteps, is_stopped, next_check_at, stopped_label, stopped_q
from billing.selectors import service_orders_pending
from billing.services.resume import service_orders_resume
from crm.admin_ui.display import clinic_datetime

RESUME_ACTION_LABEL = "Reanudar consultas"
STOPPED_PARAMETER, STOPPED_VALUE, ACTIVE_VALUE = "consultas", "detenidas", "activas"


def stopped_condition(now: Any = None) -> Q:
    """Pending O.S the cron no longer asks about."""
    return Q(facturado=False) & stopped_q(now=now or timezone.now(), steps=PollSteps.from_settings())


class _ScheduleFilter(admin.SimpleListFilter):
    title = "consultas automáticas"
    parameter_name = STOPPED_PARAMETER

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(STOPPED_VALUE, f"detenidas ({stopped_label()})"), (ACTIVE_VALUE, "activas")]


class StoppedFilter(_ScheduleFilter):
    """O.S whose automatic checks stopped (pending and too old), or pending ones still asked."""

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == STOPPED_VALUE:
            return queryset.filter(stopped_condition())
        if self.value() == ACTIVE_VALUE:
            return queryset.filter(facturado=False).exclude(stopped_condition())
        return queryset


class StoppedSalesFilter(_ScheduleFilter):
    """Sales with (or without) pending O.S whose automatic checks stopped."""

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() is None:
            return queryset
        stopped = Exists(service_orders_pending().filter(stopped_condition(), opportunity=OuterRef("pk")))
        return queryset.filter(stopped) if self.value() == STOPPED_VALUE else queryset.exclude(stopped)


def next_check_text(row: OpportunityServiceOrder) -> str:
    """When the cron asks about the O.S next, for people."""
    if row.facturado:
        return "-"
    now = timezone.now()
    steps = PollSteps.from_settings()
    if is_stopped(created_at=row.created_at, resumed_at=row.checks_resumed_at, now=now, steps=steps):
        return f"detenida ({stopped_label()}): use «{RESUME_ACTION_LABEL}»"
    moment = next_check_at(
        created_at=row.created_at,
        last_checked_at=row.last_checked_at,
        resumed_at=row.checks_resumed_at,
        now=now,
        steps=steps,
        retry_not_before=row.retry_not_before,
    )
    if moment is None:
        return f"ninguna: se detiene antes ({stopped_label()})"
    when = "en la próxima ejecución (cada 5 minutos)" if moment <= now else clinic_datetime(moment)
    return f"{when}; aplazada tras {row.error_streak} error(es) seguidos" if row.error_streak else when


def service_orders_resume_now(*, request: HttpRequest, rows: Iterable[OpportunityServiceOrder]) -> None:
    """The "Reanudar consultas" action: restart the schedule of the selected pending O.S from
    now, then check them right away (the same bounded check as "Consultar estado de facturación
    ahora")."""
    rows = list(rows)
    resumed = set(service_orders_resume(service_order_pks=[row.pk for row in rows]))
    if not resumed:
        messages.warning(request, "Ninguna de las órdenes seleccionadas está pendiente de factura: nada que reanudar.")
        return
    messages.success(
        request,
        f"Consultas automáticas reanudadas para {len(resumed)} orden(es) de servicio: se consultan de nuevo "
        "en cada ejecución, y luego cada vez con menos frecuencia.",
    )
    service_orders_check_now(request=request, rows=[row for row in rows if row.pk in resumed])
