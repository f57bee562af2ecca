"""Whether invoice-mifact can be used at all, as the poll runs found it, for the top of the
staff's lists (docs/admin.md "When invoice-mifact is unreachable").

The run records of `poll_invoices` (jobs) say it: a run that could not use invoice-mifact (not
configured, credentials refused, unreachable) records why in `fatal`. The outage is on while
the newest finished run has such a reason; it started with the first failed run after the last
run that did not fail. A lost database connection is not an invoice-mifact outage.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from billing.models import ServiceOrderErrorKind as Kind
from billing.problems import Problem, error_kind_from_text, service_order_problem
from crm.admin_ui.display import clinic_datetime, waiting_time
from crm.database import DATABASE_LOST
from jobs.models import CommandRun

# The kinds that stop every check, not one O.S.
OUTAGE_KINDS = (Kind.CONFIGURATION, Kind.CREDENTIALS, Kind.UNAVAILABLE)


@dataclass(frozen=True)
class MifactOutage:
    """invoice-mifact unusable: since when (the first failed run), why and who must act."""

    since: dt.datetime
    failed_runs: int
    reason: str
    problem: Problem

    @property
    def since_text(self) -> str:
        return clinic_datetime(self.since)

    @property
    def for_how_long(self) -> str:
        return waiting_time(self.since)

    @property
    def text(self) -> str:
        """One Spanish sentence for the top of a list."""
        runs = "1 ejecución" if self.failed_runs == 1 else f"{self.failed_runs} ejecuciones seguidas"
        return (
            f"{self.problem.summary} Desde el {self.since_text} (hace {self.for_how_long}; {runs} de la consulta "
            f"automática sin poder consultar). Debe actuar: {self.problem.who}. {self.problem.action}"
        )


def mifact_outage() -> MifactOutage | None:
    """The current invoice-mifact outage, or None (at most three small queries)."""
    runs = CommandRun.objects.filter(command="poll_invoices").exclude(outcome=CommandRun.Outcome.RUNNING)
    newest = runs.order_by("-started_at", "-id").first()
    if newest is None or not newest.fatal or newest.fatal == DATABASE_LOST:
        return None
    kind = error_kind_from_text(newest.fatal)
    if kind not in OUTAGE_KINDS:
        return None
    last_good = runs.filter(fatal="").order_by("-started_at", "-id").values_list("started_at", flat=True).first()
    streak = runs.exclude(fatal="") if last_good is None else runs.exclude(fatal="").filter(started_at__gt=last_good)
    first = streak.order_by("started_at", "id").values_list("started_at", flat=True).first() or newest.started_at
    problem = service_order_problem(last_error=newest.fatal, kind=kind)
    assert problem is not None
    return MifactOutage(since=first, failed_runs=streak.count(), reason=newest.fatal, problem=problem)
