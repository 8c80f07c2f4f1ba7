"""fold() and the sequencer: what fans see is the fold of the source, however it arrives."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.model import InvalidEvent, MatchEvent, ScoreState, fold
from pipeline.sequencer import Sequencer

T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
MATCH = "gha-pan"


def ev(
    seq: int, kind: str, team: str | None = None, ref: str | None = None, minute: int | None = None
) -> MatchEvent:
    return MatchEvent(
        event_id=f"e{seq}",
        match_id=MATCH,
        seq=seq,
        type=kind,  # type: ignore[arg-type]
        occurred_at=(T0 + timedelta(seconds=seq)).isoformat().replace("+00:00", "Z"),
        team=team,
        player="A. Semenyo" if team else None,
        minute=minute,
        ref_event_id=ref,
    )


def test_a_goal_counts_at_once_and_stays_provisional_until_confirmed() -> None:
    state = fold([ev(1, "kickoff", minute=0), ev(2, "goal", "GHA", minute=23)], MATCH)
    assert state.score == {"GHA": 1, "PAN": 0}
    assert state.provisional
    assert not state.under_review
    state = state.apply(ev(3, "var_review", ref="e2"))
    assert state.under_review
    assert state.provisional
    state = state.apply(ev(4, "goal_confirmed", ref="e2"))
    assert state.score == {"GHA": 1, "PAN": 0}
    assert not state.provisional
    assert not state.under_review


def test_an_overturned_goal_leaves_the_score() -> None:
    state = fold(
        [
            ev(1, "kickoff"),
            ev(2, "penalty_goal", "PAN"),
            ev(3, "var_review", ref="e2"),
            ev(4, "goal_overturned", ref="e2"),
        ],
        MATCH,
    )
    assert state.score == {"GHA": 0, "PAN": 0}
    assert not state.provisional
    assert not state.under_review
    assert state.goals == ()


def test_an_own_goal_counts_for_the_team_named() -> None:
    assert fold([ev(1, "kickoff"), ev(2, "own_goal", "GHA")], MATCH).score == {"GHA": 1, "PAN": 0}


def test_status_follows_kickoff_half_time_and_full_time() -> None:
    events = [
        ev(1, "kickoff", minute=0),
        ev(2, "half_time", minute=45),
        ev(3, "kickoff", minute=46),
        ev(4, "full_time", minute=94),
    ]
    statuses = []
    state = ScoreState.new(MATCH)
    for e in events:
        state = state.apply(e)
        statuses.append(state.status)
    assert statuses == ["live", "half_time", "live", "full_time"]
    assert state.kickoff_at == events[0].occurred_at
    assert state.minute == 94


def test_fold_refuses_a_history_with_a_hole() -> None:
    with pytest.raises(ValueError, match="seq 2 is missing"):
        fold([ev(1, "kickoff"), ev(3, "goal", "GHA")], MATCH)


# --- parsing vendor packets ---------------------------------------------------------------

GOOD = {
    "event_id": "x1",
    "match_id": MATCH,
    "seq": 17,
    "type": "goal",
    "team": "GHA",
    "player": "A. Semenyo",
    "minute": 88,
    "occurred_at": "2026-12-04T15:02:11.123Z",
    "ref_event_id": None,
}


def test_a_valid_packet_parses_and_round_trips() -> None:
    event = MatchEvent.parse(json.dumps(GOOD).encode(), now=T0)
    assert event.to_json() == GOOD
    assert MatchEvent.parse(event.encode(), now=T0) == event


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (b"{not json", "not_json"),
        (b"\xff\xfe{}", "bad_utf8"),
        (b"[1, 2]", "not_object"),
        (b"[" * 5_000, "too_deep"),
        (b"x" * 20_000, "oversized"),
        (json.dumps({**GOOD, "type": "corner"}).encode(), "unknown_type"),
        (json.dumps({**GOOD, "seq": "17"}).encode(), "bad_seq"),
        (json.dumps({**GOOD, "seq": -1}).encode(), "bad_seq"),
        (json.dumps({**GOOD, "seq": True}).encode(), "bad_seq"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "event_id"}).encode(), "missing_field"),
        (json.dumps({**GOOD, "team": None}).encode(), "missing_field"),
        (json.dumps({**GOOD, "team": "BRA"}).encode(), "unknown_team"),
        (json.dumps({**GOOD, "match_id": "Ghana v Panama"}).encode(), "bad_match_id"),
        (json.dumps({**GOOD, "occurred_at": "yesterday"}).encode(), "bad_timestamp"),
        (json.dumps({**GOOD, "occurred_at": "2026-12-04T15:02:11"}).encode(), "bad_timestamp"),
        (json.dumps({**GOOD, "occurred_at": "2027-01-01T00:00:00Z"}).encode(), "future_timestamp"),
        (json.dumps({**GOOD, "minute": 1e9}).encode(), "bad_minute"),
        (json.dumps({**GOOD, "player": {"name": "x"}}).encode(), "wrong_type"),
        (json.dumps({**GOOD, "player": "x\u0000y"}).encode(), "wrong_type"),
        (json.dumps({**GOOD, "extra": 1}).encode(), "unknown_field"),
        (json.dumps({**GOOD, "type": "goal_confirmed", "team": None}).encode(), "missing_field"),
        (b'{"seq": NaN}', "not_json"),
    ],
)
def test_each_kind_of_bad_packet_is_rejected_with_its_reason(packet: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as error:
        MatchEvent.parse(packet, now=T0)
    assert error.value.reason == reason
    assert str(error.value)


def test_markup_in_a_player_name_is_kept_as_text() -> None:
    event = MatchEvent.parse({**GOOD, "player": "<img src=x onerror=alert(1)>"}, now=T0)
    assert event.player == "<img src=x onerror=alert(1)>"


# --- any accepted delivery order gives the same state ------------------------------------


@st.composite
def matches(draw: st.DrawFn) -> list[MatchEvent]:
    """A plausible match: kickoff, then goals, cards and VAR decisions about real goals."""
    events = [ev(1, "kickoff", minute=0)]
    open_goals: list[str] = []
    for _ in range(draw(st.integers(0, 30))):
        seq = len(events) + 1
        kind = draw(
            st.sampled_from(
                [
                    "goal",
                    "own_goal",
                    "penalty_goal",
                    "yellow_card",
                    "substitution",
                    "var_review",
                    "goal_confirmed",
                    "goal_overturned",
                    "half_time",
                    "kickoff",
                ]
            )
        )
        team = draw(st.sampled_from(["GHA", "PAN"]))
        if kind in ("var_review", "goal_confirmed", "goal_overturned"):
            if not open_goals:
                continue
            ref = draw(st.sampled_from(open_goals))
            if kind != "var_review":
                open_goals.remove(ref)
            events.append(ev(seq, kind, ref=ref))
        elif kind in ("goal", "own_goal", "penalty_goal"):
            events.append(ev(seq, kind, team))
            open_goals.append(f"e{seq}")
        elif kind in ("yellow_card", "substitution"):
            events.append(ev(seq, kind, team))
        else:
            events.append(ev(seq, kind))
    events.append(ev(len(events) + 1, "full_time", minute=90))
    return events


@settings(max_examples=200, deadline=None)
@given(source=matches(), seed=st.integers(0, 2**32 - 1), dup_rate=st.floats(0, 0.5))
def test_shuffled_duplicated_delivery_through_the_sequencer_folds_to_the_source(
    source: list[MatchEvent],
    seed: int,
    dup_rate: float,
) -> None:
    rng = random.Random(seed)
    delivered = source + [e for e in source if rng.random() < dup_rate]
    rng.shuffle(delivered)
    sequencer: Sequencer[MatchEvent] = Sequencer()
    state = ScoreState.new(MATCH)
    applied = []
    for event in delivered:
        for ready in sequencer.offer(event).ready:
            state = state.apply(ready)
            applied.append(ready.seq)
    assert applied == list(range(1, len(source) + 1))
    assert state == fold(source, MATCH)
    assert sequencer.held == 0


def test_the_sequencer_names_what_it_drops_and_what_is_missing() -> None:
    s: Sequencer[MatchEvent] = Sequencer(last_seq=4)
    assert s.offer(ev(3, "kickoff")).dropped == "stale"
    assert s.offer(ev(7, "kickoff")).ready == []
    assert s.offer(ev(7, "kickoff")).dropped == "duplicate"
    assert s.missing() == range(5, 7)
    assert [e.seq for e in s.offer(ev(5, "kickoff")).ready] == [5]
    assert [e.seq for e in s.offer(ev(6, "kickoff")).ready] == [6, 7]
    assert s.missing() is None


def test_the_sequencer_bounds_what_it_holds_behind_a_gap() -> None:
    s: Sequencer[MatchEvent] = Sequencer(max_held=2)
    assert s.offer(ev(3, "kickoff")).dropped is None
    assert s.offer(ev(4, "kickoff")).dropped is None
    assert s.offer(ev(5, "kickoff")).dropped == "overflow"
    assert [e.seq for e in s.offer(ev(1, "kickoff")).ready] == [1]  # the next one still fits


def test_skip_to_releases_what_waited_behind_a_repaired_gap() -> None:
    s: Sequencer[MatchEvent] = Sequencer()
    s.offer(ev(4, "kickoff"))
    s.offer(ev(2, "kickoff"))
    assert [e.seq for e in s.skip_to(3)] == [4]
    assert s.last_seq == 4
