"""The "Consultar estado de facturación ahora" action of the admin (service orders, opportunities,
sales waiting for their invoice): checks the selected O.S against invoice-mifact right away,
pending and invoiced alike, whatever the follow-up schedule says (a *forced* check,
billing/services/forced.py), with the same units of work the PUT endpoint and the poller use, and
tells staff in Spanish what happened (invoiced, still valid, voided, reissued) and, for each
failure, who must act (billing/problems.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest

from billing.mifact import mifact_configuration_problem, shared_mifact_client
from billing.models import OpportunityServiceOrder, ServiceOrderErrorKind
from billing.problems import PROBLEMS, service_order_problem
from billing.selectors import service_orders_forced
from billing.services.checks import CheckResult, service_orders_check_bounded
from billing.services.forced import service_order_check_now

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


def _error_line(service_order_id: int | None, error: str, kind: str) -> str:
    problem = service_order_problem(last_error=error or "error", kind=kind)
    assert problem is not None
    return f"O.S {service_order_id}: {problem.summary} Debe actuar: {problem.who}. (Detalle: {error})"


def service_orders_check_now(
    *,
    request: HttpRequest,
    rows: Iterable[OpportunityServiceOrder],
    nothing_message: str = "No se seleccionó ninguna orden de servicio.",
) -> None:
    """Check the given O.S against invoice-mifact now and report the counts to the user.

    Every row is checked, pending ones for their invoice and invoiced ones for a void or a
    reissue (`service_order_check_now`), through the same bounded loop as the PUT
    (`service_orders_check_bounded`): at most `ADMIN_CHECK_MAX_ROWS` per click, none started after
    `ADMIN_CHECK_BUDGET_SECONDS`, none after `ADMIN_CHECK_MAX_SERVICE_FAILURES` invoice-mifact
    failures in a row. The completion (PDFs, sub-state, history) is the same as for the PUT and
    the poller, and a row being checked by someone else right now is skipped.
    """
    rows = list(rows)
    if not rows:
        messages.warning(request, nothing_message)
        return
    client = shared_mifact_client()
    if client is None:
        problem = PROBLEMS[ServiceOrderErrorKind.CONFIGURATION]
        messages.error(
            request,
            f"invoice-mifact no está configurado ({mifact_configuration_problem()}); "
            f"no se consultó ninguna orden de servicio. Debe actuar: {problem.who}.",
        )
        return
    report = service_orders_check_bounded(
        rows=rows,
        client=client,
        max_rows=ADMIN_CHECK_MAX_ROWS,
        budget_seconds=ADMIN_CHECK_BUDGET_SECONDS,
        max_service_failures=ADMIN_CHECK_MAX_SERVICE_FAILURES,
        check=service_order_check_now,
    )
    checked = invoiced = errors = skipped = 0
    followed = {CheckResult.STILL_VALID: 0, CheckResult.VOIDED: 0, CheckResult.REPLACED: 0}
    error_lines: list[str] = []
    for outcome in report.outcomes:
        if outcome.result in (CheckResult.SKIPPED, CheckResult.ALREADY_DONE):
            skipped += 1
            continue
        if outcome.result is CheckResult.SERVICE_ERROR:
            errors += 1
            error_lines.append(_error_line(outcome.service_order_id, outcome.error, outcome.error_kind))
            continue
        checked += 1
        if outcome.result in followed:
            followed[outcome.result] += 1
        elif outcome.result is CheckResult.INVOICED:
            invoiced += 1
        elif outcome.result is CheckResult.ERROR:
            errors += 1
            error_lines.append(_error_line(outcome.service_order_id, outcome.error, outcome.error_kind))

    summary = f"Órdenes de servicio consultadas: {checked}; facturadas: {invoiced}; con error: {errors}."
    if any(followed.values()):
        summary += (
            f" Ya facturadas: comprobante vigente {followed[CheckResult.STILL_VALID]}; "
            f"anulado (espera reemisión) {followed[CheckResult.VOIDED]}; "
            f"reemitido {followed[CheckResult.REPLACED]}."
        )
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


def opportunities_check_now(*, request: HttpRequest, opportunities: QuerySet[Any]) -> None:
    """The check-now action on opportunities: all their O.S (pending first), opportunity by
    opportunity (`billing.selectors.service_orders_forced` for each)."""
    rows = [
        row
        for opportunity_id in opportunities.order_by("pk").values_list("pk", flat=True)
        for row in service_orders_forced(opportunity_id=opportunity_id)
    ]
    service_orders_check_now(
        request=request,
        rows=rows,
        nothing_message="Las oportunidades seleccionadas no tienen órdenes de servicio.",
    )
