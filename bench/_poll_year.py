"""The "year" scenario of bench/poll.py (`--scenario year`): a clinic after a year of service orders.

`N` (20,000) pending O.S with ages spread over 365 days, `young` (300) of them younger than 7 days,
the rest evenly from 7 to 365 days; each last checked as the polling schedule would have left it
(young ones in the last 5 minutes, hourly ones within the last 65 minutes, daily ones within the
last day and 5 minutes, stopped ones when they stopped). The bench computes on its own, from the
seeded ages, which O.S are due (docs/operations.md "Polling schedule"), then runs
`poll_invoices` once with the schedule (after) and, after a reset, once with the schedule off
(`POLL_EVERY_RUN_DAYS` beyond any age: every pending O.S in every run, as before), and prints the
calls per run and per day of both.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from dataclasses import dataclass
from typing import Any

from _common import say

EVERY_RUN_DAYS, HOURLY_UNTIL_DAYS, DAILY_UNTIL_DAYS = 7, 30, 90
RUNS_PER_DAY = 288
FIRST_YEAR_ID = 9_000_000


@dataclass(frozen=True)
class Seeded:
    created_at: dt.datetime
    last_checked_at: dt.datetime | None


def plan(*, n: int, young: int, now: dt.datetime, seed: int = 20) -> list[Seeded]:
    """The ages and last checks of the seeded O.S (deterministic)."""
    rng = random.Random(seed)
    day = dt.timedelta(days=1)
    rows = []
    for i in range(n):
        if i < young:
            age = rng.uniform(0, EVERY_RUN_DAYS) * day
        else:
            age = EVERY_RUN_DAYS * day + (i - young) / max(1, n - young) * (365 - EVERY_RUN_DAYS) * day
        created = now - age
        age_days = age / day
        if age_days < EVERY_RUN_DAYS:
            checked = now - dt.timedelta(minutes=rng.uniform(0, 5))
        elif age_days < HOURLY_UNTIL_DAYS:
            checked = now - dt.timedelta(minutes=rng.uniform(0, 65))
        elif age_days < DAILY_UNTIL_DAYS:
            checked = now - dt.timedelta(minutes=rng.uniform(0, 24 * 60 + 5))
        else:  # its last daily check, before it stopped
            checked = created + DAILY_UNTIL_DAYS * day - dt.timedelta(minutes=rng.uniform(0, 24 * 60))
        rows.append(Seeded(created_at=created, last_checked_at=max(created, checked)))
    return rows


def bands(rows: list[Seeded], now: dt.datetime) -> dict[str, int]:
    """Pending O.S per age band."""
    counts = {"<7": 0, "7-30": 0, "30-90": 0, ">=90": 0}
    for row in rows:
        age = (now - row.created_at) / dt.timedelta(days=1)
        key = "<7" if age < 7 else "7-30" if age < 30 else "30-90" if age < 90 else ">=90"
        counts[key] += 1
    return counts


def due(rows: list[Seeded], run_at: dt.datetime) -> int:
    """How many the schedule lets a run at `run_at` ask about (the rule, written independently of
    billing/schedule.py)."""
    count = 0
    for row in rows:
        age = (run_at - row.created_at) / dt.timedelta(days=1)
        since = None if row.last_checked_at is None else run_at - row.last_checked_at
        if age < EVERY_RUN_DAYS:
            count += 1
        elif age < HOURLY_UNTIL_DAYS:
            count += since is None or since >= dt.timedelta(hours=1)
        elif age < DAILY_UNTIL_DAYS:
            count += since is None or since >= dt.timedelta(days=1)
    return count


def calls_per_day(counts: dict[str, int], *, schedule: bool) -> int:
    """docs/operations.md "Polling schedule": the cost formula."""
    if not schedule:
        return sum(counts.values()) * RUNS_PER_DAY
    return counts["<7"] * RUNS_PER_DAY + counts["7-30"] * 24 + counts["30-90"]


def seed_year(bench: Any, *, n: int, young: int) -> tuple[list[Seeded], dt.datetime]:
    """Seed the scenario's O.S (all pending, none invoiced at the stand-in) over the bench's
    opportunities; returns the plan and the moment it is relative to."""
    from django.utils import timezone

    from billing.models import OpportunityServiceOrder
    from opportunities.models import FacturacionSubEstado, Opportunity, Stage

    started = time.monotonic()
    now = timezone.now()
    rows = plan(n=n, young=young, now=now)
    opportunities = Opportunity.objects.bulk_create(
        [
            Opportunity(
                name=f"Bench year {k:03d}",
                stage=Stage.CIERRE_GANADO,
                c_facturacion_sub_estado=FacturacionSubEstado.ORDEN_SERVICIO_PENDIENTE_FACTURA,
                c_clinic_history=f"HC-Y{k:05d}",
                is_presaved=True,
            )
            for k in range(200)
        ]
    )
    created = OpportunityServiceOrder.objects.bulk_create(
        [
            OpportunityServiceOrder(
                opportunity=opportunities[i % len(opportunities)], service_order_id=FIRST_YEAR_ID + i
            )
            for i in range(n)
        ],
        batch_size=2000,
    )
    year_reset(rows, [row.pk for row in created])
    say(f"  seeded {n} pending O.S over a year ({young} younger than 7 days) in {time.monotonic() - started:.1f} s")
    return rows, now


def year_reset(rows: list[Seeded], pks: list[int]) -> None:
    """Put every O.S back to its planned registration and last check (bulk_update: `created_at`
    is `auto_now_add`)."""
    from billing.models import OpportunityServiceOrder

    objects = []
    for pk, row in zip(pks, rows, strict=True):
        objects.append(
            OpportunityServiceOrder(
                pk=pk,
                created_at=row.created_at,
                last_checked_at=row.last_checked_at,
                claimed_until=None,
                last_error="",
                facturado=False,
            )
        )
    OpportunityServiceOrder.objects.bulk_update(
        objects, ["created_at", "last_checked_at", "claimed_until", "last_error", "facturado"], batch_size=2000
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE opportunity_service_order")


def run_year(bench: Any, *, workers: int, n: int, young: int) -> list[dict[str, Any]]:
    """Seed the scenario, run `poll_invoices` with the schedule (after) and without it (before),
    check each run asked exactly the O.S due, and return one figures row per run."""
    from django.utils import timezone

    from billing.models import OpportunityServiceOrder

    rows, seeded_at = seed_year(bench, n=n, young=young)
    pks = list(
        OpportunityServiceOrder.objects.filter(service_order_id__gte=FIRST_YEAR_ID)
        .order_by("service_order_id")
        .values_list("pk", flat=True)
    )
    counts = bands(rows, seeded_at)
    say(f"  pending O.S by age (days): {counts}")
    results = []
    latency = bench.latency_ms / 1000.0
    # The schedule off: every pending O.S in every run (POLL_EVERY_RUN_DAYS beyond any age).
    off = {**bench.env, "POLL_EVERY_RUN_DAYS": "100000", "POLL_HOURLY_UNTIL_DAYS": "100000"}
    off["POLL_DAILY_UNTIL_DAYS"] = "100000"
    for label, env, schedule in (("after (schedule)", bench.env, True), ("before (no schedule)", off, False)):
        year_reset(rows, pks)
        say(f"\n-- year scenario, {label}: manage.py poll_invoices --workers {workers}")
        calls_before = bench.standin_status_calls()
        low = due(rows, timezone.now()) if schedule else n
        wall, usage, match = bench.spawn_poll(workers, env=env, timeout=max(300.0, 3 * n * latency / workers + 60))
        high = due(rows, timezone.now()) if schedule else n
        calls = bench.standin_status_calls() - calls_before
        if not low <= calls <= high or int(match["checked"]) != calls or int(match["errors"]):
            from _common import BenchError

            raise BenchError(f"year scenario {label}: {calls} status calls, expected {low}..{high}: {match.group(0)}")
        ideal = calls * latency / workers
        result = {
            "scenario": f"year {label}",
            "n": n,
            "workers": workers,
            "latency_ms": bench.latency_ms,
            "calls_per_run": calls,
            "calls_per_day": calls_per_day(counts, schedule=schedule),
            "wall_s": wall,
            "ideal_s": ideal,
            "ratio": wall / ideal if ideal else 0.0,
            "peak_rss_mb": bench.last_peak_mb,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "summary_line": match.group(0),
        }
        say(f"  {match.group(0)}")
        say(
            f"  {calls} status calls (due by the rule: {low}..{high}), wall {wall:.2f} s, ideal {ideal:.2f} s, "
            f"ratio {result['ratio']:.2f}, peak RSS {result['peak_rss_mb']:.1f} MB; "
            f"calls/day by the formula: {result['calls_per_day']:,}"
        )
        results.append(result)
    return results


def startup_seconds(bench: Any, workers: int) -> float:
    """The wall time of a run with nothing due (the schedule's steps all 0): the command's start-up
    and its count of the round."""
    env = {**bench.env, "POLL_EVERY_RUN_DAYS": "0", "POLL_HOURLY_UNTIL_DAYS": "0", "POLL_DAILY_UNTIL_DAYS": "0"}
    wall, _, match = bench.spawn_poll(workers, env=env, timeout=120.0)
    say(f"\n-- a run with nothing due (start-up): wall {wall:.2f} s ({match.group(0)})")
    return float(wall)


def year_report(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Print the year scenario's table and return its targets: the run with the schedule within
    the 50,000 run's formula, 1.1 x N x latency / workers (N: its pending O.S, start-up included),
    under 120 MB. Its ratio against only the calls it makes is printed as a figure: at ~400
    calls its fixed costs (start-up, sign-in, the first claim) weigh as much as the calls
    (docs/development.md "Benchmarks")."""
    runs = report["year"]
    say("\nRESULTS (poll_invoices, year scenario)")
    say(f"{'run':<22} {'calls/run':>9} {'calls/day':>10} {'wall s':>8} {'ideal s':>8} {'ratio':>6} {'peak MB':>8}")
    for run in runs:
        say(
            f"{run['scenario'].removeprefix('year '):<22} {run['calls_per_run']:>9} {run['calls_per_day']:>10,} "
            f"{run['wall_s']:>8.2f} {run['ideal_s']:>8.2f} {run['ratio']:>6.2f} {run['peak_rss_mb']:>8.1f}"
        )
    startup = report.get("startup_s", 0.0)
    after = runs[0]
    say(f"(ideal s and ratio: of the calls the run made; start-up, a run with nothing due: {startup:.2f} s)")
    due_bound = 1.1 * after["ideal_s"] + startup
    say(
        f"FIGURE year run with the schedule against only its {after['calls_per_run']} calls: "
        f"wall {after['wall_s']:.2f} s / ideal {after['ideal_s']:.2f} s = {after['ratio']:.2f}x; "
        "against 1.1 x ideal + start-up"
        f" ({due_bound:.2f} s): {after['wall_s'] / due_bound:.2f}x; fixed costs"
        f" {max(0.0, after['wall_s'] - after['ideal_s']):.2f} s"
    )
    bound = 1.1 * after["n"] * (after["latency_ms"] / 1000.0) / after["workers"]
    say(f"(the target's ratio: wall / (N x latency / workers) = {1.1 * after['wall_s'] / bound:.3f})")
    return [
        {
            "name": f"year run with the schedule: wall <= 1.1 x N x latency / workers (N = {after['n']} pending O.S)",
            "value": f"{after['wall_s']:.2f} s (bound {bound:.2f} s)",
            "pass": after["wall_s"] <= bound,
        },
        {
            "name": "year run with the schedule: peak memory < 120 MB",
            "value": f"{after['peak_rss_mb']:.1f} MB",
            "pass": after["peak_rss_mb"] < 120.0,
        },
    ]
