"""Claiming rows of work so that concurrent workers never take the same one (docs/operations.md
"Running several pollers").

A claim is a `claimed_until` timestamp on the row: a row is free when it is null or past. Both
the poller (`billing`) and the SV outbox (`opportunities`) claim their rows here.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, models, transaction
from django.db.models import Q


def unclaimed(now: dt.datetime) -> Q:
    """Rows whose claim is absent or expired at `now`."""
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)


def claim_one(queryset: models.QuerySet, *, pk: int, now: dt.datetime, until: dt.datetime) -> bool:
    """Claim the row `pk` of `queryset` (which carries the "still to do" condition) until `until`.

    A conditional UPDATE: on PostgreSQL the row lock makes a concurrent claimer re-check the
    condition and find it false; SQLite serializes writes. Returns whether this caller got it.
    """
    return queryset.filter(pk=pk).filter(unclaimed(now)).update(claimed_until=until) == 1


def claim_batch(queryset: models.QuerySet, *, limit: int, now: dt.datetime, until: dt.datetime) -> list[int]:
    """Claim up to `limit` free rows of `queryset` (in its order) until `until`; return their pks.

    PostgreSQL (and any database with SKIP LOCKED): `SELECT ... FOR UPDATE SKIP LOCKED` and an
    UPDATE in one short transaction, so concurrent claimers take disjoint rows without waiting.
    Elsewhere: one conditional UPDATE per candidate.
    """
    candidates = queryset.filter(unclaimed(now))
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            ids = list(candidates.select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit])
            if ids:
                queryset.model.objects.filter(pk__in=ids).update(claimed_until=until)
        return ids
    return [
        pk for pk in candidates.values_list("pk", flat=True)[:limit] if claim_one(queryset, pk=pk, now=now, until=until)
    ]
