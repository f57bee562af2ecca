"""Benchmark of the staff's start page (the admin index) with a clinic's worth of rows (prints
figures; not a test).

What it does:

1. Throw-away PostgreSQL database `crm_bench_<pid>` (migrated), temp MEDIA_ROOT, hermetic
   production environment (`DEBUG=false`, `ENV_FILE` empty, SSL redirect on: requests are made
   as HTTPS), `collectstatic` into the project's `staticfiles/` (gitignored).
2. Seeds, with bulk inserts: 10,000 opportunities (80% *Cierre ganado*), 20,000 service orders
   over 5,000 of them (6,000 pending, a third of those with an error; registered over the last
   six weeks), ~45,000 history records (closings over the last 16 weeks, some of them a second
   `closed_won` when the O.S was invoiced), 3,000 SV deliveries and 30 days of run records of
   `poll_invoices` and `sync_sv` (every 5 minutes).
3. Renders `GET /admin/` for a staff user (not a superuser: the permission reads count) in this
   process with Django's test client (the whole request: middleware, session, the page's reads,
   templates; no network): a few warm-up requests, then N measured ones. Prints the query count
   (and each query's time), min, median, p95 and max.

Targets (PASS/FAIL): p95 < 300 ms; at most 12 queries (sales/tests/test_start_page.py bounds
the same count).

Exit status: 0 when the bench ran (whatever the targets say); 1 when it broke; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from _common import BenchError, report_targets, run_guarded, say, seeded_in_process

OPPORTUNITIES = 10_000
SERVICE_ORDERS = 20_000
RENDER_TARGET_MS = 300.0
QUERY_TARGET = 12  # 11 until the start page also showed the last send_events run (one indexed read)
PATIENTS = ("Lucía", "José", "María", "Ramón", "Ñusta", "Andrés", "Inés", "Álvaro", "Rosa", "Jesús")
SURNAMES = ("Quispe", "Mamani", "Peña", "Huamán", "Gutiérrez", "Núñez", "Cárdenas", "Rodríguez", "Flores", "Ríos")
STAFF_PERMISSIONS = (
    "opportunities.view_opportunity",
    "opportunities.view_actionhistory",
    "opportunities.view_svdelivery",
    "billing.view_opportunityserviceorder",
    "jobs.view_commandrun",
)


def seed() -> dict[str, int]:
    """Write the rows described in the module docstring; return their counts."""
    import datetime as dt

    from django.db import connection
    from django.utils import timezone

    from billing.models import OpportunityServiceOrder
    from jobs.models import CommandRun
    from opportunities.models import ActionHistory, FacturacionSubEstado, Opportunity, Stage, SvDelivery

    now = timezone.now()
    opportunities = []
    for k in range(OPPORTUNITIES):
        closed = k % 5 != 0
        with_orders = k < SERVICE_ORDERS // 4
        opportunities.append(
            Opportunity(
                name=f"Venta {k:05d} - {PATIENTS[k % 10]} {SURNAMES[k // 10 % 10]}",
                stage=Stage.CIERRE_GANADO if closed or with_orders else Stage.PROSPECCION,
                c_facturacion_sub_estado=(
                    FacturacionSubEstado.ORDEN_SERVICIO_PENDIENTE_FACTURA
                    if with_orders
                    else FacturacionSubEstado.FACTURA_DIRECTA
                    if closed
                    else None
                ),
                is_presaved=with_orders or not closed,
                c_patientsname=PATIENTS[k % 10],
                c_patients_paternal_last_name=SURNAMES[k // 10 % 10],
                c_patients_maternal_last_name=SURNAMES[k // 100 % 10],
                c_patient_document=f"7{k:07d}",
                c_clinic_history=f"HC-{k:06d}",
            )
        )
    opportunities = Opportunity.objects.bulk_create(opportunities, batch_size=2000)

    pending_opportunities = 1_500  # x 4 O.S = 6,000 pending
    kinds = ("configuration", "unknown_order", "unavailable")
    orders = []
    for i in range(SERVICE_ORDERS):
        k = i // 4
        pending = k < pending_opportunities
        failed = pending and i % 3 == 0
        orders.append(
            OpportunityServiceOrder(
                opportunity=opportunities[k],
                service_order_id=100_000 + i,
                metadata={"numero_os": f"OS-{100_000 + i}", "descripcion": "Procedimiento"},
                facturado=not pending,
                last_checked_at=now if pending else None,
                last_error=f"invoice-mifact: error {kinds[i % 3]}" if failed else "",
                last_error_kind=kinds[i % 3] if failed else "",
            )
        )
    OpportunityServiceOrder.objects.bulk_create(orders, batch_size=2000)

    history = []
    for k, opportunity in enumerate(opportunities):
        history.append(ActionHistory(opportunity=opportunity, action="opportunity_created", data={"name": "x"}))
        history.append(
            ActionHistory(
                opportunity=opportunity,
                action="opportunity_updated",
                data={"case": "solo_datos_principales", "changes": {"cClinicHistory": {"old": "", "new": "HC"}}},
            )
        )
        history.append(ActionHistory(opportunity=opportunity, action="meeting_created", data={"reservationId": k}))
        if opportunity.stage == Stage.CIERRE_GANADO:
            via = "cOrdenesServicio" if k < SERVICE_ORDERS // 4 else "cFacturas"
            history.append(
                ActionHistory(
                    opportunity=opportunity,
                    action="closed_won",
                    data={"stage": "Cierre ganado", "subState": "x", "via": via},
                )
            )
            if via == "cOrdenesServicio" and k >= pending_opportunities:
                history.append(
                    ActionHistory(
                        opportunity=opportunity,
                        action="closed_won",
                        data={"subState": "factura_directa", "via": via, "serviceOrderId": 1},
                    )
                )
    ActionHistory.objects.bulk_create(history, batch_size=5000)

    statuses = ["delivered"] * 2650 + ["pending"] * 300 + ["failed"] * 50
    SvDelivery.objects.bulk_create(
        [
            SvDelivery(opportunity=opportunities[i], reservation_id=i, clinic_history=f"HC-{i:06d}", status=status)
            for i, status in enumerate(statuses)
        ],
        batch_size=2000,
    )
    runs = [
        CommandRun(command=command, host="app-1", started_at=now - dt.timedelta(minutes=5 * n), outcome="ok")
        for command in ("poll_invoices", "sync_sv")
        for n in range(30 * 24 * 12)
    ]
    CommandRun.objects.bulk_create(runs, batch_size=5000)

    # Spread the registration and closing times (auto_now_add set them all to now).
    with connection.cursor() as cursor:
        cursor.execute("UPDATE opportunity_service_order SET created_at = now() - (id % 1000) * interval '1 hour'")
        cursor.execute("UPDATE opportunity_action_history SET created_at = now() - (id % 2688) * interval '1 hour'")
        cursor.execute("ANALYZE")
    return {
        "opportunities": Opportunity.objects.count(),
        "service_orders": OpportunityServiceOrder.objects.count(),
        "pending_service_orders": OpportunityServiceOrder.objects.filter(facturado=False).count(),
        "history": ActionHistory.objects.count(),
        "sv_deliveries": SvDelivery.objects.count(),
        "command_runs": CommandRun.objects.count(),
    }


def measure(requests: int, warmup: int) -> dict[str, Any]:
    """Render `/admin/` as a staff user; return the timings and the queries of one request."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user = get_user_model().objects.create_user(username="bench-staff", password="x", is_staff=True)
    for perm in STAFF_PERMISSIONS:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = Client()
    client.force_login(user)

    def get() -> Any:
        response = client.get("/admin/", secure=True)
        if response.status_code != 200:
            raise BenchError(f"GET /admin/ answered {response.status_code}")
        return response

    for _ in range(warmup):
        get()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = get()
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        response = get()
    page = response.content.decode()
    for expected in ("Ventas esperando factura", "O.S con error", "Envíos a SV", "poll_invoices", "<svg"):
        if expected not in page:
            raise BenchError(f"the start page does not show {expected!r}")
    times.sort()
    return {
        "requests": requests,
        "min_ms": times[0],
        "median_ms": statistics.median(times),
        "p95_ms": times[max(0, round(0.95 * len(times)) - 1)],
        "max_ms": times[-1],
        "queries": [{"ms": float(q["time"]) * 1000, "sql": q["sql"][:110]} for q in queries.captured_queries],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="measured requests (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up requests (default 5)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    report: dict[str, Any] = {"bench": "admin", "ok": False, "targets": []}

    def work() -> None:
        with seeded_in_process("admin", seed) as counts:
            result = measure(args.requests, args.warmup)
            report.update(counts=counts, **result)

    code = run_guarded("bench/admin_start.py: the staff's start page with 10,000 opportunities and 20,000 O.S", work)
    report["ok"] = code == 0

    if report.get("queries"):
        say(f"\nQUERIES of one GET /admin/ ({len(report['queries'])})")
        for query in report["queries"]:
            say(f"  {query['ms']:7.2f} ms  {query['sql']}")
        say(
            f"\nRENDER GET /admin/ (staff user, in-process, {report['requests']} requests): "
            f"min {report['min_ms']:.1f} ms, median {report['median_ms']:.1f} ms, p95 {report['p95_ms']:.1f} ms, "
            f"max {report['max_ms']:.1f} ms"
        )
        report["targets"] = [
            {
                "name": f"start page p95 < {RENDER_TARGET_MS:.0f} ms at 10,000 opportunities / 20,000 O.S",
                "value": f"{report['p95_ms']:.1f} ms",
                "pass": report["p95_ms"] < RENDER_TARGET_MS,
            },
            {
                "name": f"start page queries <= {QUERY_TARGET}",
                "value": str(len(report["queries"])),
                "pass": len(report["queries"]) <= QUERY_TARGET,
            },
        ]
    return report_targets(report, code, args.json)


if __name__ == "__main__":
    sys.exit(main())
