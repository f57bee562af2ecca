"""Headless Chromium for the browser tests (tests_browser/) and the black-box suite's front-end
test (e2e/test_browser_front_end.py).

Nothing is downloaded: the browser is Debian's /usr/bin/chromium and the driver
/usr/bin/chromedriver (Selenium Manager is bypassed by giving the driver's path). Each browser
gets a fresh throw-away profile; its network events (`performance`) and console (`browser`) are
logged for the tests to read with `driver.get_log(...)`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def missing_browser_reason() -> str | None:
    """Why no browser can be started here (Chromium, its driver or Selenium missing), or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.is_file():
            return f"{path} is missing ({INSTALL_HINT})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements.txt)"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium WebDriver with a fresh profile, quit and removed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="crm-chromium-")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@contextmanager
def chromium_for_tests() -> Iterator[Any]:
    """`chromium()` for a pytest fixture: the test is skipped where no browser can start, and
    fails instead under REQUIRE_BROWSER=1 (as CI sets it)."""
    import pytest

    reason = missing_browser_reason()
    if reason:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    with chromium() as driver:
        yield driver
