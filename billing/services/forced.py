"""Checks a person asks for: the O.S of one opportunity, now (docs/api.md "Checking one
opportunity now").

The cron poll takes what is *due*: pending O.S not checked since the round started
(`billing.services.poll._due_service_orders`) and invoiced O.S whose follow-up is due by the
follow-up schedule (`billing.selectors.service_orders_due_follow_up`). A check a person asks for
(`poll_invoices --opportunity ID`, the admin's "Consultar estado de facturación ahora") is
*forced*: it takes every O.S of the opportunity, pending or invoiced, whenever it was last checked
and whatever the schedule says (`billing.selectors.service_orders_forced`). A clerk told of a void
sees it at once instead of after the follow-up interval.

Forced checks go through the same units of work as the cron (`service_order_check` for a pending
O.S, `service_order_follow_up` for an invoiced one) and the same claims, so a forced check and a
cron run never check one O.S at the same time, and never apply one change twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from billing.mifact import MifactClient
from billing.models import OpportunityServiceOrder
from billing.selectors import service_orders_forced
from billing.services.checks import CheckOutcome, service_order_check
from billing.services.follow_up import service_order_follow_up
from jobs.claims import claim_batch
from jobs.models import CommandRun


def service_order_check_now(
    *,
    service_order: OpportunityServiceOrder,
    client: MifactClient | None,
    claimed: bool = False,
    record_pending: Callable[[int, dt.datetime], None] | None = None,
) -> CheckOutcome:
    """Check one O.S now, whatever its state: a pending one for its invoice, an invoiced one for a
    void or a reissue. Claims it first unless `claimed` (skipped while someone else checks it).
    `record_pending`: see `service_order_check`."""
    if service_order.facturado:
        return service_order_follow_up(service_order=service_order, client=client, claimed=claimed)
    return service_order_check(
        service_order=service_order, client=client, claimed=claimed, record_pending=record_pending
    )


def forced_claim_batch(
    *, opportunity_id: str, limit: int, done: set[int], run: CommandRun | None = None
) -> list[OpportunityServiceOrder]:
    """Claim up to `limit` O.S of the opportunity that this forced run has not taken yet (`done`:
    their pks), pending first; for `run` when given (its claims end with it)."""
    now = timezone.now()
    candidates = service_orders_forced(opportunity_id=opportunity_id).exclude(pk__in=done)
    until = now + dt.timedelta(seconds=settings.POLL_CLAIM_SECONDS)
    ids = claim_batch(candidates, limit=limit, now=now, until=until, run=run)
    return list(OpportunityServiceOrder.objects.filter(pk__in=ids).order_by("facturado", "id")) if ids else []
