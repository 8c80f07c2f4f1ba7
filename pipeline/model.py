"""Match events, score state and `fold()`: the pipeline's meaning, pure and without I/O.

A match's state is the fold of its events in `seq` order, starting from `ScoreState.new()`.
Every service that holds a score (the scorekeeper, the reconciler, the delivery checker,
the fans' page) agrees with `fold()` or is wrong.

Rules (DESIGN.md):
- goal, own_goal, penalty_goal: `team` is the team whose score goes up; the goal counts
  at once and stays provisional until a goal_confirmed names it (`ref_event_id`);
- goal_overturned naming a goal removes it from the score; var_review naming a goal sets
  it under review until it is confirmed or overturned;
- kickoff makes the match live (also after half_time); half_time pauses it; full_time
  ends it.
- score_correction (a match official's, through the corrections service) sets the score:
  it adds to each team what makes the score the one it names; correction_revoked naming
  it takes that back. Later goals count on top.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, cast, get_args

EventType = Literal[
    "kickoff",
    "goal",
    "own_goal",
    "penalty_goal",
    "yellow_card",
    "red_card",
    "substitution",
    "var_review",
    "goal_confirmed",
    "goal_overturned",
    "half_time",
    "full_time",
]
EVENT_TYPES: Final = frozenset(get_args(EventType))
SCORING: Final = frozenset({"goal", "own_goal", "penalty_goal"})
NEEDS_TEAM: Final = SCORING | {"yellow_card", "red_card", "substitution"}
NEEDS_REF: Final = frozenset({"goal_confirmed", "goal_overturned"})

OfficialType = Literal["score_correction", "correction_revoked"]
OFFICIAL_TYPES: Final = frozenset(get_args(OfficialType))
"""Events only the corrections service makes (a match official's decision), never a
vendor: `parse()` refuses them (unknown_type); `parse_any()` reads them from Kafka and the
audit trail. A score_correction sets `score` ({HOME: n, AWAY: n}) with a `reason` and the
`official`; a correction_revoked names one (`ref_event_id`) and undoes it."""
OFFICIAL_FIELDS: Final = ("score", "reason", "official")
MAX_SCORE: Final = 99

Status = Literal["scheduled", "live", "half_time", "full_time"]

MATCH_ID: Final = re.compile(r"^([a-z0-9]{2,8})-([a-z0-9]{2,8})(?:-[a-z0-9]{1,16})?$")
"""A match is named by its teams' codes, home first: `gha-pan` is GHA (home) v PAN. An
optional suffix tells apart two meetings of the same teams: `gha-pan-final`."""

MAX_PACKET_BYTES: Final = 16 * 1024
"""A packet longer than this is refused before it is decoded or parsed."""
MAX_DEPTH: Final = 8
"""How deeply a packet's JSON may nest. A valid event is one flat object (depth 1); the
depth is measured on the raw bytes before parsing, so no packet reaches the parser's
recursion."""
MAX_TEXT: Final = 200
"""The longest text field (ids, team, player), in characters."""
MAX_FUTURE: Final = timedelta(minutes=5)
"""How far ahead of the receiver's clock `occurred_at` may be (vendor clock skew)."""
REASONS: Final = {
    "oversized": f"the packet is over {MAX_PACKET_BYTES} bytes, or a text over {MAX_TEXT}",
    "bad_utf8": "the packet is not valid UTF-8",
    "too_deep": f"the JSON nests deeper than {MAX_DEPTH}",
    "not_json": "the packet is not JSON (NaN and Infinity included)",
    "not_object": "the JSON is not an object",
    "unknown_field": "a field the event format does not have",
    "missing_field": "a required field is missing (or null)",
    "wrong_type": "a text field is not a string, is empty or holds control characters",
    "bad_match_id": "match_id is not HOME-AWAY team codes",
    "bad_seq": "seq is not a positive integer below 2**53",
    "unknown_type": "type is not one of the event types",
    "bad_timestamp": "occurred_at is not RFC 3339 with a zone, or out of range",
    "future_timestamp": "occurred_at is more than MAX_FUTURE ahead",
    "unknown_team": "team does not play in the match",
    "bad_minute": "minute is not an integer 0-200",
    "wrong_match": "the event names another match than the one it was posted to (vendor)",
    "internal_error": "the parser itself failed (a bug: logged with its traceback)",
}
"""Every reason a packet is refused for: the `reason` label of the rejection metrics."""
FIELDS: Final = (
    "event_id",
    "match_id",
    "seq",
    "type",
    "team",
    "player",
    "minute",
    "occurred_at",
    "ref_event_id",
)


class InvalidEvent(ValueError):
    """A packet that is not a valid match event. `reason` is a short label for metrics."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"undeclared rejection reason {reason!r}")
        super().__init__(message)
        self.reason = reason


def teams_of(match_id: str) -> tuple[str, str]:
    """(home, away) team codes of a match id, e.g. ('GHA', 'PAN') for 'gha-pan'."""
    found = MATCH_ID.match(match_id)
    if found is None:
        raise InvalidEvent("bad_match_id", f"match_id {match_id!r} is not HOME-AWAY team codes")
    return found.group(1).upper(), found.group(2).upper()


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp with a timezone, as an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no timezone")
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchEvent:
    event_id: str
    match_id: str
    seq: int
    type: EventType | OfficialType
    occurred_at: str
    team: str | None = None
    player: str | None = None
    minute: int | None = None
    ref_event_id: str | None = None
    score: tuple[int, int] | None = None
    """score_correction only: (home, away)."""
    reason: str | None = None
    official: str | None = None

    @classmethod
    def parse(
        cls, packet: bytes | str | Mapping[str, Any], *, now: datetime | None = None
    ) -> MatchEvent:
        """Validate one vendor packet. Raises InvalidEvent naming what is wrong."""
        raw = _decode(packet)
        unknown = sorted(map(str, set(raw) - set(FIELDS)))
        if unknown:
            raise InvalidEvent("unknown_field", f"unknown field(s): {', '.join(unknown)}")
        for name in ("event_id", "match_id", "seq", "type", "occurred_at"):
            if raw.get(name) is None:
                raise InvalidEvent("missing_field", f"{name} is missing")
        event_id = _required(raw, "event_id")
        match_id = _required(raw, "match_id")
        home, away = teams_of(match_id)
        seq = raw["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 < seq < 2**53:
            raise InvalidEvent("bad_seq", f"seq must be a positive integer, got {seq!r}")
        kind = raw["type"]
        if not isinstance(kind, str) or kind not in EVENT_TYPES:
            raise InvalidEvent("unknown_type", f"type {kind!r} is not one of {sorted(EVENT_TYPES)}")
        occurred_at = _required(raw, "occurred_at")
        try:
            moment = parse_time(occurred_at)
        except (ValueError, OverflowError):  # year 9999 west of UTC overflows
            raise InvalidEvent(
                "bad_timestamp",
                f"occurred_at {occurred_at!r} is not an RFC 3339 time with a zone in range",
            ) from None
        if moment > (now or datetime.now(UTC)) + MAX_FUTURE:
            raise InvalidEvent("future_timestamp", f"occurred_at {occurred_at} is in the future")
        team = _text(raw, "team")
        if kind in NEEDS_TEAM and team is None:
            raise InvalidEvent("missing_field", f"a {kind} needs a team")
        if team is not None and team not in (home, away):
            raise InvalidEvent("unknown_team", f"team {team!r} does not play in {match_id}")
        minute = raw.get("minute")
        if minute is not None and (
            not isinstance(minute, int) or isinstance(minute, bool) or not 0 <= minute <= 200
        ):
            raise InvalidEvent("bad_minute", f"minute must be an integer 0-200, got {minute!r}")
        ref = _text(raw, "ref_event_id")
        if kind in NEEDS_REF and ref is None:
            raise InvalidEvent("missing_field", f"a {kind} needs ref_event_id")
        return cls(
            event_id=event_id,
            match_id=match_id,
            seq=seq,
            type=cast(EventType, kind),
            occurred_at=format_time(moment),
            team=team,
            player=_text(raw, "player"),
            minute=minute,
            ref_event_id=ref,
        )

    def to_json(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in FIELDS}
        if self.type in OFFICIAL_TYPES:
            home, away = teams_of(self.match_id)
            score = None if self.score is None else {home: self.score[0], away: self.score[1]}
            out.update(score=score, reason=self.reason, official=self.official)
        return out

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def parse_any(
        cls, packet: bytes | str | Mapping[str, Any], *, now: datetime | None = None
    ) -> MatchEvent:
        """A vendor's event or an official's (what Kafka and the audit trail hold)."""
        raw = _decode(packet)
        if raw.get("type") not in OFFICIAL_TYPES:
            return cls.parse(raw, now=now)
        kind = cast(OfficialType, raw["type"])
        # The fields every event has are checked by parse() itself, under a vendor type
        # with the same needs (a revocation, like goal_overturned, needs ref_event_id).
        shared = {k: v for k, v in raw.items() if k not in OFFICIAL_FIELDS}
        shared["type"] = "goal_overturned" if kind == "correction_revoked" else "kickoff"
        base = cls.parse(shared, now=now)
        home, away = teams_of(base.match_id)
        return replace(
            base,
            type=kind,
            score=_score(raw.get("score"), home, away) if kind == "score_correction" else None,
            reason=_required(raw, "reason"),
            official=_required(raw, "official"),
        )


def _decode(packet: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(packet, Mapping):
        return packet
    if isinstance(packet, str):
        packet = packet.encode("utf-8", "surrogatepass")  # a lone surrogate: bad_utf8 below
    if len(packet) > MAX_PACKET_BYTES:
        raise InvalidEvent("oversized", f"packet of {len(packet)} bytes exceeds {MAX_PACKET_BYTES}")
    try:
        text = packet.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEvent("bad_utf8", "packet is not valid UTF-8") from None
    if _nesting(packet) > MAX_DEPTH:
        raise InvalidEvent("too_deep", f"packet nests deeper than {MAX_DEPTH}")
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:  # pragma: no cover - _nesting() refuses such packets first
        raise InvalidEvent("too_deep", "packet nests too deeply") from None
    except ValueError as exc:
        raise InvalidEvent("not_json", f"packet is not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise InvalidEvent("not_object", f"packet is a JSON {type(raw).__name__}, not an object")
    return raw


def _nesting(packet: bytes) -> int:
    """The deepest nesting of JSON arrays and objects in `packet`, brackets inside strings
    not counted. Cheap for a valid event: with no more brackets than MAX_DEPTH it cannot
    nest deeper, and the bytes are not walked."""
    if packet.count(b"[") + packet.count(b"{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for byte in packet:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _score(value: object, home: str, away: str) -> tuple[int, int]:
    """{HOME: n, AWAY: n} with both teams and nothing else, 0 <= n <= MAX_SCORE."""
    if value is None:
        raise InvalidEvent("missing_field", "a score_correction needs a score")
    if not isinstance(value, dict) or set(value) != {home, away}:
        raise InvalidEvent("wrong_type", f"score must be {{{home!r}: n, {away!r}: n}}")
    goals = [value[home], value[away]]
    if any(not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_SCORE for n in goals):
        raise InvalidEvent("wrong_type", f"a score is an integer 0-{MAX_SCORE}, got {value!r}")
    return goals[0], goals[1]


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def _required(raw: Mapping[str, Any], name: str) -> str:
    value = _text(raw, name, required=True)
    if value is None:
        raise InvalidEvent("missing_field", f"{name} is missing")
    return value


def _text(raw: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidEvent("wrong_type", f"{name} must be a non-empty string, got {value!r}")
    if len(value) > MAX_TEXT:
        raise InvalidEvent("oversized", f"{name} is longer than {MAX_TEXT} characters")
    if any(ord(c) < 32 for c in value):
        raise InvalidEvent("wrong_type", f"{name} contains control characters")
    return value


@dataclass(frozen=True, slots=True)
class Goal:
    event_id: str
    team: str
    player: str | None
    minute: int | None
    provisional: bool = True
    under_review: bool = False


@dataclass(frozen=True, slots=True)
class Correction:
    """An official's score_correction as applied: what it added to each team's score
    (the score it set less the score before it), until a correction_revoked names it."""

    event_id: str
    delta: tuple[int, int]
    reason: str | None
    official: str | None
    revoked_by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreState:
    match_id: str
    home: str
    away: str
    seq: int = 0
    status: Status = "scheduled"
    minute: int | None = None
    goals: tuple[Goal, ...] = ()
    kickoff_at: str | None = None
    last_event: MatchEvent | None = None
    corrections: tuple[Correction, ...] = ()

    @classmethod
    def new(cls, match_id: str) -> ScoreState:
        home, away = teams_of(match_id)
        return cls(match_id=match_id, home=home, away=away)

    @property
    def score(self) -> dict[str, int]:
        counts = {self.home: 0, self.away: 0}
        for goal in self.goals:
            counts[goal.team] += 1
        for c in self.corrections:  # a goal overturned after a correction never goes below 0
            if c.revoked_by is None:
                counts[self.home] = max(0, counts[self.home] + c.delta[0])
                counts[self.away] = max(0, counts[self.away] + c.delta[1])
        return counts

    @property
    def provisional(self) -> bool:
        return any(goal.provisional for goal in self.goals)

    @property
    def under_review(self) -> bool:
        return any(goal.under_review for goal in self.goals)

    def apply(self, event: MatchEvent) -> ScoreState:
        """The state after `event`. The caller guarantees `event.seq == self.seq + 1`."""
        if event.match_id != self.match_id:
            raise ValueError(f"event for {event.match_id} applied to {self.match_id}")
        goals, status, kickoff_at = self.goals, self.status, self.kickoff_at
        corrections, kind = self.corrections, event.type
        if kind in SCORING and event.team is not None:
            goals = (*goals, Goal(event.event_id, event.team, event.player, event.minute))
        elif kind == "var_review":
            goals = _update(goals, event.ref_event_id, under_review=True)
        elif kind == "goal_confirmed":
            goals = _update(goals, event.ref_event_id, provisional=False, under_review=False)
        elif kind == "goal_overturned":
            goals = tuple(g for g in goals if g.event_id != event.ref_event_id)
        elif kind == "kickoff":
            status = "live" if status != "full_time" else status
            kickoff_at = kickoff_at or event.occurred_at
        elif kind == "half_time" and status == "live":
            status = "half_time"
        elif kind == "full_time":
            status = "full_time"
        elif kind in OFFICIAL_TYPES:
            corrections = self._corrected(event)
        minute = event.minute if event.minute is not None else self.minute
        return replace(
            self,
            seq=event.seq,
            status=status,
            minute=minute,
            goals=goals,
            kickoff_at=kickoff_at,
            last_event=event,
            corrections=corrections,
        )

    def _corrected(self, event: MatchEvent) -> tuple[Correction, ...]:
        if event.type == "correction_revoked":
            return tuple(
                replace(c, revoked_by=event.event_id)
                if c.event_id == event.ref_event_id and c.revoked_by is None
                else c
                for c in self.corrections
            )
        if event.score is None:
            return self.corrections
        now = self.score
        delta = (event.score[0] - now[self.home], event.score[1] - now[self.away])
        return (*self.corrections, Correction(event.event_id, delta, event.reason, event.official))

    def to_json(self) -> dict[str, Any]:
        """The state as fans receive it, less the delivery fields the pipeline adds."""
        return {
            "match_id": self.match_id,
            "seq": self.seq,
            "home": self.home,
            "away": self.away,
            "score": self.score,
            "minute": self.minute,
            "status": self.status,
            "provisional": self.provisional,
            "under_review": self.under_review,
            "kickoff_at": self.kickoff_at,
            "goals": [
                {
                    "event_id": g.event_id,
                    "team": g.team,
                    "player": g.player,
                    "minute": g.minute,
                    "provisional": g.provisional,
                    "under_review": g.under_review,
                }
                for g in self.goals
            ],
            "event": self.last_event.to_json() if self.last_event else None,
            "occurred_at": self.last_event.occurred_at if self.last_event else None,
            **({"corrections": self._corrections_json()} if self.corrections else {}),
        }

    def _corrections_json(self) -> list[dict[str, Any]]:
        """Only in states of a corrected match: fans' payloads are otherwise unchanged."""
        return [
            {
                "event_id": c.event_id,
                "delta": {self.home: c.delta[0], self.away: c.delta[1]},
                "reason": c.reason,
                "official": c.official,
                "revoked_by": c.revoked_by,
            }
            for c in self.corrections
        ]


def _update(
    goals: tuple[Goal, ...], ref: str | None, *, under_review: bool, provisional: bool | None = None
) -> tuple[Goal, ...]:
    """Mark the goal `ref` names; `provisional=None` leaves that flag as it was."""
    return tuple(
        replace(
            g,
            under_review=under_review,
            provisional=g.provisional if provisional is None else provisional,
        )
        if g.event_id == ref
        else g
        for g in goals
    )


def fold(events: Iterable[MatchEvent], match_id: str) -> ScoreState:
    """The state of `match_id` after its events, taken in seq order, each seq once.

    Duplicates of a seq beyond the first are ignored, as the pipeline ignores them.
    Gaps are not allowed: fold() is the meaning of a complete history.
    """
    state = ScoreState.new(match_id)
    seen: set[int] = set()
    for event in sorted((e for e in events if e.match_id == match_id), key=lambda e: e.seq):
        if event.seq in seen:
            continue
        seen.add(event.seq)
        if event.seq != state.seq + 1:
            raise ValueError(f"{match_id}: seq {state.seq + 1} is missing before {event.seq}")
        state = state.apply(event)
    return state
