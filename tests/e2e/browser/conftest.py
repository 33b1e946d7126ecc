"""Browser fixtures: Debian's Chromium driven by Playwright, and the real server.

Playwright's own browser download is not used: the tests launch the system Chromium
(``/usr/bin/chromium``, or ``ADAPTIVE_LTI_CHROMIUM``), headless. Without it the browser tests are
skipped with the reason, except under CI (``CI=true``), where a missing browser fails the run
(``scripts/check.py`` installs Chromium with apt-get when it can).

Every test gets a fresh browser context (no cookies, 1280×900), and screenshots of what it saw
go to one temporary folder per run (``screenshots`` fixture; its path is printed at the end).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.e2e.conftest import RunningServer, start_server

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 15_000


def chromium_executable() -> str | None:
    configured = os.environ.get("ADAPTIVE_LTI_CHROMIUM")
    if configured:
        return configured
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def chromium_path() -> str:
    configured = os.environ.get("ADAPTIVE_LTI_CHROMIUM")
    if configured and not Path(configured).is_file():
        pytest.fail(f"ADAPTIVE_LTI_CHROMIUM={configured} is not a file: point it at Chromium")
    found = chromium_executable()
    if found is None:
        reason = (
            "Chromium is not installed (apt-get install chromium, or set ADAPTIVE_LTI_CHROMIUM "
            "to a Chromium executable)"
        )
        if _under_ci():
            pytest.fail(f"browser tests must run under CI: {reason}")
        pytest.skip(reason)
    return found


# Module-scoped, not session-scoped: Playwright's sync API runs an asyncio event loop in this
# thread while it is open, and tests after the browser modules that call asyncio.run() would
# fail with "cannot be called from a running event loop".
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright, chromium_path: str) -> Iterator[Browser]:
    chromium = playwright_driver.chromium.launch(
        executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def browser_server(
    new_database_url: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """The real server (``adaptive-lti demo``) on a fresh SQLite database, for one module."""
    server = start_server(new_database_url("sqlite"), tmp_path_factory.mktemp("browser"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nbrowser screenshots: {folder}")
    return folder


@pytest.fixture
def context(browser: Browser, browser_server: RunningServer) -> Iterator[BrowserContext]:
    fresh = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=browser_server.url
    )
    fresh.set_default_timeout(DEFAULT_TIMEOUT_MS)
    yield fresh
    fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
