"""The action history: the records a unit of work writes on an opportunity, in one INSERT, and
the events they tell other systems."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from .events import events_record
from .models import ActionHistory, Opportunity
from .versions import opportunity_version_bump

# Who did a unit of work: a signed-in user, or None (and an anonymous user) for the processes.
Actor = AbstractBaseUser | AnonymousUser | None


def _user_fields(user: Actor) -> dict[str, Any]:
    if user is None or not getattr(user, "is_authenticated", False):
        return {"user": None, "user_name": None}
    return {"user": user, "user_name": user.get_username()}


def jsonable(value: Any) -> Any:
    """`value` as JSON can hold it, in the API's formats: datetimes `yyyy-MM-dd HH:mm:ss` in
    `TIME_ZONE`, dates `yyyy-MM-dd`, decimals as text."""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


class HistoryLog:
    """The action-history records of one unit of work on one opportunity, written in one INSERT.

    `user` is the signed-in user, or None for the poller (`userName` null). Call `flush()` inside
    the unit's transaction, after everything else, so the records (and the version bump) commit
    or roll back with it.
    """

    def __init__(self, *, opportunity: Opportunity, user: Actor) -> None:
        self.opportunity = opportunity
        self.user = user
        self.records: list[ActionHistory] = []

    def add(self, action: str, data: Mapping[str, Any]) -> None:
        """Queue one record: `action` (an `ActionHistory.Action`) with JSON-able `data`."""
        self.records.append(
            ActionHistory(opportunity=self.opportunity, action=action, data=dict(data), **_user_fields(self.user))
        )

    def flush(self) -> list[ActionHistory]:
        """Write the queued records and return them: bump the opportunity's version (its ETag,
        `opportunities/versions.py`; also set on `self.opportunity`), insert the records stamped
        with it, and the events they tell other systems (`opportunities.events`, in the same
        transaction). None of it when nothing was queued (nothing changed)."""
        records, self.records = self.records, []
        if not records:
            return []
        version = opportunity_version_bump(opportunity=self.opportunity)
        for record in records:
            record.opportunity_version = version
        written = ActionHistory.objects.bulk_create(records)
        events_record(opportunity=self.opportunity, records=written)
        return written
