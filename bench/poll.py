"""Benchmark of `manage.py poll_invoices` against a slow invoice-mifact (prints figures; not a test).

What it does:

1. Throw-away PostgreSQL database `crm_bench_<pid>` (migrated), temp MEDIA_ROOT, hermetic
   environment (`ENV_FILE` empty, production-like: DEBUG off).
2. Starts the invoice-mifact stand-in in another process (`python -m devtools.mifact_standin
   --latency-ms L`, every invoice-status call waits L ms).
3. Seeds N pending service orders over 200 opportunities (*Cierre ganado* /
   `orden_servicio_pendiente_factura`, with a clinic history) with Django's bulk_create, and
   switches 5% of them to invoiced on the stand-in (one small PDF in soles each).
4. Runs `manage.py poll_invoices --workers W` as a subprocess; measures its wall time and peak
   RSS (`os.wait4`), and checks the outcome: every O.S checked once, 5% completed, one
   attachment (and one file in MEDIA_ROOT) per invoiced O.S, no errors.
5. Resets (rows pending again, the run's attachments, history and files removed) and repeats
   with `--workers 1` for comparison (skipped with `--skip-serial`).

Prints N, workers, latency, wall seconds, checks per second, peak memory, ideal
(N x latency / workers), ratio (wall / ideal) and the targets with PASS/FAIL:
ratio <= 1.5 with the parallel workers, peak memory < 200 MB (at N = 2,000).

Exit status: 0 when the bench ran and its checks held (whatever the targets say); 1 when the
bench broke (a step failed or an outcome check did not hold); 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests
from _common import (
    MANAGE,
    PYTHON,
    ROOT,
    BenchError,
    PeakMemory,
    Workspace,
    free_port,
    mifact_standin_argv,
    report_targets,
    run_guarded,
    say,
)
from _poll_data import FIRST_FOLLOW_UP_ID, FIRST_SERVICE_ORDER_ID, INVOICED_EVERY, OPPORTUNITIES, PollData
from _poll_year import run_year, startup_seconds, year_report

MIFACT_USER, MIFACT_PASSWORD = "bench-mifact", "bench-mifact-secret"
RATIO_TARGET = 1.5
MEMORY_TARGET_MB = 200.0
MEMORY_TARGET_N = 2000
# At scale (issue 20): 50,000 young pending O.S within 1.1x of the ideal, start-up included.
SCALE_N, SCALE_RATIO, SCALE_MEMORY_MB = 50_000, 1.1, 120.0

SUMMARY_RE = re.compile(
    r"poll_invoices: pending=\d+ checked=(?P<checked>\d+) invoiced=(?P<invoiced>\d+) errors=(?P<errors>\d+) left=\d+ "
    r"followed_up=(?P<followed_up>\d+) replaced=\d+ voided=\d+ deferred=\d+ pauses=\d+ paused_seconds=\d+ "
    r"seconds=(?P<seconds>[0-9.]+)"
)


class PollBench(PollData):
    def __init__(
        self, ws: Workspace, *, n: int, latency_ms: float, follow_ups: int = 0, scenario: str = "flat"
    ) -> None:
        self.ws = ws
        self.scenario = scenario
        self.n = n
        self.latency_ms = latency_ms
        self.mifact_port = free_port()
        self.mifact = f"http://127.0.0.1:{self.mifact_port}/api"
        self.env = ws.production_env(
            "poll",
            {
                "CONN_MAX_AGE": "0",
                "URL_INVOICE_MIFACT_V3": self.mifact,
                "USERNAME_ADMIN": MIFACT_USER,
                "PASSWORD_ADMIN": MIFACT_PASSWORD,
                "INVOICE_MIFACT_USERNAME": "",
                "INVOICE_MIFACT_PASSWORD": "",
                "INVOICE_MIFACT_TIMEOUT": "10",
                "INVOICE_DOWNLOAD_ALLOWED_HOSTS": "",
                "INVOICE_DOWNLOAD_TIMEOUT": "30",
                "URL_SV": "",
                "POLL_WORKERS": "8",
                "POLL_BATCH_SIZE": "100",
                "POLL_CLAIM_SECONDS": "300",
            },
        )
        self.http = requests.Session()
        self.expected_invoiced = len(range(0, n, INVOICED_EVERY))
        # Invoiced O.S due a follow-up check (still valid at the stand-in: no download).
        self.follow_ups = follow_ups

    # -- set-up -----------------------------------------------------------------------------------

    def setup(self) -> None:
        say(f"database {self.ws.db.name} on 127.0.0.1:5432, media {self.ws.media}")
        self.ws.db.create()
        self.ws.manage(self.env, "migrate", "--noinput")
        say("  migrated")
        argv = mifact_standin_argv(
            self.mifact_port, MIFACT_USER, MIFACT_PASSWORD, "--latency-ms", f"{self.latency_ms:g}"
        )
        self.ws.spawn("mifact_standin", argv, self.env)
        self.ws.wait_http("mifact_standin", f"{self.mifact}/_standin/state")
        say(f"  invoice-mifact stand-in (separate process) at {self.mifact}, latency {self.latency_ms:g} ms")
        # The bench process itself uses Django (bulk_create, reset, checks) on the bench database.
        os.environ.update(self.env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        if self.scenario == "flat":  # the year scenario seeds its own (bench/_poll_year.py)
            self.seed()
        self.effective_latency_ms = self.probe_latency()

    def probe_latency(self, calls: int = 10) -> float:
        """Median time of one invoice-status call to the stand-in over a keep-alive connection,
        as the poller's client sees it (configured latency plus whatever the stand-in adds)."""
        import statistics

        token = self.http.post(
            f"{self.mifact}/auth/signin", json={"username": MIFACT_USER, "password": MIFACT_PASSWORD}, timeout=10
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        times = []
        for _ in range(calls + 1):
            started = time.perf_counter()
            response = self.http.get(
                f"{self.mifact}/service-order/{FIRST_SERVICE_ORDER_ID + 1}/invoice-status", headers=headers, timeout=10
            )
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise BenchError(f"stand-in invoice-status answered {response.status_code}: {response.text[:300]}")
        effective = statistics.median(times[1:])  # the first call opens the connection
        say(
            f"  stand-in latency seen by a keep-alive client: {effective:.1f} ms per status call "
            f"(configured {self.latency_ms:g} ms; median of {calls})"
        )
        if effective > self.latency_ms + 10:
            say(
                f"  WARNING: the stand-in answers {effective - self.latency_ms:.0f} ms slower than configured; the "
                "poll figures below include that (ratio vs the effective latency is shown too). Likely cause: "
                "devtools/mifact_standin.py sends headers and body in two TCP segments without TCP_NODELAY "
                "(Nagle + delayed ACK, ~40 ms)."
            )
        return effective

    # -- one run ------------------------------------------------------------------------------

    def standin_status_calls(self) -> int:
        return int(self.http.get(f"{self.mifact}/_standin/state", timeout=10).json()["status_calls"])

    def spawn_poll(self, workers: int, *, env: dict[str, str] | None = None, timeout: float) -> tuple[Any, ...]:
        """Run `manage.py poll_invoices --workers W` as a subprocess: (wall seconds, rusage, summary
        match); BenchError when it fails or prints no summary."""
        name = f"poll_invoices_w{workers}_{len(self.ws.processes)}"
        started = time.monotonic()
        argv = [PYTHON, str(MANAGE), "poll_invoices", "--workers", str(workers)]
        process = self.ws.spawn(name, argv, env or self.env)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        watcher = PeakMemory(process.pid)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
            watcher.stop()
        wall = time.monotonic() - started
        self.last_peak_mb = watcher.peak_mb
        process.returncode = os.waitstatus_to_exitcode(status)
        output = Path(self.ws.processes[name][1]).read_text(errors="replace")
        if process.returncode != 0:
            raise BenchError(
                f"poll_invoices --workers {workers} exited {process.returncode}:\n{self.ws.log_tail(name)}"
            )
        match = SUMMARY_RE.search(output)
        if match is None:
            raise BenchError(f"poll_invoices printed no summary line:\n{self.ws.log_tail(name)}")
        if "Traceback" in output or "ERROR" in output:
            say(f"  poll_invoices logged errors:\n{self.ws.log_tail(name)}")
        return wall, usage, match

    def run(self, workers: int) -> dict[str, Any]:
        ideal = (self.n + self.follow_ups) * (self.latency_ms / 1000.0) / workers
        timeout = max(120.0, 3 * ideal + 60)
        calls_before = self.standin_status_calls()
        say(f"\n-- manage.py poll_invoices --workers {workers} (N={self.n}, latency {self.latency_ms:g} ms)")
        wall, usage, match = self.spawn_poll(workers, timeout=timeout)
        peak_mb = self.last_peak_mb
        result = {
            "n": self.n,
            "workers": workers,
            "latency_ms": self.latency_ms,
            "wall_s": wall,
            "command_s": float(match["seconds"]),
            "checks_per_s": (self.n + self.follow_ups) / wall,
            "follow_ups": self.follow_ups,
            "peak_rss_mb": peak_mb,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "ideal_s": ideal,
            "ratio": wall / ideal,
            "effective_latency_ms": self.effective_latency_ms,
            "ratio_effective": wall / ((self.n + self.follow_ups) * (self.effective_latency_ms / 1000.0) / workers),
            "summary_line": match.group(0),
        }
        result.update(self.check(match, calls_before))
        say(f"  {match.group(0)}")
        say(
            f"  wall {wall:.2f} s (command's own figure {result['command_s']:.2f} s), "
            f"{result['checks_per_s']:.1f} status checks/s, peak RSS {peak_mb:.1f} MB, "
            f"CPU {result['cpu_s']:.2f} s"
        )
        say(
            f"  ideal N x latency / workers = {ideal:.2f} s, ratio wall / ideal = {result['ratio']:.2f} "
            f"(vs the effective {self.effective_latency_ms:.1f} ms: {result['ratio_effective']:.2f})"
        )
        say(
            f"  outcome: checked {result['checked']}/{self.n}, invoiced {result['invoiced']} "
            f"({100 * result['invoiced'] / self.n:.1f}%), attachments {result['attachments']}, "
            f"files {result['files']}, errors {result['errors']}, status calls {result['status_calls']} -> OK"
        )
        return result

    def check(self, match: re.Match[str], calls_before: int) -> dict[str, Any]:
        """The run did what it should: BenchError otherwise."""
        from billing.models import OpportunityServiceOrder
        from opportunities.models import Attachment, FacturacionSubEstado, Opportunity

        rows = OpportunityServiceOrder.objects.filter(service_order_id__lt=FIRST_FOLLOW_UP_ID)
        figures = {
            "checked": rows.filter(last_checked_at__isnull=False).count(),
            "invoiced": rows.filter(facturado=True).count(),
            "errors": rows.exclude(last_error="").count(),
            "attachments": Attachment.objects.count(),
            "attachments_with_os": Attachment.objects.filter(service_order_id__isnull=False).count(),
            "files": sum(1 for path in self.ws.media.rglob("*") if path.is_file()),
            "status_calls": self.standin_status_calls() - calls_before,
            "factura_directa": Opportunity.objects.filter(c_facturacion_sub_estado=FacturacionSubEstado.FACTURA_DIRECTA)
            .exclude(name="Bench follow-ups")
            .count(),
        }
        expected_opportunities = len({i * OPPORTUNITIES // self.n for i in range(0, self.n, INVOICED_EVERY)})
        problems = []
        if int(match["checked"]) != self.n or figures["checked"] != self.n:
            problems.append(f"checked {match['checked']} (rows {figures['checked']}), expected {self.n}")
        if int(match["invoiced"]) != self.expected_invoiced or figures["invoiced"] != self.expected_invoiced:
            problems.append(
                f"invoiced {match['invoiced']} (rows {figures['invoiced']}), expected {self.expected_invoiced}"
            )
        if int(match["errors"]) or figures["errors"]:
            problems.append(f"errors {match['errors']} (rows with last_error {figures['errors']}), expected 0")
        for key in ("attachments", "attachments_with_os", "files"):
            if figures[key] != self.expected_invoiced:
                problems.append(f"{key} {figures[key]}, expected {self.expected_invoiced}")
        if figures["status_calls"] != self.n + self.follow_ups:
            problems.append(
                f"{figures['status_calls']} invoice-status calls, expected {self.n + self.follow_ups} (one per O.S)"
            )
        if int(match["followed_up"]) != self.follow_ups:
            problems.append(f"followed_up {match['followed_up']}, expected {self.follow_ups}")
        if figures["factura_directa"] != expected_opportunities:
            problems.append(
                f"{figures['factura_directa']} opportunities factura_directa, expected {expected_opportunities}"
            )
        if problems:
            raise BenchError("outcome check failed: " + "; ".join(problems))
        return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="pending service orders (default 2000)")
    parser.add_argument("--workers", type=int, default=16, help="parallel workers of the measured run (default 16)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="stand-in latency per status call (default 50)")
    parser.add_argument("--skip-serial", action="store_true", help="skip the --workers 1 comparison run")
    parser.add_argument(
        "--follow-ups",
        type=int,
        default=0,
        metavar="F",
        help="also F invoiced O.S due a follow-up check (still valid at the stand-in; default 0)",
    )
    parser.add_argument(
        "--scenario",
        choices=("flat", "year"),
        default="flat",
        help="flat: N young pending O.S (default); year: N O.S over 365 days (bench/_poll_year.py)",
    )
    parser.add_argument("--young", type=int, default=300, help="year scenario: O.S younger than 7 days (300)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    if args.n < OPPORTUNITIES or args.workers < 1 or args.latency_ms <= 0:
        parser.error(f"--n must be >= {OPPORTUNITIES}, --workers >= 1, --latency-ms > 0")
    report: dict[str, Any] = {"bench": "poll", "ok": False, "runs": [], "targets": []}

    def work() -> None:
        with Workspace("crm-bench-poll-") as ws:
            bench = PollBench(
                ws, n=args.n, latency_ms=args.latency_ms, follow_ups=args.follow_ups, scenario=args.scenario
            )
            bench.setup()
            if args.scenario == "year":
                report["year"] = run_year(bench, workers=args.workers, n=args.n, young=args.young)
                report["startup_s"] = startup_seconds(bench, args.workers)
                from django.db import connections

                connections.close_all()
                return
            parallel = bench.run(args.workers)
            report["runs"].append(parallel)
            if not args.skip_serial and args.workers != 1:
                bench.reset()
                report["runs"].append(bench.run(1))
            from django.db import connections

            connections.close_all()

    code = run_guarded("bench/poll.py: manage.py poll_invoices against a slow invoice-mifact stand-in", work)
    report["ok"] = code == 0

    if report.get("year"):
        report["targets"] = year_report(report)
    if report["runs"]:
        say("\nRESULTS (poll_invoices)")
        say(
            f"{'workers':>7} {'N':>6} {'latency ms':>10} {'wall s':>8} {'checks/s':>9} {'peak MB':>8} "
            f"{'CPU s':>6} {'ideal s':>8} {'ratio':>6} {'ratio@eff':>9}"
        )
        for run in report["runs"]:
            say(
                f"{run['workers']:>7} {run['n']:>6} {run['latency_ms']:>10g} {run['wall_s']:>8.2f} "
                f"{run['checks_per_s']:>9.1f} {run['peak_rss_mb']:>8.1f} {run['cpu_s']:>6.2f} {run['ideal_s']:>8.2f} "
                f"{run['ratio']:>6.2f} {run['ratio_effective']:>9.2f}"
            )
        say(
            f"(ratio@eff: wall / (N x effective stand-in latency / workers); effective latency "
            f"{report['runs'][0]['effective_latency_ms']:.1f} ms)"
        )
        parallel = report["runs"][0]
        targets = [
            {
                "name": f"poll ratio wall/ideal <= {RATIO_TARGET} with {parallel['workers']} workers",
                "value": f"{parallel['ratio']:.2f}",
                "pass": parallel["ratio"] <= RATIO_TARGET,
            },
            {
                "name": f"poll peak memory < {MEMORY_TARGET_MB:.0f} MB at N = {parallel['n']}"
                + ("" if parallel["n"] == MEMORY_TARGET_N else f" (target is set at N = {MEMORY_TARGET_N})"),
                "value": f"{max(r['peak_rss_mb'] for r in report['runs']):.1f} MB",
                "pass": max(r["peak_rss_mb"] for r in report["runs"]) < MEMORY_TARGET_MB,
            },
        ]
        if parallel["n"] >= SCALE_N:
            targets += [
                {
                    "name": f"poll ratio wall/ideal <= {SCALE_RATIO} at N = {parallel['n']} (start-up included)",
                    "value": f"{parallel['ratio']:.2f}",
                    "pass": parallel["ratio"] <= SCALE_RATIO,
                },
                {
                    "name": f"poll peak memory < {SCALE_MEMORY_MB:.0f} MB at N = {parallel['n']}",
                    "value": f"{parallel['peak_rss_mb']:.1f} MB",
                    "pass": parallel["peak_rss_mb"] < SCALE_MEMORY_MB,
                },
            ]
        report["targets"] = targets
    return report_targets(report, code, args.json)


if __name__ == "__main__":
    sys.exit(main())
