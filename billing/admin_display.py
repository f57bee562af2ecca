"""How service orders read in the admin: a link named by the O.S number, their common columns
(the state, a voided comprobante waiting for its reissue, the same O.S on another sale), and why
an O.S is stuck with who must act (billing/problems.py), also as list filters."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from billing.models import OpportunityServiceOrder
from billing.outage import mifact_outage
from billing.problems import KINDS_BY_RESPONSIBLE, Responsible, service_order_problem
from billing.selectors import opportunities_sharing, service_orders_shared

# The state of an O.S, as staff read it.
STATUS_INVOICED = "Facturada"
STATUS_PENDING = "Pendiente de factura"
STATUS_VOIDED = "Comprobante anulado, esperando reemisión"
SHARED_NOTE = "Esta O.S también está registrada en otra venta"


def service_order_link(row: OpportunityServiceOrder) -> str:
    """A link to the O.S's admin page, named by its number."""
    url = reverse("admin:billing_opportunityserviceorder_change", args=[row.pk])
    return format_html('<a href="{}">{}</a>', url, row.number)


def problem_html(row: OpportunityServiceOrder, *, full: bool = False) -> str:
    """Why the O.S is stuck and who must act ("-" when its last check went fine); `full` adds
    what to do and the technical message."""
    problem = service_order_problem(last_error=row.last_error, kind=row.last_error_kind)
    if problem is None:
        return "-"
    who = format_html('<strong class="crm-who">Debe actuar: {}.</strong>', problem.who)
    actor = problem.responsible.value
    if not full:
        return format_html('<span class="crm-problem crm-actor-{}">{} {}</span>', actor, problem.summary, who)
    return format_html(
        '<div class="crm-problem crm-actor-{}"><p>{} {}</p><p>{}</p>'
        '<p class="crm-technical">Detalle técnico: {}</p></div>',
        actor,
        problem.summary,
        who,
        problem.action,
        row.last_error,
    )


# The "problema" filter of the O.S list and of the waiting list: its choices, and the condition
# on an O.S that each choice stands for.
PROBLEM_CHOICES = [
    ("con_error", "Con error"),
    (Responsible.IT.value, f"Debe actuar: {Responsible.IT.label}"),
    (Responsible.BILLING.value, f"Debe actuar: {Responsible.BILLING.label}"),
    ("sin_error", "Sin error"),
]


def problem_condition(value: str) -> Q:
    """The condition on an O.S of a "problema" filter choice (`sin_error`: no error recorded)."""
    if value == "sin_error":
        return Q(last_error="")
    failing = ~Q(last_error="")
    if value == "con_error":
        return failing
    return failing & Q(last_error_kind__in=KINDS_BY_RESPONSIBLE[Responsible(value)])


class ProblemFilter(admin.SimpleListFilter):
    """O.S by who must act on their last error."""

    title = "problema"
    parameter_name = "problema"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return PROBLEM_CHOICES

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset if value is None else queryset.filter(problem_condition(value))


def service_order_status_text(row: OpportunityServiceOrder) -> str:
    """Facturada, pendiente, or voided and waiting for the reissue."""
    if row.facturado:
        return STATUS_INVOICED
    return STATUS_VOIDED if row.voided_at else STATUS_PENDING


def shared_url(row: OpportunityServiceOrder) -> str:
    """The O.S list showing every sale this O.S id is registered on."""
    url = reverse("admin:billing_opportunityserviceorder_changelist")
    return f"{url}?compartida=si&q={row.service_order_id}"


def service_order_status_html(row: OpportunityServiceOrder, *, shared_with: int | None = None) -> str:
    """The state (a voided comprobante in the alert colour) and, when the same O.S id is on other
    sales (`shared_with`, from `service_orders_with_shared_count`), a flag linking to them."""
    text = service_order_status_text(row)
    status = format_html('<span class="crm-alert">{}</span>', text) if text == STATUS_VOIDED else text
    if not shared_with:
        return status
    flag = format_html(
        '<br><span class="crm-alert crm-shared"><a href="{}">También en otra venta ({})</a></span>',
        shared_url(row),
        shared_with,
    )
    return format_html("{}{}", status, flag)


def shared_sales_html(row: OpportunityServiceOrder) -> str:
    """On an O.S's or an opportunity's page: the other sales this O.S id is registered on, as
    links, or "" (one query)."""
    others = list(opportunities_sharing(service_order=row))
    if not others:
        return ""
    links = format_html_join(
        ", ",
        '<a href="{}">{}</a>',
        ((reverse("admin:opportunities_opportunity_change", args=[o.pk]), o.name) for o in others),
    )
    return format_html(
        '<p class="crm-alert crm-shared"><strong>{}:</strong> {}. Revisar cuál venta corresponde; '
        '<strong class="crm-who">Debe actuar: Facturación.</strong></p>',
        SHARED_NOTE,
        links,
    )


class SharedFilter(admin.SimpleListFilter):
    """O.S whose id is registered on more than one sale."""

    title = "en más de una venta"
    parameter_name = "compartida"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("si", "Sí")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(pk__in=service_orders_shared().values("pk")) if self.value() == "si" else queryset


# The changelist template of the lists that use `MifactOutageNoticeMixin`.
OUTAGE_CHANGE_LIST_TEMPLATE = "admin/billing/change_list_outage.html"


class MifactOutageNoticeMixin:
    """A changelist that says at its top when invoice-mifact cannot be used (billing/outage.py):
    since when, why and who must act. The admin sets `change_list_template =
    OUTAGE_CHANGE_LIST_TEMPLATE`."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        context = {"mifact_outage": mifact_outage(), **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)  # type: ignore[misc]


class ServiceOrderColumns:
    """The columns of an O.S that every list of them shows."""

    @admin.display(description="número O.S")
    def number(self, obj: OpportunityServiceOrder) -> str:
        return obj.numero_os or "-"

    @admin.display(description="descripción")
    def description(self, obj: OpportunityServiceOrder) -> str:
        return obj.description or "-"
