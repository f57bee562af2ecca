"""Django admin for service orders (O.S) and the sales waiting for their invoice (Spanish).

Service orders are written only by the API and the poller; the admin shows them (when each was
registered, its number and description from the metadata, why it is stuck and who must act) and
offers "Consultar estado de facturación ahora" (billing/admin_checks.py). The list of sales
waiting for their invoice is billing/admin_waiting.py.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from billing.admin_checks import (
    CHECK_ACTION_LABEL,
    service_orders_check_now,
    user_can_check_service_orders,
)
from billing.admin_display import (
    OUTAGE_CHANGE_LIST_TEMPLATE,
    MifactOutageNoticeMixin,
    ProblemFilter,
    ServiceOrderColumns,
    SharedFilter,
    problem_html,
    service_order_status_html,
    shared_sales_html,
)
from billing.admin_schedule import RESUME_ACTION_LABEL, StoppedFilter, next_check_text, service_orders_resume_now
from billing.admin_waiting import SaleAwaitingInvoiceAdmin
from billing.models import OpportunityServiceOrder, SaleAwaitingInvoice
from billing.selectors import WAITING_AGES, service_orders_with_shared_count
from crm.admin_ui.display import clinic_datetime
from crm.admin_ui.export import ListExportMixin
from crm.admin_ui.readonly import ReadOnlyAdminMixin, pretty_json
from crm.admin_ui.search import FoldedSearchMixin
from opportunities.admin import opportunity_link

__all__ = ["CHECK_ACTION_LABEL", "ServiceOrderInline", "service_orders_check_now", "user_can_check_service_orders"]


class WaitingAgeFilter(admin.SimpleListFilter):
    """Pending O.S by how long they have waited since they were registered."""

    title = "esperando factura"
    parameter_name = "espera"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(age.key, age.label) for age in WAITING_AGES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        for age in WAITING_AGES:
            if self.value() == age.key:
                return queryset.filter(age.q(timezone.now()), facturado=False)
        return queryset


class ServiceOrderInline(ServiceOrderColumns, ReadOnlyAdminMixin, admin.TabularInline):
    """The opportunity's service orders, read-only (shown on the opportunity page)."""

    model = OpportunityServiceOrder
    fk_name = "opportunity"
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    fields = (
        "service_order_id",
        "number",
        "description",
        "status",
        "invoice_result_head_id",
        "registered",
        "last_checked",
        "problem",
    )
    readonly_fields = fields
    ordering = ("created_at", "id")
    verbose_name = "orden de servicio"
    verbose_name_plural = "órdenes de servicio"

    def get_queryset(self, request: HttpRequest) -> QuerySet[OpportunityServiceOrder]:
        return service_orders_with_shared_count(super().get_queryset(request))

    @admin.display(description="estado")
    def status(self, obj: Any) -> str:
        """The state; an O.S also on another sale names that sale (docs/decisions.md)."""
        status = service_order_status_html(obj)
        return format_html("{}{}", status, shared_sales_html(obj)) if obj.shared_with else status

    @admin.display(description="registrada")
    def registered(self, obj: OpportunityServiceOrder) -> str:
        return clinic_datetime(obj.created_at)

    @admin.display(description="última consulta")
    def last_checked(self, obj: OpportunityServiceOrder) -> str:
        return clinic_datetime(obj.last_checked_at, empty="nunca")

    @admin.display(description="problema")
    def problem(self, obj: OpportunityServiceOrder) -> str:
        return problem_html(obj)


