"""When the stream fails the page polls; offline it shows the last known score."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Page, expect
from scoreboard_pages import gameday, open_board, part, wait_until
from scoreboard_states import MatchScript
from scripted_edge import ScriptedEdge

KEPT_SEQ = """async () => {
  const cache = await caches.open("gameday-state-v1");
  const kept = await cache.match("/v1/matches/gha-pan");
  return kept ? Number(kept.headers.get("X-Gameday-Seq")) : null;
}"""


def test_a_cut_stream_falls_back_to_polling_then_resumes(
    page: Page, edge: ScriptedEdge, match: MatchScript
) -> None:
    edge.publish(match.kickoff())
    open_board(page, edge, poll_s=1)
    body = page.locator("body")

    edge.cut_streams(refuse=True)
    expect(part(page, "reconnecting")).to_be_visible()
    expect(body).to_have_attribute("data-conn", "reconnecting")
    edge.set_snapshot(match.goal("GHA", "A. Semenyo", 50))
    expect(part(page, "score-home")).to_have_text("1", timeout=4000)
    assert gameday(page, "g.receipts.at(-1).via") == "poll"
    # The browser's own retry is refused too: the EventSource is closed for good
    # and the page itself has to open a new stream.
    wait_until(lambda: edge.counters.refused_streams >= 1, what="a refused reconnect")

    edge.allow_streams()
    expect(body).to_have_attribute("data-conn", "live", timeout=5000)
    expect(part(page, "reconnecting")).to_be_hidden()
    assert "2" in edge.counters.last_event_ids  # the new stream starts after what was polled
    polls = edge.counters.snapshot_requests
    page.wait_for_timeout(2500)
    assert edge.counters.snapshot_requests == polls, "still polling with the stream open"

    edge.publish(match.goal("PAN", "C. Waterman", 55))
    expect(part(page, "score-away")).to_have_text("1", timeout=1000)
    assert gameday(page, "g.receipts.at(-1).via") == "stream"


def test_offline_reload_shows_the_last_known_score_then_reconciles(
    context: BrowserContext, page: Page, edge: ScriptedEdge, match: MatchScript
) -> None:
    edge.publish(match.kickoff())
    edge.publish(match.goal("GHA", "A. Semenyo", 88))
    open_board(page, edge)
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    wait_until(lambda: page.evaluate(KEPT_SEQ) == 2, what="the service worker to keep seq 2")
    expect(part(page, "offline-mark")).to_be_hidden()

    context.set_offline(True)
    page.reload()
    expect(part(page, "offline-mark")).to_be_visible()
    expect(part(page, "home")).to_have_text("GHA")
    expect(part(page, "score-home")).to_have_text("1")
    expect(part(page, "status")).to_have_text("Live 88'")
    expect(page.locator("body")).to_have_attribute("data-offline", "true")

    edge.publish(match.goal("PAN", "C. Waterman", 89))
    context.set_offline(False)
    expect(part(page, "score-away")).to_have_text("1", timeout=5000)
    expect(part(page, "offline-mark")).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-conn", "live")


def test_a_silent_stream_is_checked_against_the_snapshot_and_replaced(
    page: Page, edge: ScriptedEdge, match: MatchScript
) -> None:
    edge.publish(match.kickoff())
    open_board(page, edge, stale_s=1, poll_s=1)
    assert edge.counters.stream_requests == 1

    edge.set_snapshot(match.goal("PAN", "C. Waterman", 7))  # the stream stays open, but mute
    expect(part(page, "score-away")).to_have_text("1", timeout=4000)
    assert gameday(page, "g.receipts.at(-1).via") == "poll"
    wait_until(lambda: edge.counters.stream_requests >= 2, what="a new stream")
    expect(page.locator("body")).to_have_attribute("data-conn", "live")
    assert edge.counters.last_event_ids[-1] == "2"
