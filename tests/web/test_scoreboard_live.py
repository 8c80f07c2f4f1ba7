"""The scoreboard follows the stream: goals, provisional goals, VAR, the delayed feed, seq order."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import Page, expect
from scoreboard_pages import gameday, open_board, part
from scoreboard_states import MatchScript
from scripted_edge import ScriptedEdge


def test_a_goal_shows_within_a_second_of_being_pushed(
    page: Page, edge: ScriptedEdge, match: MatchScript, tmp_path: Path
) -> None:
    edge.publish(match.kickoff())
    open_board(page, edge)
    expect(part(page, "home")).to_have_text("GHA")
    expect(part(page, "away")).to_have_text("PAN")
    expect(part(page, "score-home")).to_have_text("0")
    expect(part(page, "status")).to_have_text("Live 0'")
    expect(part(page, "goals-empty")).to_be_visible()

    pushed = time.monotonic()
    edge.publish(match.goal("GHA", "A. Semenyo", 88))
    expect(part(page, "score-home")).to_have_text("1", timeout=1000)
    assert time.monotonic() - pushed < 1.0
    expect(part(page, "score-away")).to_have_text("0")
    expect(part(page, "status")).to_have_text("Live 88'")
    goals = part(page, "goal-list").get_by_test_id("goal")
    expect(goals).to_have_count(1)
    expect(goals.first).to_contain_text("A. Semenyo")
    expect(goals.first).to_contain_text("88'")
    expect(page.locator("body")).to_have_attribute("data-seq", "2")
    assert gameday(page, "g.lastSeq") == 2
    assert gameday(page, "g.receipts.at(-1).seq") == 2
    assert gameday(page, "g.receipts.at(-1).received_at_ms") >= gameday(page, "g.lastUpdateAt")
    expect(part(page, "score-region")).to_have_attribute("aria-live", "polite")
    expect(page).to_have_title("GHA 1\N{EN DASH}0 PAN \N{MIDDLE DOT} Live 88'")
    page.screenshot(path=tmp_path / "scoreboard.png")


def test_the_provisional_pulse_shows_until_the_goal_is_confirmed(
    page: Page, edge: ScriptedEdge, match: MatchScript
) -> None:
    edge.publish(match.kickoff())
    open_board(page, edge)
    pulse = part(page, "provisional-pulse")
    expect(pulse).to_be_hidden()

    edge.publish(match.goal("PAN", "C. Waterman", 12))
    expect(pulse).to_be_visible()
    dot = pulse.locator(".provisional-dot")
    assert dot.evaluate("node => getComputedStyle(node).animationName") == "pulse"
    expect(part(page, "goal-list")).to_contain_text("Provisional")

    edge.publish(match.confirm(match.events[-1].event_id, 13))
    expect(pulse).to_be_hidden()
    expect(part(page, "goal-list")).not_to_contain_text("Provisional")
    expect(part(page, "score-away")).to_have_text("1")


def test_a_goal_under_review_shows_a_banner_and_an_overturn_takes_it_back(
    page: Page, edge: ScriptedEdge, match: MatchScript
) -> None:
    edge.publish(match.kickoff())
    edge.publish(match.goal("PAN", "J. Fajardo", 30))
    open_board(page, edge)
    banner = part(page, "review-banner")
    edge.publish(match.goal("GHA", "M. Kudus", 61))
    expect(part(page, "score-home")).to_have_text("1")
    expect(banner).to_be_hidden()

    edge.publish(match.var_review(match.last_id(), 62))
    expect(banner).to_be_visible()
    expect(banner).to_have_text("Goal under review")
    expect(part(page, "goal-list")).to_contain_text("Under review")
    expect(part(page, "score-home")).to_have_text("1")

    edge.publish(match.overturn(match.events[-2].event_id, 64))
    expect(banner).to_be_hidden()
    expect(part(page, "score-home")).to_have_text("0")
    expect(part(page, "score-away")).to_have_text("1")
    expect(part(page, "goal-list").get_by_test_id("goal")).to_have_count(1)
    expect(part(page, "goal-list")).not_to_contain_text("M. Kudus")


def test_the_delayed_badge_follows_feed_frames_and_delayed_states(
    page: Page, edge: ScriptedEdge, match: MatchScript
) -> None:
    edge.publish(match.kickoff())
    open_board(page, edge)
    badge = part(page, "delayed-badge")
    expect(badge).to_be_hidden()

    edge.send_feed(match.match_id, feed="fallback", delayed=True)
    expect(badge).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-feed", "fallback")
    edge.send_feed(match.match_id, feed="primary", delayed=False)
    expect(badge).to_be_hidden()

    match.feed, match.delayed = "fallback", True
    edge.publish(match.goal("GHA", "I. Williams", 20))
    expect(badge).to_be_visible()
    match.feed, match.delayed = "primary", False
    edge.publish(match.add("yellow_card", team="PAN", minute=25))
    expect(badge).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-feed", "primary")


def test_a_repeated_or_older_seq_is_ignored(
    page: Page, edge: ScriptedEdge, match: MatchScript
) -> None:
    kickoff = match.kickoff()
    edge.publish(kickoff)
    open_board(page, edge)
    goal = match.goal("GHA", "A. Semenyo", 9)
    edge.publish(goal)
    expect(part(page, "score-home")).to_have_text("1")
    ignored = gameday(page, "g.ignored")

    edge.send_score({**goal, "score": {"GHA": 5, "PAN": 5}})
    edge.send_score(kickoff)
    edge.publish(match.goal("PAN", "E. Fariña", 40))
    expect(part(page, "score-away")).to_have_text("1")
    expect(part(page, "score-home")).to_have_text("1")
    assert gameday(page, "g.ignored") == ignored + 2
    seqs = gameday(page, "g.receipts.map(r => r.seq)")
    assert seqs == sorted(set(seqs))
    assert seqs[-1] == 3
