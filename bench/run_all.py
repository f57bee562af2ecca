"""`make bench`: run every benchmark (bench/poll.py, bench/api.py, bench/admin_start.py,
bench/staff_pages.py) and print a summary table.

The benchmarks print figures; they are not tests. Exit status: 0 when every bench ran (even if a
target FAILs), 1 when a bench broke (a step failed or one of its checks did not hold), 130 on
Ctrl-C. Options are passed on to the benches; see `--help`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable

_current: subprocess.Popen[bytes] | None = None


def _forward_sigterm(signum: int, frame: Any) -> None:
    if _current is not None and _current.poll() is None:
        _current.terminate()  # the bench cleans up (subprocesses, database) and exits
    raise KeyboardInterrupt


def run_bench(name: str, argv: list[str], json_path: Path) -> tuple[int, dict[str, Any] | None]:
    global _current
    started = time.monotonic()
    _current = subprocess.Popen([PYTHON, str(HERE / name), *argv, "--json", str(json_path)], cwd=HERE.parent)
    try:
        code = _current.wait()
    except KeyboardInterrupt:
        if _current.poll() is None:
            _current.terminate()
            _current.wait()
        raise
    finally:
        _current = None
    print(f"[{name} exited {code} after {time.monotonic() - started:.0f} s]", flush=True)
    try:
        return code, json.loads(json_path.read_text())
    except (OSError, ValueError):
        return code, None


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks and print a summary (make bench).")
    parser.add_argument("--only", choices=("poll", "api", "admin", "staff"), help="run one bench only")
    poll = parser.add_argument_group("bench/poll.py")
    poll.add_argument("--n", type=int, default=2000, help="pending service orders (default 2000)")
    poll.add_argument("--workers", type=int, default=16, help="poll_invoices --workers (default 16)")
    poll.add_argument("--latency-ms", type=float, default=50.0, help="stand-in latency (default 50)")
    poll.add_argument("--skip-serial", action="store_true", help="skip the --workers 1 run (~100 s)")
    api = parser.add_argument_group("bench/api.py")
    api.add_argument("--duration", type=float, default=15.0, help="measured seconds per endpoint (default 15)")
    api.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per endpoint (default 2)")
    api.add_argument("--connections", type=int, default=8, help="concurrent connections (default 8)")
    api.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto", help="load generator")
    start = parser.add_argument_group("bench/admin_start.py")
    start.add_argument("--requests", type=int, default=50, help="measured renders of the start page (default 50)")
    staff = parser.add_argument_group("bench/staff_pages.py")
    staff.add_argument("--skip-staff", action="store_true", help="skip the staff pages at scale (~2 minutes)")
    staff.add_argument("--staff-requests", type=int, default=30, help="measured requests per staff page (default 30)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _forward_sigterm)

    benches: list[tuple[str, list[str]]] = []
    if args.only in (None, "poll"):
        poll_argv = ["--n", str(args.n), "--workers", str(args.workers), "--latency-ms", f"{args.latency_ms:g}"]
        if args.skip_serial:
            poll_argv.append("--skip-serial")
        benches.append(("poll.py", poll_argv))
    if args.only in (None, "api"):
        benches.append(
            (
                "api.py",
                [
                    "--duration",
                    f"{args.duration:g}",
                    "--warmup",
                    f"{args.warmup:g}",
                    "--connections",
                    str(args.connections),
                    "--loadgen",
                    args.loadgen,
                ],
            )
        )

    if args.only in (None, "admin"):
        benches.append(("admin_start.py", ["--requests", str(args.requests)]))
    if args.only == "staff" or (args.only is None and not args.skip_staff):
        benches.append(("staff_pages.py", ["--requests", str(args.staff_requests)]))

    started = time.monotonic()
    load_before = os.getloadavg()
    results: dict[str, tuple[int, dict[str, Any] | None]] = {}
    with tempfile.TemporaryDirectory(prefix="crm-bench-results-") as tmp:
        try:
            for name, argv in benches:
                results[name] = run_bench(name, argv, Path(tmp) / f"{name}.json")
                print(flush=True)
        except KeyboardInterrupt:
            print("\nmake bench interrupted", flush=True)
            return 130
    load_after = os.getloadavg()
    print_summary(results, time.monotonic() - started, load_before, load_after)
    broken = [name for name, (code, report) in results.items() if code != 0 or not report or not report.get("ok")]
    if broken:
        print(f"\nBENCH BROKEN: {', '.join(broken)} (see its output above); exit 1", flush=True)
        return 1
    print("\nAll benches ran (targets are figures, not tests: a FAIL above does not fail make bench).", flush=True)
    return 0


def say_table(columns: list[tuple[str, str]], rows: list[list[Any]]) -> None:
    """Print a table: each column a header and the format of its values (such as ">8.2f"); the
    header takes the format's alignment and width."""
    print("  " + " ".join(f"{head:{spec.partition('.')[0]}}" for head, spec in columns))
    for row in rows:
        print("  " + " ".join(f"{value:{spec}}" for value, (_, spec) in zip(row, columns, strict=True)))


