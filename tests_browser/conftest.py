"""Browser tests: a real headless Chromium (Debian's `chromium` + `chromium-driver`) driven by
Selenium against pytest-django's `live_server`.

Nothing is downloaded: the browser is /usr/bin/chromium and the driver /usr/bin/chromedriver
(devtools/browser.py). Tests are skipped, with the reason,
when either is missing or Selenium is not installed, unless `REQUIRE_BROWSER=1` (as in .ci/run),
which turns the skip into a failure. Run them with `make test-browser`; the default `pytest` run
(pytest.ini `testpaths`) does not collect this folder.

Screenshots of what staff see (`screenshot` fixture) are written to `tests_browser/screenshots/`
(gitignored; `BROWSER_SCREENSHOTS_DIR` moves it), emptied when the session starts, so after a run
it holds that run's pictures; .ci/run prints where they are.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.browser import chromium_for_tests

SCREENSHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS_DIR") or Path(__file__).resolve().parent / "screenshots")

# Page titles seen by the tests, printed at the end of the run (see pytest_terminal_summary).
SEEN_TITLES: list[tuple[str, str]] = []
# Screenshots written by the tests, listed at the end of the run.
SAVED_SCREENSHOTS: list[Path] = []


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session, with a fresh throw-away profile."""
    with chromium_for_tests() as driver:
        yield driver


@pytest.fixture
def plain_http_cookies(settings: Any) -> None:
    """The live server speaks plain HTTP: let the session and CSRF cookies travel over it
    (production keeps them Secure, behind TLS)."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.SECURE_SSL_REDIRECT = False


@pytest.fixture
def record_title(browser: Any, request: pytest.FixtureRequest) -> Any:
    """`record_title()` stores the current page title under the running test's name."""

    def record() -> str:
        title = browser.title
        SEEN_TITLES.append((request.node.name, title))
        print(f"page title: {title}")
        return title

    return record


def set_viewport(browser: Any, width: int, height: int) -> None:
    """Make the page's viewport (`window.innerWidth`) exactly `width` CSS pixels wide."""
    browser.set_window_size(width, height)
    inner = browser.execute_script("return window.innerWidth")
    if inner != width:
        browser.set_window_size(width + (width - inner), height)


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    """`tests_browser/screenshots/`, emptied of the previous run's pictures."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return SCREENSHOTS


@pytest.fixture
def screenshot(browser: Any, screenshots_dir: Path) -> Any:
    """`screenshot(name)` saves the whole page, at the current viewport width, as `<name>.png`."""

    def save(name: str) -> Path:
        width = browser.execute_script("return window.innerWidth")
        outer = browser.get_window_size()
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(outer["width"], min(max(height + 100, 600), 8000))
        path = screenshots_dir / f"{name}.png"
        browser.save_screenshot(str(path))
        browser.set_window_size(outer["width"], outer["height"])
        assert browser.execute_script("return window.innerWidth") == width
        SAVED_SCREENSHOTS.append(path)
        return path

    return save


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SEEN_TITLES:
        terminalreporter.section("page titles seen by the browser")
        for test_name, title in SEEN_TITLES:
            terminalreporter.write_line(f"{test_name}: {title}")
    if SAVED_SCREENSHOTS:
        terminalreporter.section("screenshots")
        for path in SAVED_SCREENSHOTS:
            terminalreporter.write_line(str(path))