@admin.register(OpportunityServiceOrder)
class OpportunityServiceOrderAdmin(
    ListExportMixin,
    MifactOutageNoticeMixin,
    ServiceOrderColumns,
    FoldedSearchMixin,
    ReadOnlyAdminMixin,
    admin.ModelAdmin,
):
    """Read-only list of service orders with the "check now" action. The list keeps what fits a
    1366 px screen; the rest is on each O.S's page."""

    list_display = (
        "service_order_id",
        "number",
        "description",
        "opportunity_name",
        "status",
        "registered",
        "last_checked",
        "problem",
    )
    list_display_links = ("service_order_id",)
    change_list_template = OUTAGE_CHANGE_LIST_TEMPLATE
    list_filter = (
        "facturado",
        ProblemFilter,
        WaitingAgeFilter,
        StoppedFilter,
        SharedFilter,
        "created_at",
        "last_checked_at",
        "voided_at",
    )
    search_fields = ("search_text__contains", "=opportunity__id", "opportunity__search_text__contains")
    search_help_text = (
        "Buscar por número de O.S (OS-456 o 456), descripción, paciente, historia clínica o id de la oportunidad."
    )
    list_select_related = ("opportunity",)
    list_per_page = 50
    ordering = ("-created_at", "-id")
    # One count per page (of the filtered rows), not a second one of the whole table (docs/admin.md "The lists").
    show_full_result_count = False
    actions = ("check_invoice_status_now", "resume_checks")
    fields = (
        "opportunity_name",
        "service_order_id",
        "number",
        "description",
        "status_full",
        "registered",
        "invoiced",
        "voided",
        "last_checked",
        "next_check",
        "problem_full",
        "invoice_result_head_id",
        "url_soles",
        "url_dolares",
        "metadata_pretty",
        "updated_at",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[OpportunityServiceOrder]:
        return service_orders_with_shared_count(super().get_queryset(request))

    @admin.display(description="oportunidad", ordering="opportunity__name")
    def opportunity_name(self, obj: OpportunityServiceOrder) -> str:
        return opportunity_link(obj.opportunity)

    @admin.display(description="estado", ordering="facturado")
    def status(self, obj: Any) -> str:
        return service_order_status_html(obj, shared_with=obj.shared_with)

    @admin.display(description="estado")
    def status_full(self, obj: Any) -> str:
        return format_html("{}{}", service_order_status_html(obj), shared_sales_html(obj))

    @admin.display(description="facturada")
    def invoiced(self, obj: OpportunityServiceOrder) -> str:
        return clinic_datetime(obj.invoiced_at)

    @admin.display(description="comprobante anulado")
    def voided(self, obj: OpportunityServiceOrder) -> str:
        return clinic_datetime(obj.voided_at)

    @admin.display(description="registrada", ordering="created_at")
    def registered(self, obj: OpportunityServiceOrder) -> str:
        return clinic_datetime(obj.created_at)

    @admin.display(description="última consulta", ordering="last_checked_at")
    def last_checked(self, obj: OpportunityServiceOrder) -> str:
        return clinic_datetime(obj.last_checked_at, empty="nunca")

    @admin.display(description="problema")
    def problem(self, obj: OpportunityServiceOrder) -> str:
        return problem_html(obj)

    @admin.display(description="próxima consulta automática")
    def next_check(self, obj: OpportunityServiceOrder) -> str:
        return next_check_text(obj)

    @admin.display(description="problema")
    def problem_full(self, obj: OpportunityServiceOrder) -> str:
        return problem_html(obj, full=True)

    @admin.display(description="metadatos (del sistema de ventas)")
    def metadata_pretty(self, obj: OpportunityServiceOrder) -> str:
        return pretty_json(obj.metadata)

    def has_check_permission(self, request: HttpRequest) -> bool:
        return user_can_check_service_orders(request)

    @admin.action(description=CHECK_ACTION_LABEL, permissions=["check"])
    def check_invoice_status_now(self, request: HttpRequest, queryset: QuerySet[OpportunityServiceOrder]) -> None:
        service_orders_check_now(request=request, rows=queryset.order_by("facturado", "id"))

    @admin.action(description=RESUME_ACTION_LABEL, permissions=["check"])
    def resume_checks(self, request: HttpRequest, queryset: QuerySet[OpportunityServiceOrder]) -> None:
        service_orders_resume_now(request=request, rows=queryset.order_by("id"))


admin.site.register(SaleAwaitingInvoice, SaleAwaitingInvoiceAdmin)
