"""Browser tests: a real headless Chromium (Debian's `chromium` + `chromium-driver`) driven by
Selenium against pytest-django's `live_server`.

Nothing is downloaded: the browser is /usr/bin/chromium and the driver /usr/bin/chromedriver
(Selenium Manager is bypassed by giving the driver's path). Tests are skipped, with the reason,
when either is missing or Selenium is not installed, unless `REQUIRE_BROWSER=1` (as in .ci/run),
which turns the skip into a failure. Run them with `make test-browser`; the default `pytest` run
(pytest.ini `testpaths`) does not collect this folder.

Screenshots of what staff see (`screenshot` fixture) are written to `tests_browser/screenshots/`
(gitignored; `BROWSER_SCREENSHOTS_DIR` moves it), emptied when the session starts, so after a run
it holds that run's pictures; .ci/run prints where they are.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1024",
)
INSTALL_HINT = "apt-get install -y chromium chromium-driver"
SCREENSHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS_DIR") or Path(__file__).resolve().parent / "screenshots")

# Page titles seen by the tests, printed at the end of the run (see pytest_terminal_summary).
SEEN_TITLES: list[tuple[str, str]] = []
# Screenshots written by the tests, listed at the end of the run.
SAVED_SCREENSHOTS: list[Path] = []


def _missing_browser_reason() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.is_file():
            return f"{path} is missing ({INSTALL_HINT})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements.txt)"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session, with a fresh throw-away profile."""
    reason = _missing_browser_reason()
    if reason:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="crm-chromium-")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # Chromium's network events, read by the tests that check where pages load from.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


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
