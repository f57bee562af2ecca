"""How service orders read in the admin: a link named by the O.S number, their common columns,
and why an O.S is stuck with who must act (billing/problems.py), also as a list filter."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from billing.models import OpportunityServiceOrder
from billing.problems import KINDS_BY_RESPONSIBLE, Responsible, service_order_problem


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


class ServiceOrderColumns:
    """The columns of an O.S that every list of them shows."""

    @admin.display(description="número O.S")
    def number(self, obj: OpportunityServiceOrder) -> str:
        return obj.numero_os or "-"

    @admin.display(description="descripción")
    def description(self, obj: OpportunityServiceOrder) -> str:
        return obj.description or "-"
