"""Claiming rows of work so that concurrent workers never take the same one (docs/operations.md
"Running several pollers").

A claim is a `claimed_until` timestamp on the row: a row is free when it is null or past. Both
the poller (`billing`) and the outboxes (`jobs.outbox`) claim their rows here. A model with a
`claimed_by_run` field (the run record of the command that holds the claim) also frees a row as
soon as that run is no longer `running`: finished, or marked interrupted after a crash
(`jobs.runs`), so a killed run's claims do not block the next run for the claim's length.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, models, transaction
from django.db.models import Exists, OuterRef, Q

from jobs.models import CommandRun

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


def claim_one_per_key(
    queryset: models.QuerySet, *, key: str, lock_namespace: int, limit: int, now: dt.datetime, until: dt.datetime
) -> list[int]:
    """Claim up to `limit` free rows of `queryset` (in its order) until `until`, at most one per
    value of the column `key` and none whose key has a row claimed (in flight) at `now`,
    whatever that row's other columns say; return their pks. Rows that share a key are so never
    in flight at once.

    The check and the claim run in one short transaction, under a lock per key: on PostgreSQL the
    transaction-level advisory lock `(lock_namespace, hashtext(key))` (two keys sharing a hash
    only make one of them wait for the next claim), taken with `pg_try_advisory_xact_lock`
    so that a key another claimer is checking right now is skipped (as `SKIP LOCKED` skips rows),
    and the candidates are read `FOR UPDATE SKIP LOCKED`; elsewhere (SQLite) the transaction holds
    the database's write lock (`transaction_mode` IMMEDIATE in settings).
    """
    model = queryset.model
    in_flight = model.objects.filter(claimed_until__gte=now)
    candidates = queryset.filter(unclaimed(now)).exclude(**{f"{key}__in": in_flight.values(key)})
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        first: dict[object, int] = {}  # key -> pk of its first candidate
        for pk, value in candidates.values_list("pk", key)[: 4 * limit]:
            first.setdefault(value, pk)
            if len(first) == limit:
                break
        keys = list(first)
        if keys and connection.vendor == "postgresql":
            by_text = {str(value): value for value in keys}
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT k FROM unnest(%s::text[]) AS k WHERE pg_try_advisory_xact_lock(%s::integer, hashtext(k))",
                    [list(by_text), lock_namespace],
                )
                keys = [by_text[row[0]] for row in cursor.fetchall()]
        # Read again under the locks: a claim committed since the candidates were read counts.
        busy = set(in_flight.filter(**{f"{key}__in": keys}).values_list(key, flat=True)) if keys else set()
        ids = [first[value] for value in keys if value not in busy]
        if ids:
            model.objects.filter(pk__in=ids).update(claimed_until=until)
    return ids


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
