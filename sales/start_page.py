"""What the staff's start page (the admin index) shows, read in a fixed number of queries
whatever the number of rows (docs/admin.md "The start page"):

- sales waiting for an invoice (opportunities with pending O.S), the oldest waiting one, pending
  O.S, O.S with an error (and for whom), pending O.S by age: one aggregate over pending O.S, one
  read of the oldest; O.S registered on more than one sale: one grouped count;
- SV deliveries pending and failed: one aggregate;
- comprobantes whose file is missing or wrong and could not be repaired: one count;
- the last `poll_invoices`, `sync_sv` and `send_events` runs: one read each;
- sales closed per week by way of closing, the last 12 weeks (`first_closings`): one grouped read.

Each part is read only when the user may see the list behind it (view permissions). Every
number carries the URL of the filtered admin list it counts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, Min, Q
from django.db.models.functions import TruncWeek
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from billing.problems import KINDS_BY_RESPONSIBLE, Responsible, service_order_problem
from billing.schedule import PollSteps, stopped_label, stopped_q
from billing.selectors import WAITING_AGES, service_orders_pending, shared_service_order_count
from crm.admin_ui.display import clinic_datetime, waiting_time
from jobs.models import CommandRun
from jobs.run_liveness import run_interruption
from jobs.runs import last_runs
from opportunities.models import Attachment, Opportunity, SvDelivery
from opportunities.selectors import CLOSING_DIRECT, CLOSING_SERVICE_ORDERS, CLOSING_WAYS, first_closings

from .charts import Bar, Column, horizontal_bars, stacked_columns

WEEKS = 12
IT_WHO = str(Responsible.IT.label)

# What the start page needs to read each part (the lists behind its numbers).
PERMISSIONS = {
    "invoices": ("opportunities.view_opportunity", "billing.view_opportunityserviceorder"),
    "sv": ("opportunities.view_svdelivery",),
    "files": ("opportunities.view_attachment",),
    "runs": ("jobs.view_commandrun",),
    "closings": ("opportunities.view_actionhistory",),
}


def admin_list(name: str, **filters: Any) -> str:
    """The URL of an admin changelist (`app_model`) with `filters` as its query."""
    url = reverse(f"admin:{name}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


@dataclass
class Invoices:
    """Sales waiting for their invoice and their pending O.S."""

    waiting_sales: int
    pending_orders: int
    oldest_since: dt.datetime | None
    oldest_sale: Opportunity | None
    errors: int
    voided: int  # pending again because their comprobante was voided: waiting for a reissue
    stopped: int  # too old for the cron's schedule: no automatic check any more (billing/schedule.py)
    shared: int  # O.S ids registered on more than one sale (docs/decisions.md)
    errors_by_actor: dict[str, int]
    ages: list[Bar]
    now: dt.datetime

    @property
    def oldest_waiting(self) -> str:
        return waiting_time(self.oldest_since, self.now)

    @property
    def oldest_since_text(self) -> str:
        return clinic_datetime(self.oldest_since)

    @property
    def voided_url(self) -> str:
        return admin_list("billing_opportunityserviceorder", facturado__exact=0, voided_at__isnull="False")

    @property
    def stopped_url(self) -> str:
        return admin_list("billing_opportunityserviceorder", facturado__exact=0, consultas="detenidas")

    @property
    def stopped_label(self) -> str:
        return stopped_label()

    @property
    def shared_url(self) -> str:
        return admin_list("billing_opportunityserviceorder", compartida="si")

    @property
    def waiting_url(self) -> str:
        return admin_list("billing_saleawaitinginvoice")

    @property
    def oldest_url(self) -> str:
        if self.oldest_sale is None:
            return self.waiting_url
        return reverse("admin:opportunities_opportunity_change", args=[self.oldest_sale.pk])

    @property
    def pending_url(self) -> str:
        return admin_list("billing_opportunityserviceorder", facturado__exact=0)

    @property
    def errors_url(self) -> str:
        return admin_list("billing_opportunityserviceorder", facturado__exact=0, problema="con_error")

    @property
    def errors_for(self) -> list[tuple[str, int, str]]:
        """(who, count, list URL) for each actor."""
        return [
            (
                str(actor.label),
                self.errors_by_actor[actor.value],
                admin_list("billing_opportunityserviceorder", facturado__exact=0, problema=actor.value),
            )
            for actor in Responsible
        ]

    @property
    def ages_chart(self) -> SafeString:
        return horizontal_bars(title="O.S esperando factura, por antigüedad", bars=self.ages, unit="O.S")


@dataclass
class Deliveries:
    """The SV outbox rows still to deliver, and those that gave up."""

    pending: int
    failed: int

    @property
    def pending_url(self) -> str:
        return admin_list("opportunities_svdelivery", status__exact=SvDelivery.Status.PENDING)

    @property
    def failed_url(self) -> str:
        return admin_list("opportunities_svdelivery", status__exact=SvDelivery.Status.FAILED)


@dataclass
class MissingFiles:
    """Comprobantes whose file `manage.py attachments_check` found missing or wrong and could not
    repair from their source URL."""

    count: int

    @property
    def url(self) -> str:
        return admin_list("opportunities_attachment", archivo="con_problema")


@dataclass
class Run:
    """The last run of a periodic command, as the start page tells it."""

    command: str
    purpose: str
    run: CommandRun | None
    now: dt.datetime
    problem: str = ""
    stale: bool = False
    # Why a `running` record cannot be running any more (jobs/run_liveness.py), or "".
    interrupted: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.run is not None
            and self.run.outcome in (CommandRun.Outcome.OK, CommandRun.Outcome.RUNNING)
            and not self.stale
            and not self.interrupted
        )

    @property
    def when(self) -> str:
        return clinic_datetime(self.run.started_at) if self.run else ""

    @property
    def ago(self) -> str:
        return waiting_time(self.run.started_at, self.now) if self.run else ""

    @property
    def outcome(self) -> str:
        if self.interrupted:
            return "interrumpida"
        return str(self.run.get_outcome_display()) if self.run else "nunca se ejecutó"

    @property
    def who(self) -> str:
        return "" if self.ok else IT_WHO

    @property
    def url(self) -> str:
        return admin_list("jobs_commandrun", command=self.command)


@dataclass
class Closings:
    """Sales closed per week (Monday to Sunday, clinic time) by way of closing."""

    columns: list[Column]
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def chart(self) -> SafeString:
        return stacked_columns(
            title=f"Ventas cerradas por semana, últimas {WEEKS} semanas",
            columns=self.columns,
            legend=[(CLOSING_WAYS[way], CLOSING_CSS[way]) for way in (CLOSING_DIRECT, CLOSING_SERVICE_ORDERS)],
        )


CLOSING_CSS = {CLOSING_DIRECT: "crm-bar crm-bar-direct", CLOSING_SERVICE_ORDERS: "crm-bar crm-bar-os"}


@dataclass
class StartPage:
    """Everything the start page shows; a part is None when the user may not see it."""

    now: dt.datetime
    invoices: Invoices | None = None
    deliveries: Deliveries | None = None
    missing_files: MissingFiles | None = None
    runs: list[Run] | None = None
    closings: Closings | None = None


def _invoices(now: dt.datetime) -> Invoices:
    with_error = ~Q(last_error="")
    counts = service_orders_pending().aggregate(
        orders=Count("id"),
        sales=Count("opportunity", distinct=True),
        oldest=Min("created_at"),
        errors=Count("id", filter=with_error),
        voided=Count("id", filter=Q(voided_at__isnull=False)),
        stopped=Count("id", filter=stopped_q(now=now, steps=PollSteps.from_settings())),
        **{
            f"errors_{actor.value}": Count("id", filter=with_error & Q(last_error_kind__in=KINDS_BY_RESPONSIBLE[actor]))
            for actor in Responsible
        },
        **{f"age_{age.key}": Count("id", filter=age.q(now)) for age in WAITING_AGES},
    )
    oldest = service_orders_pending().select_related("opportunity").order_by("created_at", "id").first()
    ages = [
        Bar(
            label=age.label,
            value=counts[f"age_{age.key}"],
            url=admin_list("billing_opportunityserviceorder", facturado__exact=0, espera=age.key),
            css=f"crm-bar crm-age-{index}",
        )
        for index, age in enumerate(WAITING_AGES)
    ]
    return Invoices(
        waiting_sales=counts["sales"],
        pending_orders=counts["orders"],
        oldest_since=counts["oldest"],
        oldest_sale=oldest.opportunity if oldest else None,
        errors=counts["errors"],
        voided=counts["voided"],
        stopped=counts["stopped"],
        shared=shared_service_order_count(),
        errors_by_actor={actor.value: counts[f"errors_{actor.value}"] for actor in Responsible},
        ages=ages,
        now=now,
    )


def _deliveries() -> Deliveries:
    Status = SvDelivery.Status
    counts = SvDelivery.objects.filter(status__in=[Status.PENDING, Status.FAILED]).aggregate(
        pending=Count("id", filter=Q(status=Status.PENDING)), failed=Count("id", filter=Q(status=Status.FAILED))
    )
    return Deliveries(pending=counts["pending"], failed=counts["failed"])


def cron_frequency(command: str) -> str:
    """How often `settings.CRONJOBS` runs `command`, as staff read it ("cada 5 minutos")."""
    for schedule, _function, args, *_ in settings.CRONJOBS:
        if list(args)[:1] == [command]:
            minute = schedule.split()[0]
            if minute == "*" and schedule.split()[1:] == ["*"] * 4:
                return "cada minuto"
            if minute.startswith("*/") and schedule.split()[1:] == ["*"] * 4:
                return f"cada {minute[2:]} minutos"
            return f"según el horario «{schedule}»"
    return "según la tarea programada"


def _run(command: str, purpose: str, now: dt.datetime) -> Run:
    runs = last_runs(command=command, limit=1)
    summary = Run(command=command, purpose=purpose, run=runs[0] if runs else None, now=now)
    if summary.run is None:
        summary.problem = "No hay registro de ninguna ejecución: revisar la tarea programada (cron)."
        return summary
    # Each runs every few minutes (CRONJOBS): a last run older than the /health limit means cron
    # stopped.
    limit = dt.timedelta(minutes=settings.HEALTH_POLL_MAX_AGE_MINUTES)
    if now - summary.run.started_at > limit:
        summary.stale = True
        summary.problem = (
            f"No se ejecuta desde hace {summary.ago}: revisar la tarea programada (cron), "
            f"que debe correr {cron_frequency(command)}."
        )
    elif interrupted := run_interruption(summary.run, now=now):
        summary.interrupted = interrupted
        host = summary.run.host
        summary.problem = f"Ejecución {interrupted} (servidor {host}); la próxima ejecución retoma su trabajo."
    elif summary.run.fatal:
        explained = service_order_problem(last_error=summary.run.fatal) if command == "poll_invoices" else None
        summary.problem = explained.summary if explained else summary.run.fatal
    return summary


def week_start(moment: dt.datetime) -> dt.datetime:
    """Monday 00:00 (clinic time) of the week of `moment`."""
    local = timezone.localtime(moment)
    monday = local.date() - dt.timedelta(days=local.weekday())
    return timezone.make_aware(dt.datetime.combine(monday, dt.time()), timezone.get_current_timezone())


def _closings(now: dt.datetime) -> Closings:
    this_week = week_start(now)
    starts = [week_start(this_week - dt.timedelta(weeks=n)) for n in range(WEEKS - 1, -1, -1)]
    rows = (
        first_closings()
        .filter(created_at__gte=starts[0])
        .annotate(week=TruncWeek("created_at"))
        .values("week", "closing_way")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[tuple[dt.date, str], int] = {}
    for row in rows:
        key = (timezone.localtime(row["week"]).date(), row["closing_way"])
        counts[key] = counts.get(key, 0) + row["n"]
    columns = []
    totals = dict.fromkeys(CLOSING_WAYS, 0)
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else week_start(start + dt.timedelta(days=8))
        parts = []
        for way in (CLOSING_DIRECT, CLOSING_SERVICE_ORDERS):
            value = counts.get((start.date(), way), 0)
            totals[way] += value
            url = admin_list("opportunities_actionhistory", cierre=way, created_at__gte=start, created_at__lt=end)
            parts.append(Bar(label=CLOSING_WAYS[way], value=value, url=url, css=CLOSING_CSS[way]))
        columns.append(Column(label=f"{start:%d/%m}", parts=parts))
    return Closings(columns=columns, totals=totals)


def start_page(*, request: HttpRequest, now: dt.datetime | None = None) -> StartPage:
    """The start page's figures for the signed-in user (see the module docstring)."""
    now = now or timezone.now()
    user = request.user
    page = StartPage(now=now)
    if user.has_perms(PERMISSIONS["invoices"]):
        page.invoices = _invoices(now)
    if user.has_perms(PERMISSIONS["sv"]):
        page.deliveries = _deliveries()
    if user.has_perms(PERMISSIONS["files"]):
        page.missing_files = MissingFiles(count=Attachment.objects.exclude(file_problem="").count())
    if user.has_perms(PERMISSIONS["runs"]):
        page.runs = [
            _run("poll_invoices", "Consulta de facturas en invoice-mifact", now),
            _run("sync_sv", "Envío de historias clínicas a SV", now),
            _run("send_events", "Envío de eventos firmados a otros sistemas", now),
        ]
    if user.has_perms(PERMISSIONS["closings"]):
        page.closings = _closings(now)
    return page
