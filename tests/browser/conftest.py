"""Browser fixtures for the dashboard tests: Debian's chromium driven by Playwright's sync API.

Playwright's own browser downloads are never used (this machine cannot fetch them); the
``local_stack`` fixture comes from ``tests/conftest.py``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.support import LAPTOP

CHROMIUM = os.environ.get("CLICKSTREAM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser) -> Iterator:
    # A fresh context per test: no cache, storage or routes leak between tests.
    context = browser.new_context(viewport=LAPTOP, locale="en-US", timezone_id="UTC")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # read by the tests: uncaught exceptions in the page
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def visitor(browser) -> Iterator:
    """A page as a site's visitor has it: a desktop Chrome's user agent, not the headless
    one, which the API (rightly) counts as a bot and leaves out of the aggregates."""
    user_agent = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{browser.version} Safari/537.36"
    )
    context = browser.new_context(
        viewport=LAPTOP, locale="en-US", timezone_id="UTC", user_agent=user_agent
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
