"""How the API bench's gunicorn holds its database connections (`bench/api.py --db-connections`):

- `persistent`: the production default on PostgreSQL, a connection kept per worker
  (`CONN_MAX_AGE=600`) and health-checked before the first query of each request;
- `per-request`: `CONN_MAX_AGE=0`, a new connection for every request (the default before);
- `pool`: Django's psycopg pool (`OPTIONS["pool"]`, with `CONN_MAX_AGE=0`; every connection
  taken from the pool is checked) through the settings module `bench/_pool_settings.py`. It
  needs the `psycopg-pool` package, which is not a requirement of the project:
  `.venv/bin/pip install psycopg-pool` (or a folder of it on `PYTHONPATH`).
"""

from __future__ import annotations

import os
from pathlib import Path

DB_MODES = ("persistent", "per-request", "pool")


def db_mode_env(mode: str) -> dict[str, str]:
    """The environment that sets the database connections of `mode` (one of `DB_MODES`)."""
    if mode == "persistent":
        return {"CONN_MAX_AGE": "600"}
    if mode == "per-request":
        return {"CONN_MAX_AGE": "0"}
    if mode == "pool":
        path = [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")]
        return {
            "CONN_MAX_AGE": "0",
            "DJANGO_SETTINGS_MODULE": "_pool_settings",
            "PYTHONPATH": os.pathsep.join(p for p in path if p),
        }
    raise ValueError(f"unknown database connection mode {mode!r}")
