"""Benchmark of the staff's pages with years of data (prints figures; not a test).

What it does:

1. Throw-away PostgreSQL database `crm_bench_<pid>` (migrated), temp MEDIA_ROOT, hermetic
   production environment (`DEBUG=false`, `ENV_FILE` empty, SSL redirect on: requests are made
   as HTTPS), `collectstatic` into the project's `staticfiles/` (gitignored).
2. Seeds in SQL (`INSERT ... SELECT` over `generate_series`: seconds, not minutes), by default:
   100,000 opportunities (80% *Cierre ganado*), 50,000 service orders on 25,000 of them (10,000
   pending, on 5,000 sales, a third with an error), 1,000,000 history records spread over a
   year (one opportunity, the one the page is measured on, has 500 of them, with two O.S),
   3,000 SV deliveries and 30 days of run records; then `VACUUM ANALYZE` (as autovacuum leaves
   a table in use).
3. Renders each page for a staff user of the *Supervisión* role (sees everything, no superuser
   short-cuts) in this process with Django's test client (middleware, session, the page's reads,
   templates; no network): a few warm-up requests, then N measured ones per page. Pages: the
   start page, the waiting list, the O.S list (also filtered as the start page links it: pending
   with an error), the opportunity list, the page of the opportunity with 500 history records,
   that opportunity's whole history (the history list filtered to it: the page's link), and the
   whole history list. Prints per page the query count, p50, p95 and max, and the slowest
   queries of one request.

Targets (PASS/FAIL): p95 <= 300 ms on every page (docs/development.md "Benchmarks"). That the
query count does not grow with the rows is what the unit tests assert (two data sizes); here the
counts are printed.

Exit status: 0 when the bench ran (whatever the targets say); 1 when it broke; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from _common import BenchError, report_targets, run_guarded, say, seeded_in_process

TARGET_MS = 300.0
HISTORY_ON_PAGE = 500


@dataclass(frozen=True)
class Sizes:
    opportunities: int
    service_orders: int
    history: int

    @property
    def with_orders(self) -> int:
        """Opportunities with O.S: two each."""
        return self.service_orders // 2

    @property
    def pending_orders(self) -> int:
        return self.service_orders // 5


def opportunity_id(n: int) -> str:
    """The id the SQL seed gives opportunity number `n` (17 hex characters, as the product's)."""
    return f"{n:017x}"


# Every statement gets: %(opps)s opportunities, %(with_orders)s of them with two O.S each, the
# first %(pending)s O.S pending; %(history)s history records of which HISTORY_ON_PAGE on
# opportunity 1 (the measured one).
SEED_SQL = (
    """
    INSERT INTO opportunity (
        id, name, stage, amount, c_last_name_father, c_last_name_mother, c_customer_document_type,
        c_customer_document, c_patientsname, c_patients_paternal_last_name, c_patients_maternal_last_name,
        c_patient_document, c_patient_document_type, c_clinic_history, c_appointment, c_date_reservation,
        c_doctor, c_environment, c_specialty, c_tariff, reservation_id, c_facturacion_sub_estado,
        is_presaved, created_at, modified_at, version)
    SELECT lpad(to_hex(g), 17, '0'),
           'Venta ' || g || ' - ' || (ARRAY['Lucía','José','María','Ramón','Ñusta'])[1 + g %% 5]
               || ' ' || (ARRAY['Quispe','Mamani','Peña','Huamán','Núñez','Ríos'])[1 + g %% 6],
           CASE WHEN g <= %(with_orders)s OR g %% 5 <> 0 THEN 'Cierre ganado' ELSE 'Prospección' END,
           100 + g %% 900,
           (ARRAY['Quispe','Mamani','Peña','Huamán','Núñez','Ríos'])[1 + g %% 6], 'Flores', 'DNI',
           lpad((40000000 + g)::text, 8, '0'),
           (ARRAY['Lucía','José','María','Ramón','Ñusta'])[1 + g %% 5],
           (ARRAY['Quispe','Mamani','Peña','Huamán','Núñez','Ríos'])[1 + g %% 6], 'Flores',
           lpad((70000000 + g)::text, 8, '0'), 'DNI', 'HC-' || lpad(g::text, 7, '0'),
           '09:00 - 09:30', (now() - (g %% 365) * interval '1 day')::date,
           'Dr. Salas', 'Consultorio 3', 'Cardiología', 'Particular', 100000 + g,
           CASE WHEN g <= %(with_orders)s THEN
                    CASE WHEN g <= %(pending)s / 2 THEN 'orden_servicio_pendiente_factura' ELSE 'factura_directa' END
                WHEN g %% 5 <> 0 THEN 'factura_directa' END,
           g <= %(pending)s / 2 OR NOT (g <= %(with_orders)s OR g %% 5 <> 0),
           now() - (g %% 8760) * interval '1 hour',
           now() - (g %% 8760) * interval '1 hour' + interval '5 minutes',
           1
    FROM generate_series(1, %(opps)s) AS g
    """,
    """
    INSERT INTO opportunity_service_order (
        opportunity_id, service_order_id, metadata, facturado, invoice_result_head_id, url_soles, last_checked_at,
        invoiced_at, last_error, last_error_kind, error_streak, created_at, updated_at)
    SELECT lpad(to_hex((g + 1) / 2), 17, '0'), 100000 + g,
           jsonb_build_object('numero_os', 'OS-' || (100000 + g), 'descripcion', 'Procedimiento ' || g %% 40),
           g > %(pending)s,
           CASE WHEN g > %(pending)s THEN 500000 + g END,
           CASE WHEN g > %(pending)s THEN 'https://mifact.example/os-' || g || '.pdf' END,
           now() - (g %% 60) * interval '1 minute',
           CASE WHEN g > %(pending)s THEN now() - (g %% 8760) * interval '1 hour' END,
           CASE WHEN g <= %(pending)s AND g %% 3 = 0
                THEN 'invoice-mifact: ' || (ARRAY['configuration','unknown_order','unavailable'])[1 + g %% 9 / 3]
                ELSE '' END,
           CASE WHEN g <= %(pending)s AND g %% 3 = 0
                THEN (ARRAY['configuration','unknown_order','unavailable'])[1 + g %% 9 / 3] ELSE '' END,
           CASE WHEN g <= %(pending)s AND g %% 3 = 0 THEN 1 ELSE 0 END,
           now() - ((g * 7) %% 8760) * interval '1 hour',
           now() - (g %% 60) * interval '1 minute'
    FROM generate_series(1, %(orders)s) AS g
    """,
    # The measured opportunity's own records: the newest is the last of them.
    """
    INSERT INTO opportunity_action_history (opportunity_id, action, user_name, data, created_at)
    SELECT lpad(to_hex(1), 17, '0'), 'opportunity_updated', 'ventas',
           jsonb_build_object('case', 'solo_datos_principales', 'changes',
               jsonb_build_object('cDoctor', jsonb_build_object('old', 'Dr. ' || (g - 1), 'new', 'Dr. ' || g))),
           now() - (%(on_page)s - g) * interval '1 hour'
    FROM generate_series(1, %(on_page)s) AS g
    """,
    # The rest, over every other opportunity and the last year: per ten records, a creation, four
    # updates, a meeting created and one updated, a closing (about one per sale), the O.S
    # registered and one invoiced.
    """
    INSERT INTO opportunity_action_history (opportunity_id, action, user_name, data, created_at)
    SELECT lpad(to_hex(2 + g %% (%(opps)s - 1)), 17, '0'),
           (ARRAY['opportunity_created','opportunity_updated','opportunity_updated','opportunity_updated',
                  'opportunity_updated','meeting_created','meeting_updated','closed_won',
                  'service_orders_registered','service_order_invoiced'])[1 + g %% 10],
           CASE WHEN g %% 10 = 9 THEN NULL ELSE 'ventas' END,
           CASE g %% 10
               WHEN 0 THEN jsonb_build_object('name', 'Venta ' || g, 'stage', 'Prospección')
               WHEN 5 THEN jsonb_build_object('name', 'Cita', 'reservationId', g, 'doctor', 'Dr. Salas')
               WHEN 6 THEN jsonb_build_object('reservationId', g, 'changes',
                   jsonb_build_object('doctor', jsonb_build_object('old', 'Dr. Salas', 'new', 'Dr. Ríos')))
               WHEN 7 THEN jsonb_build_object('stage', 'Cierre ganado',
                   'via', CASE WHEN g %% 20 = 7 THEN 'cFacturas' ELSE 'cOrdenesServicio' END,
                   'serviceOrderIds', jsonb_build_array(100000 + g %% 50000))
               WHEN 8 THEN jsonb_build_object('serviceOrderIds', jsonb_build_array(100000 + g %% 50000))
               WHEN 9 THEN jsonb_build_object('serviceOrderId', 100000 + g %% 50000, 'invoiceResultHeadId', 500000 + g)
               ELSE jsonb_build_object('case', 'solo_datos_principales', 'changes',
                   jsonb_build_object('cClinicHistory', jsonb_build_object('old', '', 'new', 'HC-' || g)))
           END,
           now() - (g %% 8760) * interval '1 hour' - (g %% 3600) * interval '1 second'
    FROM generate_series(1, %(history)s - %(on_page)s) AS g
    """,
    """
    INSERT INTO opportunity_sv_delivery (
        opportunity_id, reservation_id, clinic_history, status, attempts, last_error, created_at, updated_at)
    SELECT lpad(to_hex(g), 17, '0'), 100000 + g, 'HC-' || lpad(g::text, 7, '0'),
           CASE WHEN g <= 2650 THEN 'delivered' WHEN g <= 2950 THEN 'pending' ELSE 'failed' END,
           1, '', now() - g * interval '1 hour', now()
    FROM generate_series(1, LEAST(3000, %(opps)s)) AS g
    """,
    """
    INSERT INTO crm_commandrun (command, host, pid, started_at, outcome, counts, fatal)
    SELECT c, 'app-1', 1000, now() - g * interval '5 minutes', 'ok', '{}'::jsonb, ''
    FROM generate_series(0, 30 * 24 * 12 - 1) AS g, unnest(ARRAY['poll_invoices', 'sync_sv']) AS c
    """,
    # As autovacuum leaves a table that has been written to for a while (statistics, visibility map).
    "VACUUM ANALYZE",
)


def seed(sizes: Sizes) -> dict[str, int]:
    """Write the rows described in the module docstring; return their counts."""
    from django.db import connection

    if sizes.history < HISTORY_ON_PAGE or sizes.with_orders > sizes.opportunities:
        raise BenchError("need at least 500 history records and at most two O.S per opportunity")
    params = {
        "opps": sizes.opportunities,
        "orders": sizes.service_orders,
        "with_orders": sizes.with_orders,
        "pending": sizes.pending_orders,
        "history": sizes.history,
        "on_page": HISTORY_ON_PAGE,
    }
    with connection.cursor() as cursor:
        for statement in SEED_SQL:
            cursor.execute(statement, params)
        counts = {}
        for name, table in (
            ("opportunities", "opportunity"),
            ("service_orders", "opportunity_service_order"),
            ("history", "opportunity_action_history"),
            ("sv_deliveries", "opportunity_sv_delivery"),
            ("command_runs", "crm_commandrun"),
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[name] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM opportunity_service_order WHERE NOT facturado")
        counts["pending_service_orders"] = cursor.fetchone()[0]
    return counts


def pages() -> list[tuple[str, str, str]]:
    """(name, URL, a text the page must show) of each measured page."""
    from django.urls import reverse

    measured = opportunity_id(1)
    return [
        ("start page", reverse("admin:index"), "Ventas esperando factura"),
        ("waiting list", reverse("admin:billing_saleawaitinginvoice_changelist"), "OS-"),
        ("O.S list", reverse("admin:billing_opportunityserviceorder_changelist"), "OS-"),
        (
            "O.S list: pending with error",  # a link of the start page
            reverse("admin:billing_opportunityserviceorder_changelist") + "?facturado__exact=0&problema=con_error",
            "Debe actuar",
        ),
        ("opportunity list", reverse("admin:opportunities_opportunity_changelist"), "Venta "),
        (
            f"opportunity page ({HISTORY_ON_PAGE} history)",
            reverse("admin:opportunities_opportunity_change", args=[measured]),
            "Dr. 500",
        ),
        (
            "its whole history (list)",
            reverse("admin:opportunities_actionhistory_changelist") + f"?opportunity__id__exact={measured}",
            "Dr. 500",
        ),
        ("history list (all)", reverse("admin:opportunities_actionhistory_changelist"), "Dr. 500"),
    ]


def staff_client() -> Any:
    """A test client signed in as a member of the Supervisión role (views everything)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    from sales.roles import SUPERVISION

    user = get_user_model().objects.create_user(username="bench-staff", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=SUPERVISION))
    client = Client()
    client.force_login(user)
    return client


def measure_page(client: Any, url: str, expected: str, requests: int, warmup: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def get() -> Any:
        response = client.get(url, secure=True)
        if response.status_code != 200:
            raise BenchError(f"GET {url} answered {response.status_code}")
        return response

    for _ in range(warmup):
        get()
    times, cpu = [], []
    for _ in range(requests):
        started, started_cpu = time.perf_counter(), time.process_time()
        get()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    with CaptureQueriesContext(connection) as queries:
        response = get()
    if expected not in response.content.decode():
        raise BenchError(f"GET {url} does not show {expected!r}")
    times.sort()
    captured = [{"ms": float(q["time"]) * 1000, "sql": q["sql"][:150]} for q in queries.captured_queries]
    return {
        "url": url,
        "requests": requests,
        "queries": len(captured),
        "db_ms": sum(q["ms"] for q in captured),  # of the one captured request
        "slowest": sorted(captured, key=lambda q: -q["ms"])[:3],
        "p50_ms": statistics.median(times),
        "p95_ms": times[max(0, round(0.95 * len(times)) - 1)],
        "max_ms": times[-1],
        # This process's CPU per request (Django, templates; not PostgreSQL's): moves less than
        # the wall time when other work shares the machine.
        "cpu_p50_ms": statistics.median(cpu),
        "load_average": os.getloadavg()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--opportunities", type=int, default=100_000, help="opportunities (default 100000)")
    parser.add_argument("--service-orders", type=int, default=50_000, help="service orders (default 50000)")
    parser.add_argument("--history", type=int, default=1_000_000, help="history records (default 1000000)")
    parser.add_argument("--requests", type=int, default=30, help="measured requests per page (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up requests per page (default 3)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    sizes = Sizes(args.opportunities, args.service_orders, args.history)
    report: dict[str, Any] = {"bench": "staff", "ok": False, "targets": [], "pages": []}

    def work() -> None:
        with seeded_in_process("staff", lambda: seed(sizes)) as counts:
            report["counts"] = counts
            client = staff_client()
            for name, url, expected in pages():
                result = measure_page(client, url, expected, args.requests, args.warmup)
                report["pages"].append({"name": name, **result})
                say(f"  {name}: {result['queries']} queries, p95 {result['p95_ms']:.1f} ms")

    code = run_guarded(
        f"bench/staff_pages.py: staff pages with {sizes.opportunities:,} opportunities, "
        f"{sizes.service_orders:,} O.S, {sizes.history:,} history records",
        work,
    )
    report["ok"] = code == 0
    if report["pages"]:
        say(f"\nSTAFF PAGES (staff user of Supervisión, in-process, {args.requests} requests each)")
        heads = f"{'queries':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'cpu p50':>8} {'db ms':>7} {'load':>5}"
        say(f"  {'page':<34} {heads}")
        for page in report["pages"]:
            say(
                f"  {page['name']:<34} {page['queries']:>7} {page['p50_ms']:>8.1f} {page['p95_ms']:>8.1f} "
                f"{page['max_ms']:>8.1f} {page['cpu_p50_ms']:>8.1f} {page['db_ms']:>7.1f} {page['load_average']:>5.1f}"
            )
        say(
            "  (cpu p50: this process's CPU per request, not PostgreSQL's; db ms: the time of one request's queries; "
            "load: 1-minute load average)"
        )
        say("\nSLOWEST QUERIES of one request per page")
        for page in report["pages"]:
            say(f"  {page['name']}:")
            for query in page["slowest"]:
                say(f"    {query['ms']:8.1f} ms  {query['sql']}")
        report["targets"] = [
            {
                "name": f"{page['name']} p95 <= {TARGET_MS:.0f} ms",
                "value": f"{page['p95_ms']:.1f} ms ({page['queries']} queries)",
                "pass": page["p95_ms"] <= TARGET_MS,
            }
            for page in report["pages"]
        ]
    return report_targets(report, code, args.json)


if __name__ == "__main__":
    sys.exit(main())
