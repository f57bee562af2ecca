"""Whether the process of a `running` run record can still be running (docs/operations.md
"Monitoring", run records).

A run writes its host, pid, the process's start time and a heartbeat (`jobs.runs`). A record is
*interrupted* when, on the same host, its pid is gone or belongs to a newer process (a reused pid:
another start time in `/proc`), or, wherever it ran, its last sign of life is older than
`COMMAND_RUN_STALE_SECONDS`. Reading this is free (no query): `/health` and the start page use
it on the row they already have; a later run writes the mark (`jobs.runs.runs_mark_interrupted`).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path

from django.conf import settings

from jobs.models import CommandRun

#: Spanish, for people: why a `running` record is counted as failed.
PROCESS_GONE = "interrumpida: el proceso ya no existe"


def this_host() -> str:
    return socket.gethostname()[:255]


def process_start_ticks(pid: int) -> int | None:
    """When process `pid` started, in clock ticks after boot (`/proc/<pid>/stat`, field 22), or
    None when it does not exist or the system has no `/proc`."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count after the last ")".
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def process_exists(pid: int, started: int | None) -> bool:
    """Whether process `pid` exists on this host and, when `started` is known and `/proc` can
    tell, is the same process (not a newer one that got the pid again)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    if started is None:
        return True
    now_started = process_start_ticks(pid)
    return now_started is None or now_started == started


def run_interruption(run: CommandRun, *, now: dt.datetime) -> str:
    """Why `run` is recorded `running` but cannot be running any more, or "" (it may be running,
    or it is finished)."""
    if run.outcome != CommandRun.Outcome.RUNNING:
        return ""
    if run.pid is not None and run.host == this_host():
        return "" if process_exists(run.pid, run.process_started) else PROCESS_GONE
    last_sign = run.heartbeat_at or run.started_at
    silent = (now - last_sign).total_seconds()
    if silent > settings.COMMAND_RUN_STALE_SECONDS:
        return f"interrumpida: sin señales de vida desde hace {int(silent // 60)} min"
    return ""
