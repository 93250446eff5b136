"""Browser tests: Playwright drives Debian's Chromium (``/usr/bin/chromium``, headless) against a live
server on loopback. Playwright never downloads a browser here.

Without Chromium the tests skip, unless ``REQUIRE_BROWSER=1`` (CI sets it, after installing the
``chromium`` package), where they fail instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Playwright's sync API runs an event loop in the test's thread; Django's ORM, called by the test to
# set up data while that loop exists, would refuse to run "from an async context" without this.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} is missing: install Debian's chromium package (`apt-get install chromium`)"
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def browser(transactional_db):
    """A Chromium of the test's own. Function-scoped, after the database fixture, on purpose:
    Playwright's sync API runs an asyncio event loop in this thread, and while it runs Django's
    connection handler hands out a context-local connection, one without the serialized test data,
    so a ``serialized_rollback`` restore made after the loop started would silently restore nothing."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, live_server):
    """``new_page(locale="en")``: a fresh browser context (its own cookies) and page; closed afterwards.
    Pages go to ``live_server.url`` + path."""
    contexts = []

    def make(locale: str = "en-US", timezone_id: str = "Asia/Shanghai"):
        context = browser.new_context(
            locale=locale, timezone_id=timezone_id, viewport={"width": 1440, "height": 900}
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in(page, live_server, username: str, password: str = "x-unused-x") -> None:  # noqa: S107
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit].primary")
    page.wait_for_load_state("networkidle")


SCREENSHOTS = os.environ.get("SCREENSHOT_DIR", "")


def screenshot(page, name: str) -> None:
    """With ``SCREENSHOT_DIR`` set, the page as a PNG there (the README's pictures come from a run)."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=False)
