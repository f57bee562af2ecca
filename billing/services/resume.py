"""Resuming the automatic checks of service orders (docs/operations.md "Polling schedule").

The cron stops asking about a pending O.S once it is older than `POLL_DAILY_UNTIL_DAYS`
(billing/schedule.py). Staff "Reanudar consultas" (billing/admin_schedule.py): the schedule
restarts from now (every run again, then hourly, daily, stopped), any error backoff ends, and the
admin checks the O.S right away. Only facts are written: `checks_resumed_at`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from billing.selectors import service_orders_pending


def service_orders_resume(*, service_order_pks: Iterable[int], now: dt.datetime | None = None) -> list[int]:
    """Restart the polling schedule of the pending O.S among `service_order_pks` from `now` and
    end their error backoff, in one transaction; returns the pks resumed (invoiced ones are left
    as they are: they have no schedule to resume)."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = service_orders_pending().filter(pk__in=list(service_order_pks))
        resumed = list(rows.order_by("id").values_list("pk", flat=True))
        rows.update(checks_resumed_at=now, error_streak=0, retry_not_before=None, updated_at=now)
    return resumed
