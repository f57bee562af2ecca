"""A process killed (SIGKILL) at many points of a close leaves every attachment row with its file,
and the next poll or the same PUT again completes the close (docs/development.md "Crash points").

Each point is a separate process (`devtools.crash_points`) on a throw-away database (a SQLite
file, or a PostgreSQL database on the server DATABASE_URL names) and a local invoice-mifact
stand-in; the points are the lines of the code that downloads and stores the comprobantes and
records the close, sampled to `CRASH_POINTS` per scenario.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from devtools.harness import ROOT, Workspace
from devtools.mifact_standin import MifactStandin
from devtools.testing import kill_points

POINTS = int(os.environ.get("CRASH_POINTS", "16"))
# Where comprobantes are downloaded and stored, and the close recorded.
CLOSING_CODE = (
    "billing/comprobantes.py",
    "opportunities/attachment_files.py",
    "billing/services/checks.py",
    "sales/process_update.py",
)
CLEAN: dict[str, list[Any]] = {
    "rows_without_their_file": [],
    "invoiced_without_comprobantes": [],
    "direct_closes_without_comprobantes": [],
    "repeated_history": [],
}


class World:
    def __init__(self, folder: Path, standin: MifactStandin, database_url: str) -> None:
        self.standin = standin
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "crm.settings_test",
            "DATABASE_URL": database_url,
            "CRASH_MEDIA_ROOT": str(folder / "media"),
            "CRASH_DOWNLOAD_DIR": str(folder / "downloads"),
            "CRASH_MIFACT_URL": standin.base_url,
            "PYTHONUNBUFFERED": "1",
        }
        self.downloads = folder / "downloads"

    def child(self, *args: Any, killed: bool = False) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "devtools.crash_points", *map(str, args)],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if killed:
            assert done.returncode in (0, -9), done.stderr[-3000:]
        else:
            assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def check(self) -> dict[str, Any]:
        return json.loads(self.child("check"))


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A SQLite file, or a new database on the PostgreSQL server of DATABASE_URL (dropped after)."""
    server = os.environ.get("DATABASE_URL", "")
    with Workspace("crm-crash-db-") as workspace:
        yield workspace.database_url(server if server.startswith("postgres") else "", f"crm_crash_{os.getpid()}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("crash")
    with MifactStandin() as standin:
        world = World(folder, standin, database_url)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], env=world.env, cwd=ROOT, check=True, timeout=300
        )
        yield world


def sweep(world: World, scenario: str, first: int) -> list[dict[str, Any]]:
    """Calibrate (one run to the end), then kill one run at each point and retry it."""
    world.standin.invoice(first)
    events = json.loads(world.child("run", scenario, first, 0))
    points = kill_points(events, CLOSING_CODE, POINTS)

    def one(number: int, point: int) -> dict[str, Any]:
        world.standin.invoice(number)
        world.child("run", scenario, number, point, killed=True)
        return {"point": point, "event": events[point - 1], "number": number}

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one, range(first + 1, first + 1 + len(points)), points))
    after_kills = world.check()
    world.child("retry", scenario, first + 1, first + len(points))
    return [after_kills, world.check(), *results]


@pytest.mark.parametrize("scenario,first", [("poll", 71000), ("put", 72000)])
def test_a_close_killed_at_any_point_loses_no_file_and_completes_on_retry(world: World, scenario: str, first: int):
    after_kills, after_retries, *points = sweep(world, scenario, first)
    assert len(points) >= min(POINTS, 8)
    # Right after the kills: no committed row lacks its file, no close lacks its comprobantes.
    assert {key: after_kills[key] for key in CLEAN} == CLEAN, points
    # After the retries: every close complete, nothing duplicated, no download left behind.
    assert {key: after_retries[key] for key in CLEAN} == CLEAN
    assert after_retries["downloads_left"] == []
    assert after_retries["not_closed"] == []
