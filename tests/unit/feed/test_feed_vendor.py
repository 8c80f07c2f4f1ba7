"""Vendor: the shared record of the simulated vendors, tested without HTTP."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.feed import Vendor
from pipeline.model import InvalidEvent

NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


def event(seq: int, *, player: str = "M. Kudus", match_id: str = "gha-pan") -> bytes:
    document = {
        "event_id": f"e{seq}-{player}",
        "match_id": match_id,
        "seq": seq,
        "type": "yellow_card",
        "team": match_id[:3].upper(),
        "player": player,
        "minute": seq,
        "occurred_at": (NOW - timedelta(minutes=5)).isoformat(),
    }
    return json.dumps(document).encode()


def sample(vendor: Vendor, name: str) -> float | None:
    return vendor.metrics.registry.get_sample_value(name)


def test_a_slow_subscriber_is_disconnected_and_counted_not_buffered() -> None:
    async def scenario() -> None:
        vendor = Vendor(queue_packets=3, utc_clock=lambda: NOW)
        fast, slow = vendor.subscribe(), vendor.subscribe()
        dropped: list[bool] = []
        slow.on_drop = lambda: dropped.append(True)
        received = []
        for seq in range(1, 11):
            vendor.post("gha-pan", [event(seq)])
            received.append(await fast.next(0.1))
        assert received == [event(seq) for seq in range(1, 11)]
        assert slow.dropped
        assert slow.closed
        assert dropped == [True]
        assert slow.pending <= 1  # what it had queued was let go
        assert vendor.subscribers == 1
        assert sample(vendor, "gameday_feed_slow_subscribers_disconnected_total") == 1
        with pytest.raises(EOFError):
            await slow.next(0.1)

    asyncio.run(scenario())


def test_first_valid_event_of_a_seq_wins_and_replay_has_each_seq_once() -> None:
    vendor = Vendor(utc_clock=lambda: NOW)
    result = vendor.post(
        "gha-pan",
        [event(2, player="First"), b"{oops", event(1), event(2, player="Second"), event(3)],
    )
    assert (result.accepted, result.valid) == (5, 4)
    assert [(r.index, r.reason) for r in result.invalid] == [(1, "not_json")]
    replay = vendor.events("gha-pan")
    assert [e.seq for e in replay] == [1, 2, 3]
    assert replay[1].player == "First"
    assert [e.seq for e in vendor.events("gha-pan", after=1)] == [2, 3]
    assert vendor.matches() == {"gha-pan": 3}


def test_an_event_of_another_match_is_emitted_but_never_replayed() -> None:
    async def scenario() -> None:
        vendor = Vendor(utc_clock=lambda: NOW)
        subscription = vendor.subscribe()
        result = vendor.post("gha-pan", [event(1, match_id="bra-arg")])
        assert [r.reason for r in result.invalid] == ["wrong_match"]
        assert await subscription.next(0.1) == event(1, match_id="bra-arg")
        assert vendor.events("gha-pan") == []

    asyncio.run(scenario())


def test_posting_to_a_match_id_that_is_not_two_teams_is_refused() -> None:
    with pytest.raises(InvalidEvent):
        Vendor().post("not a match", [event(1)])


def test_silent_vendor_records_but_does_not_emit() -> None:
    async def scenario() -> None:
        vendor = Vendor(utc_clock=lambda: NOW)
        subscription = vendor.subscribe()
        assert vendor.set_mode("silent") == "silent"
        vendor.post("gha-pan", [event(1)])
        assert await subscription.next(0.05) is None
        assert sample(vendor, "gameday_feed_primary_silent") == 1
        vendor.set_mode("normal")
        vendor.post("gha-pan", [event(2)])
        assert await subscription.next(0.05) == event(2)
        assert [e.seq for e in vendor.events("gha-pan")] == [1, 2]

    asyncio.run(scenario())


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        Vendor().set_mode("loud")


def test_secondary_view_only_has_events_older_than_the_delay() -> None:
    now = [100.0]
    vendor = Vendor(clock=lambda: now[0], utc_clock=lambda: NOW)
    vendor.post("gha-pan", [event(1)])
    now[0] += 2.0
    vendor.post("gha-pan", [event(2)])
    assert [e.seq for e in vendor.events_older_than("gha-pan", 3.0)] == []
    now[0] += 1.5
    assert [e.seq for e in vendor.events_older_than("gha-pan", 3.0)] == [1]
    now[0] += 2.0
    assert [e.seq for e in vendor.events_older_than("gha-pan", 3.0)] == [1, 2]