def say_poll(poll: dict[str, Any]) -> None:
    first = poll["runs"][0]
    print(
        f"\npoll_invoices: N={first['n']} service orders, stand-in latency {first['latency_ms']:g} ms "
        f"(effective {first['effective_latency_ms']:.1f} ms per call)"
    )
    columns = [("workers", ">7"), ("wall s", ">8.2f"), ("checks/s", ">9.1f"), ("peak MB", ">8.1f")]
    columns += [("ideal s", ">8.2f"), ("ratio", ">6.2f"), ("ratio@eff", ">9.2f")]
    keys = ("workers", "wall_s", "checks_per_s", "peak_rss_mb", "ideal_s", "ratio", "ratio_effective")
    say_table(columns, [[run[key] for key in keys] for run in poll["runs"]])


def say_api(api: dict[str, Any]) -> None:
    print(
        f"\nAPI: gunicorn {api.get('gunicorn_workers', 2)} sync workers, PostgreSQL, {api['connections']} "
        f"connections, {api['duration']:g} s per "
        f"endpoint, {api['loadgen']}"
    )
    columns = [("endpoint", "<50"), ("req/s", ">8.1f"), ("p50 ms", ">7.1f"), ("p99 ms", ">7.1f")]
    columns += [("vs /health", ">10.0%"), ("non-2xx", ">7")]
    rows = [
        [e["endpoint"], e["rps"], e["p50_ms"], e["p99_ms"], e.get("vs_health", 0), e["non2xx"]]
        for e in api["endpoints"]
    ]
    say_table(columns, rows)


def say_start(start: dict[str, Any]) -> None:
    counts = start.get("counts", {})
    print(
        f"\nstart page (GET /admin/, staff user, in-process): {counts.get('opportunities', 0):,} opportunities, "
        f"{counts.get('service_orders', 0):,} O.S, {len(start['queries'])} queries"
    )
    print(
        f"  {start['requests']} requests: min {start['min_ms']:.1f} ms, median {start['median_ms']:.1f} ms, "
        f"p95 {start['p95_ms']:.1f} ms, max {start['max_ms']:.1f} ms"
    )


def say_staff(staff: dict[str, Any]) -> None:
    counts = staff.get("counts", {})
    print(
        f"\nstaff pages (in-process): {counts.get('opportunities', 0):,} opportunities, "
        f"{counts.get('service_orders', 0):,} O.S, {counts.get('history', 0):,} history records"
    )
    columns = [("page", "<34"), ("queries", ">7"), ("p50 ms", ">7.1f"), ("p95 ms", ">7.1f"), ("cpu p50", ">7.1f")]
    rows = [[p["name"], p["queries"], p["p50_ms"], p["p95_ms"], p["cpu_p50_ms"]] for p in staff["pages"]]
    say_table(columns, rows)


#: Each bench's part of the summary: its script, the report key its figures are under, its title
#: when it broke, and what prints its figures.
SUMMARY_PARTS: tuple[tuple[str, str, str, Callable[[dict[str, Any]], None]], ...] = (
    ("poll.py", "runs", "poll_invoices", say_poll),
    ("api.py", "endpoints", "API", say_api),
    ("admin_start.py", "queries", "start page", say_start),
    ("staff_pages.py", "pages", "staff pages", say_staff),
)


def print_summary(
    results: dict[str, tuple[int, dict[str, Any] | None]],
    seconds: float,
    load_before: tuple[float, ...],
    load_after: tuple[float, ...],
) -> None:
    say = print
    say("=" * 78)
    say("BENCHMARK SUMMARY")
    say("=" * 78)
    say(
        f"machine: {os.cpu_count()} CPUs; load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after "
        f"(other work on the machine makes the figures noisy); total {seconds:.0f} s"
    )
    targets: list[dict[str, Any]] = []
    for script, key, title, say_figures in SUMMARY_PARTS:
        report = results.get(script, (0, None))[1]
        if report and report.get(key):
            say_figures(report)
            targets += report.get("targets", [])
        elif script in results:
            say(f"\n{title}: no figures (the bench broke)")
    if targets:
        say("\nTARGETS")
        for target in targets:
            say(f"  {'PASS' if target['pass'] else 'FAIL'}  {target['name']}: {target['value']}")
    say("\nBENCHES")
    for name, (code, report) in results.items():
        state = "ran" if code == 0 and report and report.get("ok") else f"BROKE (exit {code})"
        say(f"  bench/{name}: {state}")


if __name__ == "__main__":
    sys.exit(main())
