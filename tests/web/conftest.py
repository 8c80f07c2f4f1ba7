"""Fixtures for the scoreboard page in real Chromium against a scripted edge.

Unit-level: no stack, no marker. Playwright's sync API keeps an event loop
marked as running while it is open, so the browser lives per module (not per
session) and never overlaps tests elsewhere that call asyncio.run().
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, sync_playwright
from scoreboard_states import MatchScript
from scripted_edge import ScriptedEdge
from support import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def edge() -> Iterator[ScriptedEdge]:
    with ScriptedEdge() as scripted:
        yield scripted


@pytest.fixture
def match() -> MatchScript:
    return MatchScript("gha-pan")


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    fresh = browser.new_context(
        locale="en-GB", timezone_id="UTC", viewport={"width": 720, "height": 640}
    )
    yield fresh
    fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that fails the test on any uncaught JavaScript error or dialog."""
    opened = context.new_page()
    errors: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        errors.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    opened.on("pageerror", lambda error: errors.append(f"{error.name}: {error.message}"))
    opened.on("dialog", on_dialog)
    yield opened
    assert not errors, f"the page raised: {errors}"
