"""Hostile text reaching the page: it is shown as text and never runs, even with the
Content-Security-Policy taken away, because the page builds its DOM with textContent
only. A positive control proves the same markup would have run had it been parsed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import Browser, Dialog, Page, Route, expect
from scoreboard_pages import open_board, part, wait_until
from scoreboard_states import MatchScript
from scripted_edge import ScriptedEdge

XSS = {
    "img": "<img src=x onerror=\"window.__xss='img'\">",
    "script": "<script>window.__xss='script'</script>",
    "svg": "<svg onload=\"window.__xss='svg'\"></svg>",
    "iframe": "<iframe srcdoc=\"<script>parent.__xss='iframe'</script>\"></iframe>",
    "attribute": '" onmouseover="window.__xss=\'attr\'" x="',
    "entity": "&lt;b&gt;&amp;",
}
ELEMENTS = "img, svg, iframe, object, embed, b, [onerror], [onload], [onmouseover]"


CSP_META = re.compile(r"<meta http-equiv=\"Content-Security-Policy\"[^>]*>", re.IGNORECASE)


def without_csp(route: Route) -> None:
    """Serve the page without its Content-Security-Policy (header and meta tag): only the
    page's own care is left."""
    response = route.fetch()
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-security-policy"}
    body = response.body()
    if "text/html" in headers.get("content-type", ""):
        body = CSP_META.sub("", body.decode()).encode()
        headers.pop("content-length", None)
    route.fulfill(response=response, headers=headers, body=body)


@pytest.fixture
def bare_page(browser: Browser) -> Iterator[Page]:
    """A page served without CSP (and without the service worker, so every request goes
    through the route); fails the test on any page error or dialog."""
    context = browser.new_context(service_workers="block")
    page = context.new_page()
    errors: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        errors.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("pageerror", lambda error: errors.append(f"{error.name}: {error.message}"))
    page.on("dialog", on_dialog)
    page.route(lambda url: not urlsplit(url).path.startswith("/v1/"), without_csp)
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"


def test_markup_in_every_field_the_page_shows_stays_text_without_csp(
    bare_page: Page, edge: ScriptedEdge, match: MatchScript
) -> None:
    page = bare_page
    edge.publish(match.kickoff())
    for minute, name in enumerate(XSS.values(), start=3):
        state = match.goal("GHA", name, minute)
    edge.publish(state)
    open_board(page, edge)
    assert page.evaluate("document.querySelector('meta[http-equiv]')") is None
    expect(part(page, "goal-list").locator(".goal-player")).to_have_text(list(XSS.values()))

    # A state whose team names and status carry markup too (the edge would never send
    # one; the page must not care).
    hostile = {
        **match.state(),
        "seq": state["seq"] + 1,
        "home": XSS["img"],
        "away": XSS["script"],
        "status": XSS["svg"],
        "minute": XSS["iframe"],
        "kickoff_at": XSS["attribute"],
    }
    edge.publish(hostile)
    expect(page.locator("body")).to_have_attribute("data-seq", str(hostile["seq"]))
    expect(part(page, "home")).to_have_text(XSS["img"])
    expect(part(page, "away")).to_have_text(XSS["script"])
    assert XSS["img"] in page.title()

    assert page.locator(ELEMENTS).count() == 0
    assert page.locator("script").count() == 1  # app.js, nothing else
    assert page.evaluate("window.__xss") is None

    # Positive control: the same markup parsed as HTML does run on this CSP-less page,
    # so it is the page's textContent, not a policy, that kept it inert above.
    page.evaluate("html => document.body.insertAdjacentHTML('beforeend', html)", XSS["img"])
    wait_until(lambda: page.evaluate("window.__xss") == "img", what="the control to run")


@pytest.mark.parametrize(
    "path",
    [
        "/?match=" + quote(XSS["img"]),
        "/matches/" + quote(XSS["script"], safe=""),
        "/matches/gha-pan%22%3E%3Csvg%20onload%3Dwindow.__xss%3D1%3E",
    ],
)
def test_a_hostile_match_id_in_the_address_is_not_a_match_and_runs_nothing(
    bare_page: Page, edge: ScriptedEdge, path: str
) -> None:
    bare_page.goto(f"{edge.url}{path}")
    expect(part(bare_page, "status")).to_have_text("No match selected")
    assert bare_page.locator(ELEMENTS).count() == 0
    assert bare_page.evaluate("window.__xss") is None
    assert edge.counters.stream_requests == 0
