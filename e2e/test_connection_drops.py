"""A database that drops its connections (a failover, a restart, `pg_terminate_backend`) costs
no request an error: each gunicorn worker replaces its persistent connection (docs/operations.md
"Configuration", `CONN_MAX_AGE`). PostgreSQL only."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import pytest

from e2e.harness import GUNICORN_WORKERS

#: Requests sent four at a time (while one worker is busy another must take one), in rounds,
#: until every worker has served the path since a mark; at most this many.
REQUEST_LIMIT = 80

pytestmark = pytest.mark.skipif(
    not os.environ.get("E2E_DATABASE_URL", "").startswith(("postgres://", "postgresql://", "pgsql://")),
    reason="connections are dropped with pg_terminate_backend: PostgreSQL only",
)


def app_backends(database_url: str, *, terminate: bool = False) -> list[int]:
    """Pids of the server processes connected to the app's database (other than this query's);
    with `terminate`, each is ended as a failover ends it."""
    import psycopg

    parts = urlsplit(database_url)
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))
    query = (
        "SELECT pid{} FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).format(", pg_terminate_backend(pid)" if terminate else "")
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        return [row[0] for row in conn.execute(query).fetchall()]


def requests_until_every_worker_served(stack, http, path: str) -> list[tuple[int, str, str]]:
    """(status, Content-Type, body start) of each request made until every worker served `path`."""
    since = stack.log_offset("gunicorn")
    answers = []
    with ThreadPoolExecutor(4) as pool:
        while len(answers) < REQUEST_LIMIT:
            for response in pool.map(lambda _: http.get(path), range(4)):
                answers.append((response.status_code, response.headers.get("Content-Type", ""), response.text[:200]))
            if len(stack.workers_that_served(path, since)) == GUNICORN_WORKERS:
                return answers
    raise AssertionError(f"{REQUEST_LIMIT} requests did not reach all {GUNICORN_WORKERS} workers")


def test_every_worker_answers_after_the_database_dropped_its_connections(stack, api):
    opportunity_id = api.create_opportunity("E2E - conexiones cortadas")["id"]
    path = f"/opportunity/{opportunity_id}"
    # Every worker serves a request that reads the database, and so keeps a connection open.
    requests_until_every_worker_served(stack, api, path)
    assert len(app_backends(stack.database_url)) >= GUNICORN_WORKERS

    ended = app_backends(stack.database_url, terminate=True)
    assert len(ended) >= GUNICORN_WORKERS
    deadline = time.monotonic() + 10
    while set(ended) & set(app_backends(stack.database_url)):
        assert time.monotonic() < deadline, "the terminated server processes did not exit"
        time.sleep(0.05)

    answers = requests_until_every_worker_served(stack, api, path)

    failed = [answer for answer in answers if answer[0] != 200 or not answer[1].startswith("application/json")]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed after the drop: {failed[:4]}"
    assert api.put_process(opportunity_id, {"cDoctor": "Dra. Tras el corte", "reservationId": 4242})
