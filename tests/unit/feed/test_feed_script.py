"""Scripted matches: the loader's checks, the shipped gha-pan story, and playing it for real."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from pipeline.feed import (
    FeedConfig,
    FeedServer,
    PlaybackError,
    Stutter,
    available_scripts,
    load_script,
    play,
)
from pipeline.model import MatchEvent, fold, parse_time

HEADER = "match_id: gha-pan\nevents:\n"
KICKOFF = '  - {at: "00:00", type: kickoff}\n'
GOAL = '  - {at: "10:00", type: goal, team: GHA, player: M. Kudus, label: kudus}\n'


def test_gha_pan_ends_two_all_with_every_goal_confirmed() -> None:
    script = load_script("gha-pan")
    assert "gha-pan" in available_scripts()
    assert 25 <= len(script.entries) <= 30
    events = script.to_events(datetime.now(UTC) - timedelta(hours=3), "r1")
    state = fold(events, "gha-pan")
    assert state.score == {"GHA": 2, "PAN": 2}
    assert state.status == "full_time"
    assert not state.provisional
    assert not state.under_review
    assert [g.player for g in state.goals] == [
        "M. Kudus",
        "I. Díaz",
        "A. Carrasquilla",
        "A. Semenyo",
    ]
    types = [e.type for e in events]
    assert types.count("kickoff") == 2
    assert "goal_overturned" in types


def test_events_are_numbered_and_refs_point_at_their_goals() -> None:
    events = load_script("gha-pan").to_events(datetime(2026, 1, 1, tzinfo=UTC), "abc")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].event_id == "gha-pan-abc-1"
    goals = {e.event_id for e in events if e.type in {"goal", "penalty_goal"}}
    refs = [e.ref_event_id for e in events if e.ref_event_id is not None]
    assert refs
    assert set(refs) <= goals
    times = [parse_time(e.occurred_at) for e in events]
    assert times == sorted(times)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (KICKOFF + '  - {at: "05:00", type: corner}\n', r"entry 2 \(at 05:00\): field 'type'"),
        (KICKOFF + '  - {at: "05:00", type: goal, team: BRA}\n', "entry 2.*field 'team'"),
        (KICKOFF + '  - {at: "05:00", type: red_card}\n', "entry 2.*field 'team'.*needs"),
        (KICKOFF + GOAL + '  - {at: "11:00", type: var_review, ref: nobody}\n', "entry 3.*'ref'"),
        (KICKOFF + '  - {at: "11:00", type: goal_confirmed}\n', "entry 2.*field 'ref'"),
        (GOAL + KICKOFF, "entry 2.*field 'at'.*backwards"),
        (KICKOFF + "  - {at: 5:00, type: kickoff}\n", "entry 2: field 'at'"),
        (KICKOFF + '  - {at: "5:70", type: kickoff}\n', "entry 2: field 'at'"),
        (KICKOFF + '  - {at: "05:00", type: kickoff, minute: -1}\n', "entry 2.*field 'minute'"),
        (KICKOFF + '  - {at: "05:00", type: kickoff, colour: red}\n', "entry 2.*'colour'"),
        (GOAL + GOAL, "entry 2.*field 'label'.*already used"),
    ],
)
def test_bad_scripts_are_refused_naming_file_entry_and_field(
    tmp_path: Path, entries: str, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HEADER + entries)
    with pytest.raises(ValueError, match=expected) as raised:
        load_script(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("match_id: Ghana v Panama\nevents:\n" + KICKOFF, "field 'match_id'"),
        ("match_id: gha-pan\nevents: []\n", "field 'events'"),
        ("match_id: gha-pan\nvenue: Accra\nevents:\n" + KICKOFF, "unknown key.*venue"),
        ("[just, a, list]\n", "mapping"),
        ("match_id: [\n", "not valid YAML"),
    ],
)
def test_bad_script_documents_are_refused(tmp_path: Path, document: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(document)
    with pytest.raises(ValueError, match=expected):
        load_script(path)


def test_an_unknown_script_name_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match=r"available: .*gha-pan"):
        load_script("no-such-match")


def test_play_posts_every_event_in_order_stamped_with_real_time(
    make_config: Callable[..., FeedConfig], admin_token: str
) -> None:
    script = load_script("gha-pan")
    seen: list[int] = []

    async def scenario() -> None:
        async with FeedServer(make_config()) as server, aiohttp.ClientSession() as http:
            started = datetime.now(UTC)
            sent = await play(
                script,
                control_url=server.url("control"),
                token=admin_token,
                speed=25_000,
                run_id="t1",
                on_event=lambda e: seen.append(e.seq),
            )
            finished = datetime.now(UTC)
            reply = await http.get(f"{server.url('primary')}/v1/matches/gha-pan/events")
            replayed = await reply.json()
        assert [e.seq for e in sent] == seen == list(range(1, len(script.entries) + 1))
        assert replayed == [e.to_json() for e in sent]
        times = [parse_time(e.occurred_at) for e in sent]
        assert times == sorted(times)
        assert started - timedelta(milliseconds=1) <= times[0] < times[-1] <= finished
        assert (times[-1] - times[0]).total_seconds() >= script.duration_s / 25_000 * 0.9
        assert fold(sent, "gha-pan").score == {"GHA": 2, "PAN": 2}

    asyncio.run(scenario())


def test_play_stops_with_a_clear_error_when_the_control_refuses(
    make_config: Callable[..., FeedConfig],
) -> None:
    async def scenario() -> None:
        async with FeedServer(make_config()) as server:
            with pytest.raises(PlaybackError, match="HTTP 401 to seq 1"):
                await play(
                    load_script("gha-pan"),
                    control_url=server.url("control"),
                    token="wrong",
                    speed=1000,
                )

    asyncio.run(scenario())


class FakeClock:
    """Time that passes only when play() sleeps."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.elapsed

    def now(self) -> datetime:
        return datetime.now(UTC) - timedelta(hours=1) + timedelta(seconds=self.elapsed)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += seconds


