"""The dashboards against the real stack: after a match, every panel query returns data.

Grafana cannot run here, so each panel's query goes to the stack's Prometheus as Grafana
would send it. A match is played through the real pipeline to fans in every region first,
so the histograms, counters and per-region series exist.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaos.fans import Fan, watch
from dashboards import (
    Dashboard,
    Panel,
    PanelResult,
    Query,
    Row,
    check,
    check_command,
    render_table,
)
from pipeline.feed.script import load_script, play

SPEED = 3000.0  # the whole scripted match in about two seconds
SCRAPED_WITHIN_S = 30.0
"""Prometheus scrapes every second; allow for a loaded machine, no more."""
FAULTY_FEED_PANELS = ("Rejected packets by reason", "Duplicates dropped")


def _token(endpoints: dict[str, Any]) -> str:
    return Path(endpoints["admin_token_file"]).read_text().strip()


async def _until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s}s waiting for {what}"
        await asyncio.sleep(0.05)


async def _match_with_fans(endpoints: dict[str, Any]) -> None:
    """Two fans per region watch a whole match, ask for its snapshot, then leave."""
    match_id = f"gha-pan-{uuid.uuid4().hex[:10]}"
    fans = [
        Fan(url, match_id, region=region, fan_id=f"dash-{region}-{i}")
        for region, url in endpoints["edges"].items()
        for i in range(2)
    ]
    stop = asyncio.Event()
    watching = asyncio.create_task(watch(fans, stop))
    try:
        await _until(lambda: all(f.connected.is_set() for f in fans), 10, "fans to connect")
        script = replace(load_script("gha-pan"), match_id=match_id)
        events = await play(
            script, control_url=endpoints["feed_control"], token=_token(endpoints), speed=SPEED
        )
        last = max(e.seq for e in events)
        await _until(lambda: all(f.history.last_seq == last for f in fans), 30, f"seq {last}")
        async with httpx.AsyncClient(timeout=5) as client:
            for edge in endpoints["edges"].values():  # as the scoreboard page does on load
                response = await client.get(f"{edge}/v1/matches/{match_id}")
                assert response.status_code == 200, response.text
    finally:
        stop.set()
        await watching


def _faulty_feed(endpoints: dict[str, Any]) -> None:
    """A vendor re-sending an event and sending a packet that is not one."""
    match_id = f"gha-pan-{uuid.uuid4().hex[:10]}"
    script = replace(load_script("gha-pan"), match_id=match_id)
    first = script.to_events(datetime.now(UTC), uuid.uuid4().hex[:6], speed=SPEED)[0]
    body = b"\n".join([first.encode(), first.encode(), b"{this is not json"]) + b"\n"
    response = httpx.post(
        f"{endpoints['feed_control']}/v1/matches/{match_id}/events",
        content=body,
        headers={
            "Authorization": f"Bearer {_token(endpoints)}",
            "Content-Type": "application/x-ndjson",
        },
        timeout=10,
    )
    assert response.status_code == 202, response.text


def _ready(results: list[PanelResult]) -> bool:
    faulty = [r for r in results if r.panel in FAULTY_FEED_PANELS]
    return not any(r.failed for r in results) and all(r.status == "ok" for r in faulty)


@pytest.fixture(scope="module")
def results(endpoints: dict[str, Any]) -> list[PanelResult]:
    """Check results once the traffic above has been scraped (or the wait ran out)."""
    asyncio.run(_match_with_fans(endpoints))
    _faulty_feed(endpoints)
    deadline = time.monotonic() + SCRAPED_WITHIN_S
    found = check(endpoints["prometheus"])
    while not _ready(found) and time.monotonic() < deadline:
        time.sleep(0.5)
        found = check(endpoints["prometheus"])
    return found


def test_every_panel_query_returns_data_after_a_match(results: list[PanelResult]) -> None:
    assert results
    failed = [r for r in results if r.failed]
    assert not failed, render_table(results)
    assert all(r.status == "ok" for r in results if not r.allowed_empty)


def test_panels_for_a_faulty_feed_show_the_duplicate_and_the_invalid_packet(
    results: list[PanelResult],
) -> None:
    faulty = {r.panel: r.status for r in results if r.panel in FAULTY_FEED_PANELS}
    assert faulty == dict.fromkeys(FAULTY_FEED_PANELS, "ok"), render_table(results)


def test_only_targets_that_need_a_fault_or_an_alert_may_be_empty(
    results: list[PanelResult],
) -> None:
    latency = [r for r in results if "gameday_event_latency_seconds" in r.expr]
    assert latency
    assert not any(r.allowed_empty for r in latency)
    assert all(r.status == "ok" for r in latency)
    by_panel = {r.panel for r in results if not r.allowed_empty}
    assert {"Snapshot requests by result", "Disconnects by reason", "Scrape targets up"} <= by_panel


def test_a_broken_expression_is_an_error_with_prometheus_own_reason(
    endpoints: dict[str, Any],
) -> None:
    panel = Panel(
        "Broken on purpose",
        "A panel whose queries are wrong in two different ways.",
        "short",
        (
            Query("sum(rate(gameday_sse_frames_total[1m])"),
            Query('gameday_sse_connections{region="atlantis"}'),
        ),
    )
    board = Dashboard("broken", "broken", "", (Row("r", (panel,)),))

    error, empty = check(endpoints["prometheus"], [board])

    assert (error.status, error.failed) == ("error", True)
    assert error.detail.startswith("bad_data:")
    assert "parse error" in error.detail
    assert (empty.status, empty.detail, empty.failed) == ("empty", "no series", True)


def test_check_command_prints_json_and_exits_0_on_a_healthy_stack(
    endpoints: dict[str, Any], results: list[PanelResult]
) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = check_command(endpoints["prometheus"], json_output=True, stdout=stdout, stderr=stderr)
    document = json.loads(stdout.getvalue())
    assert code == 0, stdout.getvalue()
    assert document["passed"] is True
    assert len(document["targets"]) == len(results)
