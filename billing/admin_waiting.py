"""The admin's "Ventas esperando factura": each opportunity with pending service orders (O.S),
longest waiting first, with its patient, clinic history, the O.S (links), since when it waits,
the last check and the last error in plain Spanish with who must act (billing/problems.py).
Staff with the opportunity and service-order view permissions see it (no permission of its own);
"Consultar estado de facturación ahora" checks the selected sales' pending O.S.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ORDER_VAR
from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.db.models.expressions import Combinable
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from billing.admin_checks import CHECK_ACTION_LABEL, opportunities_check_now, user_can_check_service_orders
from billing.admin_display import (
    OUTAGE_CHANGE_LIST_TEMPLATE,
    MifactOutageNoticeMixin,
    ProblemFilter,
    problem_condition,
    problem_html,
    service_order_link,
)
from billing.admin_schedule import RESUME_ACTION_LABEL, StoppedSalesFilter, service_orders_resume_now
from billing.models import OpportunityServiceOrder, SaleAwaitingInvoice
from billing.selectors import sales_awaiting_invoice, service_orders_pending
from crm.admin_ui.display import clinic_datetime, waiting_time
from crm.admin_ui.export import ListExportMixin
from crm.admin_ui.readonly import ReadOnlyAdminMixin
from crm.admin_ui.search import FoldedSearchMixin

VIEW_PERMISSIONS = ("opportunities.view_opportunity", "billing.view_opportunityserviceorder")


def patient_name(opportunity: Any) -> str:
    """The patient's full name, or "-"."""
    parts = (
        opportunity.c_patientsname,
        opportunity.c_patients_paternal_last_name,
        opportunity.c_patients_maternal_last_name,
    )
    return " ".join(part for part in parts if part) or "-"


def _last_failed(orders: list[OpportunityServiceOrder]) -> OpportunityServiceOrder | None:
    failed = [row for row in orders if row.last_error]
    return max(failed, key=lambda row: (row.last_checked_at is not None, row.last_checked_at, row.pk), default=None)


VOIDED_NOTE = "comprobante anulado: espera reemisión"


class WhoMustActFilter(ProblemFilter):
    """Sales by who must act on the errors of their pending O.S."""

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        orders = service_orders_pending().filter(opportunity=OuterRef("pk"))
        if value == "sin_error":  # none of its pending O.S has an error
            return queryset.exclude(Exists(orders.filter(problem_condition("con_error"))))
        return queryset.filter(Exists(orders.filter(problem_condition(value))))


class SaleAwaitingInvoiceAdmin(
    ListExportMixin, MifactOutageNoticeMixin, FoldedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    """Registered in billing/admin.py."""

    list_display = (
        "sale",
        "patient",
        "c_clinic_history",
        "orders",
        "waiting",
        "last_checked",
        "last_error",
    )
    list_display_links = None
    change_list_template = OUTAGE_CHANGE_LIST_TEMPLATE
    list_filter = (WhoMustActFilter, StoppedSalesFilter)
    search_fields = ("=id", "search_text__contains", "service_orders__search_text__contains")
    search_help_text = "Buscar por paciente, documento, historia clínica, número de O.S o id de la oportunidad."
    list_per_page = 50
    # One count per page (of the filtered rows), not a second one of the whole table (docs/admin.md "The lists").
    show_full_result_count = False
    actions = ("check_invoice_status_now", "resume_checks")

    def get_ordering(self, request: HttpRequest) -> list[str | Combinable]:
        # Longest waiting first (the column sorts both ways); `waiting_since` is an annotation.
        return ["waiting_since", "id"]

    def change_view(self, request: HttpRequest, object_id: str, *args: Any, **kwargs: Any) -> HttpResponseRedirect:
        """A sale's page is its opportunity's page."""
        return HttpResponseRedirect(reverse("admin:opportunities_opportunity_change", args=[object_id]))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # Annotated before it is ordered: the ordering is on an annotation.
        pending = service_orders_pending().order_by("created_at", "id")
        queryset = sales_awaiting_invoice(self.model._default_manager.get_queryset()).prefetch_related(
            Prefetch("service_orders", queryset=pending, to_attr="pending_orders")
        )
        return queryset.order_by(*self.get_ordering(request))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_staff and request.user.has_perms(VIEW_PERMISSIONS)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_check_permission(self, request: HttpRequest) -> bool:
        return user_can_check_service_orders(request)

    @admin.display(description="venta", ordering="name")
    def sale(self, obj: SaleAwaitingInvoice) -> str:
        url = reverse("admin:opportunities_opportunity_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.name)

    @admin.display(description="paciente", ordering="c_patients_paternal_last_name")
    def patient(self, obj: SaleAwaitingInvoice) -> str:
        return patient_name(obj)

    @admin.display(description="O.S pendientes")
    def orders(self, obj: Any) -> str:
        # An O.S pending again because its comprobante was voided says so: it waits for a reissue.
        return format_html_join(
            ", ",
            "{}{}",
            (
                (
                    service_order_link(row),
                    format_html(' <span class="crm-alert">({})</span>', VOIDED_NOTE) if row.voided_at else "",
                )
                for row in obj.pending_orders
            ),
        )

    @admin.display(description="esperando desde", ordering="waiting_since")
    def waiting(self, obj: Any) -> str:
        return format_html(
            '<span class="crm-waiting">{}</span><br><span class="crm-quiet">{}</span>',
            waiting_time(obj.waiting_since),
            clinic_datetime(obj.waiting_since),
        )

    @admin.display(description="última consulta", ordering="last_checked_at")
    def last_checked(self, obj: Any) -> str:
        return clinic_datetime(obj.last_checked_at, empty="nunca")

    @admin.display(description="último error")
    def last_error(self, obj: Any) -> str:
        row = _last_failed(obj.pending_orders)
        return "-" if row is None else format_html("{}: {}", row.label, problem_html(row))

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        # The title says the order only while it is the list's own (no column sort picked).
        order = "" if ORDER_VAR in request.GET else " (la que más espera primero)"
        title = {"title": f"Ventas esperando factura{order}"}
        return super().changelist_view(request, extra_context={**title, **(extra_context or {})})

    @admin.action(description=CHECK_ACTION_LABEL, permissions=["check"])
    def check_invoice_status_now(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        opportunities_check_now(request=request, opportunities=queryset)

    @admin.action(description=RESUME_ACTION_LABEL, permissions=["check"])
    def resume_checks(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        """Resume the automatic checks of the selected sales' pending O.S."""
        selected = list(queryset.values_list("pk", flat=True))
        rows = service_orders_pending().filter(opportunity__in=selected).order_by("opportunity_id", "id")
        service_orders_resume_now(request=request, rows=rows)
