"""Fixtures of the black-box suite (`make e2e`; docs/development.md "Black-box suite").

One `Stack` per session (`e2e/harness.py`): a throw-away folder, SQLite or a fresh PostgreSQL
database (E2E_DATABASE_URL), gunicorn serving `crm.wsgi` with production settings, the
invoice-mifact stand-in, an SV stand-in and a PDF file server, all on 127.0.0.1. Tests use:

- `api`: a `requests.Session` on the server with the API user's bearer token;
- `manage(*args, env=None)`: runs `manage.py` as a subprocess, returns (returncode, stdout, stderr);
- `mifact`, `sv`, `pdf_server`: the stand-ins; `new_id()`: ids unique in the session.

`make e2e` runs pytest with `-p no:django --confcutdir=e2e`: the suite never imports the product's
Django code (its request bodies come from the documented examples, the plain data of
`sales/example_bodies.py`), so pytest-django and the unit suite's root conftest.py stay out of it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from e2e.harness import ApiSession, CommandResult, Stack, running


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # pytest.ini is shared with the unit suite; without pytest-django its key would be "unknown".
    if not pluginmanager.has_plugin("django"):
        parser.addini("DJANGO_SETTINGS_MODULE", "pytest-django's setting (unused by this suite)")


_STACK: Stack | None = None


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    global _STACK
    try:
        with running(Stack()) as _STACK:
            yield _STACK
    finally:
        _STACK = None


@pytest.fixture(autouse=True)
def _server_log_mark(request: pytest.FixtureRequest, stack: Stack) -> Iterator[None]:
    """Remember where the server's log stood, so a failure report shows what it logged since;
    and leave SV listening whatever the test did."""
    request.node.e2e_log_offset = stack.log_path("gunicorn").stat().st_size
    yield
    stack.sv.up()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    offset = getattr(item, "e2e_log_offset", None)
    if report.failed and _STACK is not None and offset is not None:
        report.sections.append(
            ("gunicorn log during this test (last 60 lines)", _STACK.log_tail("gunicorn", lines=60, since=offset))
        )


@pytest.fixture
def api(stack: Stack) -> Iterator[ApiSession]:
    with stack.session(stack.token) as session:
        yield session


@pytest.fixture
def anonymous(stack: Stack) -> Iterator[ApiSession]:
    with stack.session() as session:
        yield session


@pytest.fixture
def manage(stack: Stack) -> Callable[..., CommandResult]:
    return stack.manage


@pytest.fixture
def mifact(stack: Stack) -> Any:
    return stack.mifact


@pytest.fixture
def sv(stack: Stack) -> Any:
    return stack.sv


@pytest.fixture
def pdf_server(stack: Stack) -> Any:
    return stack.pdf_server


_IDS = itertools.count(70001)


@pytest.fixture
def new_id() -> Callable[[], int]:
    """Reservation and service-order ids unique in the session (the database is fresh)."""
    return lambda: next(_IDS)


def pytest_report_header(config: pytest.Config) -> str:
    server = urlsplit(os.environ.get("E2E_DATABASE_URL", "")).hostname
    database = f"a fresh PostgreSQL database on {server}" if server else "a throw-away SQLite database"
    return f"e2e: gunicorn and manage.py subprocesses against {database}"
