"""How the page shows things: local kick-off time, hostile text, reduced motion."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect
from scoreboard_pages import open_board, part
from scoreboard_states import MatchScript
from scripted_edge import ScriptedEdge

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    '"><svg onload=alert(3)>&amp;',
]


def test_kickoff_is_shown_in_the_browsers_timezone(
    browser: Browser, edge: ScriptedEdge, match: MatchScript
) -> None:
    scheduled = {**match.state(), "kickoff_at": "2026-12-05T07:00:00.000Z"}
    edge.publish(scheduled)
    context = browser.new_context(locale="en-GB", timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        page.goto(f"{edge.url}/?match=gha-pan")  # the other way to name the match
        status = part(page, "status")
        expect(status).to_contain_text("Kick-off")
        expect(status).to_contain_text("16:00")  # 07:00 UTC is 16:00 in Tokyo
        expect(status).not_to_contain_text("07:00")
        expect(page.locator("body")).to_have_attribute("data-status", "scheduled")
    finally:
        context.close()


def test_markup_in_a_player_name_is_shown_as_text_and_never_runs(
    page: Page, edge: ScriptedEdge, match: MatchScript
) -> None:
    edge.publish(match.kickoff())
    for minute, name in enumerate(HOSTILE, start=5):
        edge.publish(match.goal("GHA", name, minute))
    open_board(page, edge)
    players = part(page, "goal-list").locator(".goal-player")
    expect(players).to_have_text(HOSTILE)
    assert page.locator("img, svg").count() == 0
    assert page.locator("script").count() == 1  # app.js, nothing else
    assert page.locator("[onerror], [onload]").count() == 0
    # no dialog either: the page fixture fails the test on any dialog or page error


def test_reduced_motion_replaces_the_pulse_with_a_still_mark(
    browser: Browser, edge: ScriptedEdge, match: MatchScript
) -> None:
    edge.publish(match.kickoff())
    edge.publish(match.goal("GHA", "A. Semenyo", 3))
    context = browser.new_context(reduced_motion="reduce")
    try:
        page = context.new_page()
        open_board(page, edge)
        pulse = part(page, "provisional-pulse")
        expect(pulse).to_be_visible()
        expect(pulse).to_contain_text("Provisional")
        dot = pulse.locator(".provisional-dot")
        assert dot.evaluate("node => getComputedStyle(node).animationName") == "none"
        assert dot.evaluate("node => getComputedStyle(node).borderTopStyle") == "solid"
    finally:
        context.close()