def test_play_keeps_to_the_match_clock_at_the_given_speed(
    make_config: Callable[..., FeedConfig], admin_token: str
) -> None:
    clock = FakeClock()
    script = load_script("gha-pan")

    async def scenario() -> None:
        async with FeedServer(make_config()) as server:
            await play(
                script,
                control_url=server.url("control"),
                token=admin_token,
                speed=60,
                clock=clock,
            )

    asyncio.run(scenario())
    assert clock.elapsed == pytest.approx(script.duration_s / 60)
    assert len(clock.sleeps) == len(script.entries)
    assert clock.sleeps[2] == pytest.approx((17 * 60 + 30) / 60 - (9 * 60 + 12) / 60)


def test_a_stuttering_vendor_resends_and_reorders_only_while_active(
    make_config: Callable[..., FeedConfig], admin_token: str
) -> None:
    script = load_script("gha-pan")
    stutter = Stutter(duplicate_ratio=0.3, swap_ratio=0.2, active=True)

    async def scenario() -> tuple[list[MatchEvent], list[int]]:
        async with FeedServer(make_config()) as server:
            sent = await play(
                script,
                control_url=server.url("control"),
                token=admin_token,
                speed=25_000,
                stutter=stutter,
            )
            posted = [MatchEvent.parse(p).seq for p in server.vendor.history]
        return sent, posted

    sent, posted = asyncio.run(scenario())
    assert [e.seq for e in sent] == list(range(1, len(script.entries) + 1))
    assert stutter.duplicated > 0
    assert stutter.swapped > 0
    assert len(posted) == len(sent) + stutter.duplicated
    assert posted != sorted(posted)  # some went out before the one they follow
    assert sorted(set(posted)) == [e.seq for e in sent]  # nothing lost on the way

    stutter.active = False
    before = (stutter.duplicated, stutter.swapped)
    assert not any(stutter.hold() or stutter.repeat() for _ in range(100))
    assert (stutter.duplicated, stutter.swapped) == before
