"""gunicorn settings of `make serve` (docs/operations.md "Deploying"): when a worker exits, its
Prometheus figures stop counting as live (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import multiprocess


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
