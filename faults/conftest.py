"""Fixtures of the fault-injection suite (`make faults`; docs/development.md "Fault-injection suite").

One `FaultStack` per session (`faults/support.py`, the e2e `Stack` of e2e/harness.py): a fresh
PostgreSQL database, gunicorn as `make serve` runs it, the faulty invoice-mifact stand-in, the SV
stand-in and a PDF server, all on 127.0.0.1. Each test gets a `scene`: gunicorn restarted with
the test's own TMPDIR and INVOICE_DOWNLOAD_DIR, the same for every `manage.py` it runs, so that
what a fault leaves behind is the test's to see. Figures the tests measure are printed at the end.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from e2e.harness import ApiSession, running
from faults.support import FaultStack, Scene

_STACK: FaultStack | None = None
_FIGURES: list[tuple[str, str]] = []
_SCENES = itertools.count(1)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # pytest.ini is shared with the unit suite; without pytest-django its key would be "unknown".
    if not pluginmanager.has_plugin("django"):
        parser.addini("DJANGO_SETTINGS_MODULE", "pytest-django's setting (unused by this suite)")


def pytest_configure(config: pytest.Config) -> None:
    url = os.environ.get("E2E_DATABASE_URL", "")
    if urlsplit(url).scheme not in ("postgres", "postgresql", "pgsql"):
        raise pytest.UsageError(
            "the fault-injection suite runs on PostgreSQL only (pg_terminate_backend): "
            "set E2E_DATABASE_URL=postgres://user@host:5432/postgres (make faults does)"
        )


@pytest.fixture(scope="session")
def stack() -> Iterator[FaultStack]:
    global _STACK
    try:
        with running(FaultStack()) as _STACK:
            yield _STACK
    finally:
        _STACK = None


@pytest.fixture
def scene(request: pytest.FixtureRequest, stack: FaultStack) -> Iterator[Scene]:
    name = f"{next(_SCENES):02d}-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[-60:]
    folder = stack.workdir / "scenes" / name
    (folder / "tmp").mkdir(parents=True)
    (folder / "downloads").mkdir()
    env = stack.env_with(TMPDIR=str(folder / "tmp"), INVOICE_DOWNLOAD_DIR=str(folder / "downloads"))
    stack.mifact_faults(mode=None, latencySeconds=0)
    stack.sv.up()
    stack.sv.plan_patches([])
    stack.restart_gunicorn(env)
    started_at = stack.query("SELECT now() AS now")[0]["now"]
    request.node.faults_log_offset = stack.log_offset("gunicorn")
    current = Scene(stack=stack, folder=folder, env=env, started_at=started_at)
    try:
        yield current
    finally:
        _FIGURES.extend((request.node.name, line) for line in current.figures)
        stack.mifact_faults(mode=None, latencySeconds=0)
        stack.sv.up()
        stack.sv.plan_patches([])


@pytest.fixture
def api(stack: FaultStack, scene: Scene) -> Iterator[ApiSession]:
    with stack.session(stack.token) as session:
        yield session


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    offset = getattr(item, "faults_log_offset", None)
    if report.failed and _STACK is not None and offset is not None:
        report.sections.append(
            ("gunicorn log during this test (last 40 lines)", _STACK.log_tail("gunicorn", lines=40, since=offset))
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FIGURES:
        terminalreporter.section("fault-injection figures")
        for test, line in _FIGURES:
            terminalreporter.write_line(f"{test}: {line}")


def pytest_report_header(config: pytest.Config) -> str:
    server = urlsplit(os.environ.get("E2E_DATABASE_URL", "")).hostname
    return f"faults: gunicorn, manage.py, SIGKILL and pg_terminate_backend against a fresh database on {server}"
