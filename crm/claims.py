"""Claiming rows of work so that concurrent workers never take the same one (docs/operations.md
"Running several pollers").

A claim is a `claimed_until` timestamp on the row: a row is free when it is null or past. Both
the poller (`billing`) and the SV outbox (`opportunities`) claim their rows here. A model with a
`claimed_by_run` field (the run record of the command that holds the claim) also frees a row as
soon as that run is no longer `running`: finished, or marked interrupted after a crash
(`crm.runs`), so a killed run's claims do not block the next run for the claim's length.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, models, transaction
from django.db.models import Exists, OuterRef, Q

from crm.models import CommandRun

RUN_FIELD = "claimed_by_run"


def _has_run_field(model: type[models.Model]) -> bool:
    return any(field.name == RUN_FIELD for field in model._meta.get_fields())


def unclaimed(now: dt.datetime, model: type[models.Model] | None = None) -> Q:
    """Rows whose claim is absent or expired at `now` (or, for `model` with `claimed_by_run`,
    held by a run that is over)."""
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    if model is None or not _has_run_field(model):
        return free
    over = CommandRun.objects.filter(pk=OuterRef(RUN_FIELD)).exclude(outcome=CommandRun.Outcome.RUNNING)
    return free | Q(Exists(over))


def _claim_values(model: type[models.Model], until: dt.datetime, run: CommandRun | None) -> dict:
    # A claim without a run (a PUT, the admin) clears a previous run's mark: only time frees it.
    return {"claimed_until": until, RUN_FIELD: run} if _has_run_field(model) else {"claimed_until": until}


def claim_one(
    queryset: models.QuerySet, *, pk: int, now: dt.datetime, until: dt.datetime, run: CommandRun | None = None
) -> bool:
    """Claim the row `pk` of `queryset` (which carries the "still to do" condition) until `until`
    (for `run`, when the model records it).

    A conditional UPDATE: on PostgreSQL the row lock makes a concurrent claimer re-check the
    condition and find it false; SQLite serializes writes. Returns whether this caller got it.
    """
    model = queryset.model
    values = _claim_values(model, until, run)
    return queryset.filter(pk=pk).filter(unclaimed(now, model)).update(**values) == 1


def claim_batch(
    queryset: models.QuerySet,
    *,
    limit: int,
    now: dt.datetime,
    until: dt.datetime,
    run: CommandRun | None = None,
) -> list[int]:
    """Claim up to `limit` free rows of `queryset` (in its order) until `until` (for `run`, when
    the model records it); return their pks.

    PostgreSQL (and any database with SKIP LOCKED): `SELECT ... FOR UPDATE SKIP LOCKED` and an
    UPDATE in one short transaction, so concurrent claimers take disjoint rows without waiting.
    Elsewhere: one conditional UPDATE per candidate.
    """
    model = queryset.model
    candidates = queryset.filter(unclaimed(now, model))
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            locked = candidates.select_for_update(skip_locked=True, of=("self",))
            ids = list(locked.values_list("pk", flat=True)[:limit])
            if ids:
                model.objects.filter(pk__in=ids).update(**_claim_values(model, until, run))
        return ids
    return [
        pk
        for pk in candidates.values_list("pk", flat=True)[:limit]
        if claim_one(queryset, pk=pk, now=now, until=until, run=run)
    ]


def claims_release(queryset: models.QuerySet, *, run: CommandRun) -> int:
    """Free the rows of `queryset` that `run` still holds; returns how many."""
    return queryset.filter(**{RUN_FIELD: run}, claimed_until__isnull=False).update(
        claimed_until=None, **{RUN_FIELD: None}
    )
