"""Django admin for service orders (O.S): a read-only list for clinic staff, plus the action
"Consultar estado de facturación ahora" that checks the selected pending O.S against
invoice-mifact right away (the same `service_order_check` the PUT endpoint and the poller use).

Service orders are written only by the API and the poller; the admin never edits them.
Labels and messages are Spanish (the clinic staff's language).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from billing.mifact import mifact_configuration_problem, shared_mifact_client
from billing.models import OpportunityServiceOrder
from billing.services.checks import CheckResult, service_orders_check_bounded
from crm.readonly_admin import ReadOnlyAdminMixin, pretty_json

# The check runs inside the admin request (network calls with timeouts): keep one click bounded,
# well inside the web worker's timeout (`make serve`: GUNICORN_TIMEOUT, 120 s).
ADMIN_CHECK_MAX_ROWS = 20
ADMIN_CHECK_BUDGET_SECONDS = 45.0
# Consecutive invoice-mifact failures after which the action stops instead of waiting out a
# timeout per remaining row (the poller retries them later anyway).
ADMIN_CHECK_MAX_SERVICE_FAILURES = 3
CHECK_PERMISSION = "billing.change_opportunityserviceorder"
CHECK_ACTION_LABEL = "Consultar estado de facturación ahora"


def user_can_check_service_orders(request: HttpRequest) -> bool:
    """Whether the user may run the invoice-status check (the O.S change permission)."""
    return request.user.has_perm(CHECK_PERMISSION)


def service_orders_check_now(
    *,
    request: HttpRequest,
    rows: Iterable[OpportunityServiceOrder],
    nothing_pending_message: str = "Ninguna de las órdenes de servicio seleccionadas está pendiente de facturación.",
) -> None:
    """Check the given O.S against invoice-mifact now and report the counts to the user.

    Only pending rows (`facturado = false`) are checked, through the same bounded loop as the PUT
    (`service_orders_check_bounded`): at most `ADMIN_CHECK_MAX_ROWS` per click, none started after
    `ADMIN_CHECK_BUDGET_SECONDS`, none after `ADMIN_CHECK_MAX_SERVICE_FAILURES` invoice-mifact
    failures in a row. The completion (PDFs, sub-state, history) is the same as for the PUT and
    the poller, and a row being checked by someone else right now is skipped.
    """
    pending = [row for row in rows if not row.facturado]
    if not pending:
        messages.warning(request, nothing_pending_message)
        return
    client = shared_mifact_client()
    if client is None:
        messages.error(
            request,
            f"invoice-mifact no está configurado ({mifact_configuration_problem()}); "
            "no se consultó ninguna orden de servicio.",
        )
        return
    report = service_orders_check_bounded(
        rows=pending,
        client=client,
        max_rows=ADMIN_CHECK_MAX_ROWS,
        budget_seconds=ADMIN_CHECK_BUDGET_SECONDS,
        max_service_failures=ADMIN_CHECK_MAX_SERVICE_FAILURES,
    )
    checked = invoiced = errors = skipped = 0
    error_lines: list[str] = []
    for outcome in report.outcomes:
        if outcome.result in (CheckResult.SKIPPED, CheckResult.ALREADY_DONE):
            skipped += 1
            continue
        if outcome.result is CheckResult.SERVICE_ERROR:
            errors += 1
            error_lines.append(f"O.S {outcome.service_order_id}: invoice-mifact: {outcome.error}")
            continue
        checked += 1
        if outcome.result is CheckResult.INVOICED:
            invoiced += 1
        elif outcome.result is CheckResult.ERROR:
            errors += 1
            error_lines.append(f"O.S {outcome.service_order_id}: {outcome.error}")

    summary = f"Órdenes de servicio consultadas: {checked}; facturadas: {invoiced}; con error: {errors}."
    if skipped:
        summary += f" Omitidas (en consulta por otro proceso o ya completadas): {skipped}."
    messages.add_message(request, messages.WARNING if errors else messages.SUCCESS, summary)
    for line in error_lines[:5]:
        messages.error(request, line)
    if report.after_service_failures:
        messages.warning(
            request,
            "invoice-mifact no responde: se detuvo la consulta; "
            f"{report.after_service_failures} orden(es) quedaron sin consultar.",
        )
    if report.out_of_time:
        messages.warning(
            request, f"Se agotó el tiempo de la consulta; {report.out_of_time} orden(es) quedaron sin consultar."
        )
    if report.over_max_rows:
        messages.warning(
            request,
            f"Se consultan como máximo {ADMIN_CHECK_MAX_ROWS} órdenes por vez; "
            f"{report.over_max_rows} quedaron sin consultar.",
        )
    if report.not_started:
        messages.info(request, "Las órdenes pendientes sin consultar las revisa el proceso automático cada 5 minutos.")


class ServiceOrderInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The opportunity's service orders, read-only (shown on the opportunity page)."""

    model = OpportunityServiceOrder
    fk_name = "opportunity"
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    fields = ("service_order_id", "facturado", "invoice_result_head_id", "last_checked_at", "last_error", "created_at")
    readonly_fields = fields
    ordering = ("created_at", "id")
    verbose_name = "orden de servicio"
    verbose_name_plural = "órdenes de servicio"


@admin.register(OpportunityServiceOrder)
class OpportunityServiceOrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only list of service orders with the "check now" action."""

    list_display = (
        "service_order_id",
        "opportunity",
        "facturado",
        "invoice_result_head_id",
        "last_checked_at",
        "last_error_short",
    )
    list_display_links = ("service_order_id",)
    list_filter = ("facturado", "last_checked_at")
    # O.S ids are integers: `__exact` makes Django compare them as text, so any term is safe.
    search_fields = ("service_order_id__exact", "=opportunity__id")
    search_help_text = "Buscar por número de O.S o por id de la oportunidad."
    list_select_related = ("opportunity",)
    list_per_page = 50
    ordering = ("-created_at", "-id")
    actions = ("check_invoice_status_now",)
    fields = (
        "opportunity",
        "service_order_id",
        "facturado",
        "invoice_result_head_id",
        "url_soles",
        "url_dolares",
        "last_checked_at",
        "last_error",
        "metadata_pretty",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="último error")
    def last_error_short(self, obj: OpportunityServiceOrder) -> str:
        text = obj.last_error or ""
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description="metadata")
    def metadata_pretty(self, obj: OpportunityServiceOrder) -> str:
        return pretty_json(obj.metadata)

    def has_check_permission(self, request: HttpRequest) -> bool:
        return user_can_check_service_orders(request)

    @admin.action(description=CHECK_ACTION_LABEL, permissions=["check"])
    def check_invoice_status_now(self, request: HttpRequest, queryset: QuerySet[OpportunityServiceOrder]) -> None:
        service_orders_check_now(request=request, rows=queryset.filter(facturado=False).order_by("id"))
