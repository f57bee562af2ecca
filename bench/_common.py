"""Plumbing shared by the benchmarks (bench/poll.py, bench/api.py): the project's one harness
(devtools/harness.py) with the benchmarks' own database and error.

Every run is hermetic: subprocesses get a minimal environment plus explicit settings, with
`ENV_FILE` empty so the developer's `.env` is never read; the database is a throw-away
PostgreSQL database `crm_bench_<pid>` on 127.0.0.1:5432, dropped at the end even on failure;
files go to a temporary folder; ports are free ports on 127.0.0.1; every subprocess started is
stopped. Only loopback traffic.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools import harness
from devtools.harness import MANAGE, PYTHON, ROOT, free_port, hermetic_env, mifact_standin_argv

__all__ = ["MANAGE", "PYTHON", "ROOT", "free_port", "hermetic_env", "mifact_standin_argv"]

#: The server's maintenance database, used to create and drop the throw-away database.
POSTGRES_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"


class BenchError(Exception):
    """The benchmark itself broke (not a missed target): a step failed or a check did not hold."""


def say(text: str = "") -> None:
    print(text, flush=True)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP run the same clean-up as Ctrl-C (subprocesses stopped, database dropped)."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)


class ThrowAwayDatabase(harness.ThrowAwayDatabase):
    """`crm_bench_<pid>` on the local PostgreSQL server (BENCH_DB_PREFIX names it differently, for
    benches side by side on one server); a failed `create()` is a BenchError."""

    def __init__(self) -> None:
        super().__init__(POSTGRES_ADMIN_URL, f"{os.environ.get('BENCH_DB_PREFIX') or 'crm_bench'}_{os.getpid()}")

    def create(self) -> str:
        try:
            return super().create()
        except Exception as exc:  # psycopg.OperationalError and friends
            raise BenchError(f"cannot create database {self.name} on 127.0.0.1:5432 as postgres: {exc}") from exc


class Workspace(harness.Workspace):
    """A temp folder, the throw-away database `db` and the subprocesses of one benchmark run; as a
    context manager every subprocess is stopped, the database dropped and the folder removed."""

    def __init__(self, prefix: str) -> None:
        super().__init__(prefix, error=BenchError)
        self.db = ThrowAwayDatabase()
        self.databases.append(self.db)

    def __enter__(self) -> Workspace:
        return self

    def production_env(self, bench: str, settings: Mapping[str, str]) -> dict[str, str]:
        """The hermetic environment of the product with production settings on this run's database
        and folder: DEBUG off, a secret key of its own, Lima time, warnings only; `settings` on top."""
        return hermetic_env(
            {
                "DEBUG": "false",
                "SECRET_KEY": f"bench-{bench}-" + secrets.token_urlsafe(40),
                "ALLOWED_HOSTS": "127.0.0.1",
                "DATABASE_URL": self.db.url,
                **self.files_env,
                "TIME_ZONE": "America/Lima",
                "LOG_LEVEL": "WARNING",
                **settings,
            }
        )


@contextlib.contextmanager
def seeded_in_process(bench: str, seed: Callable[[], dict[str, int]]) -> Iterator[dict[str, int]]:
    """Django set up in this process with production settings on a throw-away database, migrated,
    its static files collected (the production storage's manifest) and filled by `seed`; yields
    the counts `seed` returned. Connections are closed before the database is dropped."""
    with Workspace(f"crm-bench-{bench}-") as ws:
        env = ws.production_env(bench, {"ALLOWED_HOSTS": "testserver", "CONN_MAX_AGE": "600"})
        say(f"database {ws.db.name} on 127.0.0.1:5432")
        ws.db.create()
        ws.manage(env, "migrate", "--noinput")
        # STATIC_ROOT is the project's staticfiles/ (gitignored), as for the black-box suite.
        ws.manage(env, "collectstatic", "--noinput")
        os.environ.update(env)
        # Django is imported only now: its settings come from the environment set just above.
        import django
        from django.db import connections

        django.setup()
        started = time.monotonic()
        counts = seed()
        say(
            "  seeded "
            + ", ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in counts.items())
            + f" in {time.monotonic() - started:.1f} s"
        )
        try:
            yield counts
        finally:
            connections.close_all()


def run_guarded(title: str, work: Callable[[], None]) -> int:
    """Print the bench's title and run `work`, SIGTERM and SIGHUP cleaning up as Ctrl-C does: 0 when
    it ran; 1 after "BENCH BROKE" (a BenchError or a bug); 130 on Ctrl-C or SIGTERM."""
    install_signal_handlers()
    say("=" * 78)
    say(title)
    say("=" * 78)
    try:
        work()
        return 0
    except BenchError as exc:
        say(f"\nBENCH BROKE: {exc}")
    except KeyboardInterrupt:
        say("\ninterrupted")
        return 130
    except Exception:
        say("\nBENCH BROKE with an unexpected error:\n" + traceback.format_exc())
    return 1


def report_targets(report: dict[str, Any], code: int, json_path: str | None) -> int:
    """Print the run's targets with their verdicts, write `report` as JSON to `json_path` if given;
    return `code`."""
    for target in report.get("targets", []):
        say(f"TARGET {target['name']}: {target['value']} -> {verdict(target['pass'])}")
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2))
    return code


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


class PeakMemory:
    """The peak resident memory of a running process, from its `VmHWM` in /proc (sampled every
    20 ms until it exits). Not `wait4`'s `ru_maxrss`: Linux carries the parent's high-water mark
    over fork and exec, so that figure is at least the bench process's own peak (which grows with
    the rows it seeds), whatever the child used."""

    def __init__(self, pid: int) -> None:
        self.path = Path(f"/proc/{pid}/status")
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        try:
            text = self.path.read_text()
        except OSError:
            return
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                self.peak_kb = max(self.peak_kb, int(line.split()[1]))

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self._sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak_kb / 1024.0
