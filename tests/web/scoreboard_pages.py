"""Small helpers for driving the scoreboard page with Playwright."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Locator, Page, expect
from scripted_edge import ScriptedEdge


def open_board(
    page: Page, edge: ScriptedEdge, match_id: str = "gha-pan", **query: str | int | float
) -> None:
    """Load the page for `match_id` and wait until its stream is open."""
    page.goto(edge.page_url(match_id, **query))
    expect(page.locator("body")).to_have_attribute("data-conn", "live")


def part(page: Page, testid: str) -> Locator:
    return page.get_by_test_id(testid)


def gameday(page: Page, expression: str) -> Any:
    """Evaluate `expression` against the page's window.gameday object."""
    return page.evaluate(f"(() => {{ const g = window.gameday; return {expression}; }})()")


def wait_until(check: Callable[[], object], *, timeout_s: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or check}")
        time.sleep(0.05)
