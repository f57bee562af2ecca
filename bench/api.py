"""Benchmark of the HTTP API under gunicorn with the production settings (prints figures; not a test).

1. Throw-away PostgreSQL database `crm_bench_<pid>` (migrated), temp MEDIA_ROOT, hermetic production
   environment: DEBUG=false, SECRET_KEY, ALLOWED_HOSTS=127.0.0.1, persistent connections
   (`--db-connections`: bench/_db_modes.py), USE_X_FORWARDED_PROTO=true (SSL redirect stays on, as
   in production; every request sends `X-Forwarded-Proto: https`), ENV_FILE="".
2. Creates a user (`createsuperuser --noinput`), starts gunicorn (`crm.wsgi`, 2 sync workers, as
   `make serve`) on a free port, signs in for a token and creates 100 opportunities.
3. For each endpoint, a load generator in another process (`wrk` with a generated Lua script; a
   Python fallback when wrk is missing) with C connections, W seconds of warm-up, D measured:
   - `GET /health` (the framework floor: one trivial query, no authentication);
   - `GET /opportunity/<id>` (rotating over the 100 ids);
   - `PUT /opportunity/update-opportunity-procces/<id>` with main + appointment data and `reservationId`
     (no URLs, no O.S) over the 100 ids, a new `cDoctor` each time: each PUT writes (fields, meeting, history);
   - the same PUTs, each with a new `Idempotency-Key` (docs/api.md "Safe retries": its answer is kept).
4. Prints requests/s, p50 and p99 latency and the ratio to /health requests/s for each; checks no
   non-2xx answers or socket errors, the SSL redirect on, and that the PUTs wrote (one
   `opportunity_updated` record per PUT, one meeting per opportunity).

Targets (PASS/FAIL): PUT >= 15% of /health requests/s; PUT p99 < 100 ms at 8 connections.

Exit status: 0 when the bench ran and its checks held (whatever the targets say); 1 when it broke
(a step failed, non-2xx answers, a check did not hold); 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
from _api_load import WRK_MARK, wrk_script
from _common import (
    PYTHON,
    ROOT,
    BenchError,
    Workspace,
    free_port,
    report_targets,
    run_guarded,
    say,
)
from _db_modes import DB_MODES, db_mode_env

from sales.example_bodies import APPOINTMENT_DATA, MAIN_DATA

OPPORTUNITIES = 100
GUNICORN_WORKERS = 2
PUT_SHARE_TARGET = 0.15
PUT_P99_TARGET_MS = 100.0
USERNAME = "bench"
FORWARDED = {"X-Forwarded-Proto": "https"}
# The PUT body: main data + appointment + reservationId (README "Example session with curl" without
# cFacturas, no URLs, no O.S). `cDoctor` differs on every request, so every PUT changes a field,
# updates the opportunity's meeting for the reservation and writes a history record.
PUT_BODY = {**MAIN_DATA, "cLastNameMother": "Huamán", **APPOINTMENT_DATA, "reservationId": 98765, "cDoctor": "@DOCTOR@"}
ENDPOINTS = [
    ("health", "GET /health"),
    ("get", "GET /opportunity/<id>"),
    ("put", "PUT /opportunity/update-opportunity-procces/<id>"),
    ("put_key", "PUT .../update-opportunity-procces/<id> + Idempotency-Key"),
]


class ApiBench:
    def __init__(
        self,
        ws: Workspace,
        *,
        duration: float,
        warmup: float,
        connections: int,
        loadgen: str,
        gunicorn_workers: int = GUNICORN_WORKERS,
        db_mode: str = "persistent",
    ) -> None:
        self.ws = ws
        self.gunicorn_workers = gunicorn_workers
        self.duration = duration
        self.warmup = warmup
        self.connections = connections
        self.loadgen = loadgen
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(16)
        self.env = ws.production_env(
            "api", {**db_mode_env(db_mode), "USE_X_FORWARDED_PROTO": "true", "URL_INVOICE_MIFACT_V3": "", "URL_SV": ""}
        )
        self.http = requests.Session()
        self.http.headers.update(FORWARDED)
        self.db_mode = db_mode
        self.token = ""
        self.ids: list[str] = []
        self.put_requests = 0  # 2xx PUTs completed, warm-up included
        self.runs = 0  # load-generator runs so far: part of every cDoctor value, so no PUT repeats one

    def setup(self) -> None:
        say(f"database {self.ws.db.name} on 127.0.0.1:5432, media {self.ws.media}")
        self.ws.db.create()
        self.ws.manage(self.env, "migrate", "--noinput")
        say("  migrated")
        self.ws.manage(
            {**self.env, "DJANGO_SUPERUSER_PASSWORD": self.password},
            "createsuperuser",
            "--noinput",
            "--username",
            USERNAME,
            "--email",
            "bench@example.com",
        )
        self.ws.spawn(
            "gunicorn",
            [
                PYTHON,
                "-m",
                "gunicorn",
                "crm.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.gunicorn_workers),
                "--timeout",
                "120",
                "--access-logfile",
                "-",
            ],
            self.env,
        )
        self.ws.wait_http("gunicorn", f"{self.base}/health", FORWARDED)
        say(f"  gunicorn crm.wsgi ({self.gunicorn_workers} sync workers; make serve defaults to 2) at {self.base}")

        redirect = requests.get(f"{self.base}/opportunity/{'0' * 17}", allow_redirects=False, timeout=10)
        if redirect.status_code != 301 or not redirect.headers.get("Location", "").startswith("https://"):
            raise BenchError(f"SSL redirect is not on: plain http answered {redirect.status_code}")
        say("  SSL redirect on (plain http gets 301 to https; the bench sends X-Forwarded-Proto: https)")

        signin = self.http.post(
            f"{self.base}/auth/signin", json={"username": USERNAME, "password": self.password}, timeout=10
        )
        if signin.status_code != 200:
            raise BenchError(f"sign-in answered {signin.status_code}: {signin.text[:300]}")
        self.token = signin.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        for k in range(OPPORTUNITIES):
            created = self.http.post(f"{self.base}/opportunity", json={"name": f"Bench API {k:03d}"}, timeout=10)
            if created.status_code != 201:
                raise BenchError(f"POST /opportunity answered {created.status_code}: {created.text[:300]}")
            self.ids.append(created.json()["id"])
        say(f"  signed in; created {OPPORTUNITIES} opportunities")

    # -- load -------------------------------------------------------------------------------------

    def script(self, mode: str) -> Path:
        self.runs += 1
        return wrk_script(
            workdir=self.ws.dir,
            mode=mode,
            run=self.runs,
            ids=self.ids,
            token=self.token,
            port=self.port,
            connections=self.connections,
            put_body=PUT_BODY,
        )

    def load(self, mode: str, seconds: float) -> dict[str, Any]:
        """One load-generator run (another process); returns its figures."""
        script = self.script(mode)
        if self.loadgen == "wrk":
            argv = [
                "wrk",
                "-t",
                "1",
                "-c",
                str(self.connections),
                "-d",
                f"{seconds:g}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                f"{self.base}/",
            ]
        else:
            config_path = self.ws.dir / f"{mode}.json"
            config = json.loads(config_path.read_text())
            config["duration"] = seconds
            config_path.write_text(json.dumps(config))
            argv = [PYTHON, str(Path(__file__).with_name("_loadgen.py")), str(config_path)]
        try:
            done = subprocess.run(
                argv, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"the load generator did not finish ({' '.join(argv)})") from exc
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith(WRK_MARK)), None)
        if done.returncode != 0 or line is None:
            raise BenchError(f"load generator failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
        figures = json.loads(line[len(WRK_MARK) :])
        if mode in ("put", "put_key"):
            self.put_requests += figures["requests"] - figures["non2xx"]
        return figures

    def measure(self, mode: str, label: str) -> dict[str, Any]:
        say(
            f"\n-- {label}: warm-up {self.warmup:g} s, then {self.duration:g} s at {self.connections} connections "
            f"({self.loadgen})"
        )
        warm = self.load(mode, self.warmup) if self.warmup > 0 else None
        figures = self.load(mode, self.duration)
        seconds = figures["duration_us"] / 1e6
        errors = figures["err_connect"] + figures["err_read"] + figures["err_write"] + figures["err_timeout"]
        result = {
            "endpoint": label,
            "mode": mode,
            "requests": figures["requests"],
            "seconds": seconds,
            "rps": figures["requests"] / seconds if seconds else 0.0,
            "p50_ms": figures["p50_us"] / 1000,
            "p90_ms": figures["p90_us"] / 1000,
            "p99_ms": figures["p99_us"] / 1000,
            "max_ms": figures["max_us"] / 1000,
            "non2xx": figures["non2xx"] + (warm["non2xx"] if warm else 0),
            "first_bad_status": figures["first_bad_status"] or (warm["first_bad_status"] if warm else 0),
            "socket_errors": errors
            + (warm["err_connect"] + warm["err_read"] + warm["err_write"] + warm["err_timeout"] if warm else 0),
        }
        say(
            f"  {result['requests']} requests in {seconds:.1f} s: {result['rps']:.1f} req/s, "
            f"p50 {result['p50_ms']:.1f} ms, p90 {result['p90_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
            f"max {result['max_ms']:.1f} ms; non-2xx {result['non2xx']}, socket errors {result['socket_errors']} "
            "(warm-up included)"
        )
        return result

    def check_writes(self) -> dict[str, int]:
        """Every 2xx PUT wrote: one `opportunity_updated` record each, one meeting per opportunity."""
        with self.ws.db.connect() as conn:
            updated = conn.execute(
                "SELECT count(*) FROM opportunity_action_history WHERE action = 'opportunity_updated'"
            ).fetchone()[0]
            meetings = conn.execute("SELECT count(*) FROM opportunity_meeting").fetchone()[0]
            keys = conn.execute("SELECT count(*) FROM api_idempotency_key WHERE state = 'done'").fetchone()[0]
            doctors = conn.execute("SELECT count(DISTINCT c_doctor) FROM opportunity").fetchone()[0]
            backends = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()[0]
        # The server may finish a few requests the load generator stopped waiting for.
        slack = 2 * self.connections * (2 if self.warmup > 0 else 1)
        problems = []
        if not self.put_requests <= updated <= self.put_requests + slack:
            problems.append(f"{updated} opportunity_updated records for {self.put_requests} PUTs")
        if meetings != OPPORTUNITIES:
            problems.append(f"{meetings} meetings, expected {OPPORTUNITIES} (one per opportunity and reservation)")
        if problems:
            raise BenchError("write check failed: " + "; ".join(problems))
        say(
            f"\n  writes: {updated} opportunity_updated records for {self.put_requests} PUTs, {meetings} meetings, "
            f"{doctors} distinct cDoctor values, {keys} Idempotency-Key answers kept; {backends} database "
            f"connections open ({self.db_mode})"
        )
        return {
            "history_records": updated,
            "put_requests": self.put_requests,
            "meetings": meetings,
            "idempotency_keys": keys,
            "db_backends": backends,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per endpoint (default 15)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per endpoint (default 2)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk (default when installed) or the Python fallback",
    )
    parser.add_argument(
        "--gunicorn-workers",
        type=int,
        default=GUNICORN_WORKERS,
        help=f"gunicorn sync workers (default {GUNICORN_WORKERS}, as make serve)",
    )
    parser.add_argument("--db-connections", choices=DB_MODES, default="persistent", help="bench/_db_modes.py")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    if args.gunicorn_workers < 1:
        parser.error("--gunicorn-workers must be >= 1")
    if args.duration <= 0 or args.warmup < 0 or args.connections < 1:
        parser.error("--duration must be > 0, --warmup >= 0, --connections >= 1")
    loadgen = args.loadgen
    if loadgen == "auto":
        loadgen = "wrk" if shutil.which("wrk") else "python"
    elif loadgen == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk), use --loadgen python")
    report: dict[str, Any] = {
        "bench": "api",
        "ok": False,
        "loadgen": loadgen,
        "connections": args.connections,
        "gunicorn_workers": args.gunicorn_workers,
        "db_connections": args.db_connections,
        "duration": args.duration,
        "endpoints": [],
        "targets": [],
    }

    def work() -> None:
        if loadgen == "python":
            say("NOTE: wrk not found; using the Python load generator (a weaker client: figures are lower bounds)")
        with Workspace("crm-bench-api-") as ws:
            bench = ApiBench(
                ws,
                duration=args.duration,
                warmup=args.warmup,
                connections=args.connections,
                loadgen=loadgen,
                gunicorn_workers=args.gunicorn_workers,
                db_mode=args.db_connections,
            )
            bench.setup()
            for mode, label in ENDPOINTS:
                report["endpoints"].append(bench.measure(mode, label))
            report["writes"] = bench.check_writes()
            bad = [e for e in report["endpoints"] if e["non2xx"] or e["socket_errors"]]
            if bad:
                say("\n--- last lines of the gunicorn log ---\n" + ws.log_tail("gunicorn"))
                raise BenchError(
                    "non-2xx answers or socket errors: "
                    + "; ".join(
                        f"{e['endpoint']}: {e['non2xx']} non-2xx (first {e['first_bad_status']}), "
                        f"{e['socket_errors']} socket errors"
                        for e in bad
                    )
                )

    code = run_guarded("bench/api.py: the HTTP API under gunicorn, production settings, PostgreSQL", work)
    report["ok"] = code == 0

    endpoints = {e["mode"]: e for e in report["endpoints"]}
    if endpoints:
        health_rps = endpoints["health"]["rps"] if "health" in endpoints else 0.0
        for e in report["endpoints"]:
            e["vs_health"] = e["rps"] / health_rps if health_rps else 0.0
        say(
            f"\nRESULTS (gunicorn {args.gunicorn_workers} workers, {args.connections} connections, "
            f"{args.duration:g} s each, {loadgen}, database connections {args.db_connections})"
        )
        say(f"{'endpoint':<58} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'vs /health':>10} {'non-2xx':>7}")
        for e in report["endpoints"]:
            say(
                f"{e['endpoint']:<58} {e['rps']:>8.1f} {e['p50_ms']:>7.1f} {e['p99_ms']:>7.1f} "
                f"{e['vs_health']:>9.0%} {e['non2xx']:>7}"
            )
        if "put" in endpoints and health_rps:
            put = endpoints["put"]
            report["targets"] = [
                {
                    "name": f"PUT req/s >= {PUT_SHARE_TARGET:.0%} of /health req/s",
                    "value": f"{put['vs_health']:.1%}",
                    "pass": put["vs_health"] >= PUT_SHARE_TARGET,
                },
                {
                    "name": f"PUT p99 < {PUT_P99_TARGET_MS:.0f} ms at {args.connections} connections",
                    "value": f"{put['p99_ms']:.1f} ms",
                    "pass": put["p99_ms"] < PUT_P99_TARGET_MS,
                },
            ]
    return report_targets(report, code, args.json)


if __name__ == "__main__":
    sys.exit(main())
