"""The fault-injection suite's stack and tools: the e2e `Stack` (e2e/harness.py) with the faulty
invoice-mifact stand-in, a per-test folder for temporary files, SIGKILL at a chosen moment,
`pg_terminate_backend`, and read access to the database (as an operator with `psql` has)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import select
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
import requests
from psycopg.rows import dict_row

from e2e import bodies
from e2e.harness import HTTP_TIMEOUT, ApiSession, Stack

#: How many kills a sweep makes (FAULTS_KILLS); the suite's wall time grows by ~1 s per kill and sweep.
DEFAULT_KILLS = 20
#: Milliseconds after the last PDF byte that the first half of a sweep covers (the second half
#: closes in on where the kills saw the close turn from untouched to committed).
SWEEP_MS = 40.0


def kills_per_sweep() -> int:
    value = os.environ.get("FAULTS_KILLS", "").strip()
    return max(2, int(value)) if value else DEFAULT_KILLS


def kills_at_first_write() -> int:
    """Kills made the moment the first comprobante file is stored, besides the sweep: a fifth of it."""
    return max(1, kills_per_sweep() // 5)


class FaultStack(Stack):
    """The e2e stack with the faulty invoice-mifact stand-in and short client timeouts; PostgreSQL only."""

    database_prefix = os.environ.get("FAULTS_DB_PREFIX", "crm_faults")
    mifact_module = "devtools.mifact_faults"

    def _environment(self) -> dict[str, str]:
        env = super()._environment()
        env.update(
            {
                # Short timeouts keep a hanging invoice-mifact within the suite's few minutes.
                "INVOICE_MIFACT_TIMEOUT": "2",
                "INVOICE_MIFACT_INLINE_TIMEOUT": "1",
                "SV_SYNC_BACKOFF_MAX_SECONDS": "2",
            }
        )
        return env

    # -- the database, as an operator reads it --------------------------------------------------

    def db(self) -> psycopg.Connection[dict[str, Any]]:
        return psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row, connect_timeout=10)

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with self.db() as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def pending_service_orders(self, opportunities: list[str]) -> list[int]:
        """Ids of the O.S of `opportunities` still waiting for their invoice."""
        rows = self.query(
            "SELECT service_order_id FROM opportunity_service_order WHERE NOT facturado AND opportunity_id = ANY(%s)",
            opportunities,
        )
        return [row["service_order_id"] for row in rows]

    def terminate_backends(self) -> int:
        """`pg_terminate_backend` every other connection to the suite's database (a failover)."""
        name = urlsplit(self.database_url).path.lstrip("/")
        rows = self.query(
            "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            name,
        )
        return sum(1 for row in rows if row["done"])

    # -- the faulty invoice-mifact stand-in ------------------------------------------------------

    def mifact_faults(self, **body: Any) -> dict[str, Any]:
        return self._mifact_post("/_standin/faults", body)

    def mifact_urls(self, service_order_id: int, urls: dict[str, str]) -> dict[str, Any]:
        return self._mifact_post(f"/_standin/service-order/{service_order_id}/urls", urls)

    def _mifact_post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.mifact.http.post(f"{self.mifact.base_url}{path}", json=body, timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text
        return response.json()


@dataclass
class Scene:
    """One test's own folders and environment: TMPDIR and INVOICE_DOWNLOAD_DIR for gunicorn and every
    command it runs, and the database time it started at (the invariants look at what it created)."""

    stack: FaultStack
    folder: Path
    env: dict[str, str]
    started_at: Any
    figures: list[str] = field(default_factory=list)

    @property
    def tmp(self) -> Path:
        return self.folder / "tmp"

    @property
    def downloads(self) -> Path:
        return self.folder / "downloads"

    def env_with(self, **overrides: str) -> dict[str, str]:
        return {**self.env, **overrides}

    def manage(self, *args: str, **overrides: str) -> Any:
        return self.stack.manage(*args, env=self.env_with(**overrides))

    def popen(self, *args: str, **overrides: str) -> subprocess.Popen[str]:
        return self.stack.manage_popen(*args, env=self.env_with(**overrides))

    def figure(self, line: str) -> None:
        """A measured figure, printed in the suite's summary."""
        self.figures.append(line)


class SentMark:
    """A PDF route's `on_sent` callback: remembers when the last byte went out, and to whom."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.at = 0.0
        self.client: tuple[str, int] | None = None

    def __call__(self, client: tuple[str, int]) -> None:
        self.at = time.perf_counter()
        self.client = client
        self.event.set()


def kill_after(mark: SentMark, offset: float, pid: int, timeout: float = 60.0) -> float | None:
    """SIGKILL `pid` `offset` seconds after `mark` (sleep, then spin for the last millisecond).
    Returns the real offset, or None when the mark never came."""
    if not mark.event.wait(timeout):
        return None
    target = mark.at + offset
    if (ahead := target - time.perf_counter() - 0.001) > 0:
        time.sleep(ahead)
    while time.perf_counter() < target:
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return time.perf_counter() - mark.at


def pid_with_local_port(pids: list[int], port: int) -> int | None:
    """Which of `pids` has a TCP socket bound to local `port` (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


def focused_offset(seen: list[tuple[float, str]], index: int) -> float:
    """An offset (seconds) for the second half of a sweep: within the interval where the kills so far
    saw the close turn from untouched to committed (1 ms either side, as the timing jitters), at a
    golden-ratio point of it, so that the kills close in on the commit from both sides."""
    untouched = [offset for offset, outcome in seen if outcome == "untouched"]
    committed = [offset for offset, outcome in seen if outcome != "untouched"]
    low = max(untouched, default=0.0)
    high = min(committed, default=low + SWEEP_MS / 1000)
    start, end = sorted((low, high))
    start, end = max(0.0, start - 0.001), end + 0.001
    return start + (end - start) * ((index * 0.6180339887) % 1.0)


def first_half_offsets(count: int) -> list[float]:
    return [SWEEP_MS / 1000 * i / max(1, count - 1) for i in range(count)]


T = TypeVar("T")


def kill_sweep(kill: Callable[[float], T], outcome: Callable[[T], tuple[float | None, str]]) -> list[T]:
    """`kills_per_sweep()` calls of `kill(offset)`: the first half at offsets spread over SWEEP_MS, the
    second half at `focused_offset` of what the kills so far saw; `outcome` reads a kill's (real
    offset, or None when it did not hit, and close state)."""
    kills = kills_per_sweep()
    first = first_half_offsets(kills // 2)
    results: list[T] = []
    for index in range(kills):
        if index < len(first):
            results.append(kill(first[index]))
            continue
        seen = [(real, state) for real, state in map(outcome, results) if real is not None]
        results.append(kill(focused_offset(seen, index - len(first) + 1)))
    return results


def sweep_figure(
    scene: Scene,
    seen: list[tuple[float, str]],
    at_write: list[tuple[bool, str]],
    *,
    killed: str,
    after: str,
    leftover_of: str,
) -> Counter[str]:
    """Record the sweep's figure: the outcomes of the kills that hit, of the kills at the first file
    stored (`at_write`: whether it hit, the close state), the temporary files left; returns the
    counts of the sweep's outcomes."""
    states = Counter(state for _, state in seen)
    write_states = Counter(state for hit, state in at_write if hit)
    window = sorted(round(real * 1000, 1) for real, state in seen if state == "missing files")
    left_tmp = sum(1 for d in (scene.tmp, scene.downloads) for p in d.rglob("*") if p.is_file())
    scene.figure(
        f"{len(seen)} kills of {killed} 0-{max((r for r, _ in seen), default=0) * 1000:.1f} ms after {after}: "
        f"{states['untouched']} untouched, {states['complete']} complete, {states['missing files']} committed "
        f"without their files (defect 1) at {window} ms; {len(at_write)} kills at the first file stored in "
        f"MEDIA_ROOT: {dict(write_states)}; {left_tmp} temporary files left by the killed {leftover_of}"
    )
    return states


def retry_put(api: ApiSession, opportunity_id: str, body: dict[str, Any], attempts: int = 8) -> requests.Response:
    """PUT as a front-end does after a failure: again, until it answers 200 (or `attempts` run out)."""
    response: requests.Response | None = None
    for _ in range(attempts):
        try:
            response = api.put(f"/opportunity/update-opportunity-procces/{opportunity_id}", json=body)
        except requests.RequestException:
            time.sleep(0.3)
            continue
        if response.status_code == 200:
            return response
        time.sleep(0.3)
    assert response is not None, f"PUT {opportunity_id} never got an answer"
    return response


def closing_body(reservation_id: int, clinic_history: str, urls: dict[str, str]) -> dict[str, Any]:
    """Main data, an appointment and a direct invoice (`cFacturas`) in one PUT."""
    return {
        **bodies.MAIN,
        **bodies.appointment(reservation_id),
        "cClinicHistory": clinic_history,
        "cFacturas": {"comprobante_soles": urls.get("soles"), "comprobante_dolares": urls.get("dolares")},
    }


SUMMARY_RE = re.compile(r"^poll_invoices: pending=\d+ checked=\d+ invoiced=\d+ errors=\d+ left=\d+")


class MediaWrites:
    """The first sign of a file being stored anywhere under a folder (a file or folder created,
    written and closed, or renamed into it), through Linux inotify (ctypes; no extra package).
    Arm it before the process starts; `wait()` returns once something was stored."""

    _EVENTS = 0x00000100 | 0x00000008 | 0x00000080  # IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO

    def __init__(self, root: Path) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        for folder, _, _ in os.walk(root):
            if libc.inotify_add_watch(self._fd, os.fsencode(folder), self._EVENTS) < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch failed for {folder}")

    def wait(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._fd], [], [], timeout)
        return bool(ready)

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> MediaWrites:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def kill_at_first_write(writes: MediaWrites, pid: int, timeout: float = 60.0) -> bool:
    """SIGKILL `pid` as soon as something is stored under the watched folder; False when nothing was."""
    if not writes.wait(timeout):
        return False
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True
