"""Scripted matches: YAML files of timed entries, turned into events and played at a speed.

A script (`pipeline/feed/scripts/NAME.yaml`):

    match_id: gha-pan            # HOME-AWAY team codes
    title: Ghana v Panama        # optional
    events:
      - {at: "17:30", type: goal, team: GHA, player: M. Kudus, label: kudus}
      - {at: "18:05", type: var_review, ref: kudus}

`at` is the match clock "MM:SS" (non-decreasing); `type` a DESIGN.md event type; `team`
(needed by goals, cards, substitutions), `player` and `minute` (default: the whole minutes
of `at`) are optional; `ref` names the `label` of an earlier goal entry and is required by
var_review, goal_confirmed and goal_overturned. A bad script raises ValueError naming the
file, the entry (1-based, as its seq) and the field.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol, cast

import httpx
import yaml

from pipeline.model import (
    EVENT_TYPES,
    MAX_TEXT,
    NEEDS_TEAM,
    SCORING,
    EventType,
    InvalidEvent,
    MatchEvent,
    format_time,
    teams_of,
)

SCRIPTS_DIR: Final = Path(__file__).with_name("scripts")
NEEDS_GOAL_REF: Final = frozenset({"var_review", "goal_confirmed", "goal_overturned"})
ENTRY_KEYS: Final = frozenset({"at", "type", "team", "player", "minute", "ref", "label"})
SCRIPT_KEYS: Final = frozenset({"match_id", "title", "events"})
_CLOCK: Final = re.compile(r"([0-9]{1,3}):([0-5][0-9])")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptEntry:
    """One scripted event: when on the match clock, and what happens."""

    at_s: int
    type: EventType
    minute: int
    team: str | None = None
    player: str | None = None
    ref: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    match_id: str
    entries: tuple[ScriptEntry, ...]
    title: str = ""
    source: str = ""

    @property
    def duration_s(self) -> int:
        """Match-clock seconds from the first entry to the last."""
        return self.entries[-1].at_s if self.entries else 0

    def to_events(self, now: datetime, run_id: str, *, speed: float = 1.0) -> list[MatchEvent]:
        """The events, seq 1..n, as if kickoff were at `now` and the clock ran `speed` times
        faster than real time; event ids are `{match_id}-{run_id}-{seq}` (unique per run)."""
        ids = {
            e.label: self._event_id(run_id, seq)
            for seq, e in enumerate(self.entries, 1)
            if e.label is not None
        }
        events = []
        for seq, entry in enumerate(self.entries, 1):
            occurred = now + timedelta(seconds=entry.at_s / speed)
            packet = {
                "event_id": self._event_id(run_id, seq),
                "match_id": self.match_id,
                "seq": seq,
                "type": entry.type,
                "team": entry.team,
                "player": entry.player,
                "minute": entry.minute,
                "occurred_at": format_time(occurred),
                "ref_event_id": ids[entry.ref] if entry.ref is not None else None,
            }
            events.append(MatchEvent.parse(packet, now=occurred))
        return events

    def _event_id(self, run_id: str, seq: int) -> str:
        return f"{self.match_id}-{run_id}-{seq}"


def available_scripts() -> list[str]:
    """Names of the scripts shipped in pipeline/feed/scripts/."""
    return sorted(path.stem for path in SCRIPTS_DIR.glob("*.yaml"))


def load_script(name_or_path: str | Path) -> Script:
    """A shipped script by name (`gha-pan`) or any script file by path, validated."""
    path = _locate(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read script ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: cannot read script (not UTF-8: byte {exc.start})") from None
    except RecursionError:
        raise ValueError(f"{path}: cannot read script (it nests too deeply)") from None
    return parse_script(raw, source=str(path))


def _locate(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        return Path(name_or_path)
    path = SCRIPTS_DIR / f"{text}.yaml"
    if not path.is_file():
        known = ", ".join(available_scripts()) or "none"
        raise ValueError(f"no script named {text!r} (available: {known})")
    return path


def parse_script(raw: Any, *, source: str = "<script>") -> Script:
    """Validate a script's parsed YAML; errors name `source`, the entry and the field."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{source}: a script is a mapping with match_id and events")
    unknown = sorted(set(map(str, raw)) - SCRIPT_KEYS)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {', '.join(unknown)}")
    match_id = raw.get("match_id")
    try:
        teams = teams_of(match_id if isinstance(match_id, str) else "")
    except InvalidEvent:
        raise ValueError(f"{source}: field 'match_id': {match_id!r} is not HOME-AWAY") from None
    items = raw.get("events")
    if not isinstance(items, list) or not items:
        raise ValueError(f"{source}: field 'events' must be a non-empty list of entries")
    entries: list[ScriptEntry] = []
    for index, item in enumerate(items, 1):
        try:
            entries.append(_entry(item, teams, entries))
        except _FieldError as exc:
            raise ValueError(f"{source}: entry {index}{exc.where}: {exc}") from None
    title = raw.get("title", "")
    return Script(
        match_id=cast(str, match_id), entries=tuple(entries), title=str(title), source=source
    )


class _FieldError(ValueError):
    """A problem with one field of one entry; the caller adds the file and entry number."""

    def __init__(self, field: str | None, message: str, at: str | None = None) -> None:
        super().__init__(f"field {field!r}: {message}" if field else message)
        self.where = f" (at {at})" if at else ""


def _entry(item: Any, teams: tuple[str, str], earlier: list[ScriptEntry]) -> ScriptEntry:
    if not isinstance(item, Mapping):
        raise _FieldError(None, "an entry is a mapping such as {at: '12:30', type: goal}")
    unknown = sorted(set(map(str, item)) - ENTRY_KEYS)
    if unknown:
        raise _FieldError(unknown[0], f"unknown field (known: {', '.join(sorted(ENTRY_KEYS))})")
    at = item.get("at")
    at_s = _clock(at, earlier)
    where = str(at)
    if item.get("type") not in EVENT_TYPES:
        raise _FieldError(
            "type", f"{item.get('type')!r} is not one of {sorted(EVENT_TYPES)}", where
        )
    kind = cast(EventType, item["type"])
    team = _team(item.get("team"), kind, teams, where)
    ref = _ref(item.get("ref"), kind, earlier, where)
    label = _label(item.get("label"), earlier, where)
    return ScriptEntry(
        at_s=at_s,
        type=kind,
        minute=_minute(item.get("minute", at_s // 60), where),
        team=team,
        player=_text("player", item.get("player"), where),
        ref=ref,
        label=label,
    )


def _clock(at: Any, earlier: list[ScriptEntry]) -> int:
    found = _CLOCK.fullmatch(at) if isinstance(at, str) else None
    if found is None:
        raise _FieldError("at", f"{at!r} is not a quoted match clock 'MM:SS'")
    at_s = int(found.group(1)) * 60 + int(found.group(2))
    if earlier and at_s < earlier[-1].at_s:
        raise _FieldError("at", "goes backwards: entries must be in match-clock order", at)
    return at_s


def _team(team: Any, kind: str, teams: tuple[str, str], where: str) -> str | None:
    if team is None:
        if kind in NEEDS_TEAM:
            raise _FieldError("team", f"a {kind} needs a team ({' or '.join(teams)})", where)
        return None
    if team not in teams:
        raise _FieldError("team", f"{team!r} does not play here ({' or '.join(teams)})", where)
    return cast(str, team)


def _ref(ref: Any, kind: str, earlier: list[ScriptEntry], where: str) -> str | None:
    if ref is None:
        if kind in NEEDS_GOAL_REF:
            raise _FieldError("ref", f"a {kind} needs ref: the label of an earlier goal", where)
        return None
    if kind not in NEEDS_GOAL_REF:
        raise _FieldError("ref", f"a {kind} does not refer to a goal", where)
    goals = {e.label for e in earlier if e.type in SCORING and e.label is not None}
    if ref not in goals:
        raise _FieldError("ref", f"no earlier goal is labelled {ref!r}", where)
    return cast(str, ref)


def _label(label: Any, earlier: list[ScriptEntry], where: str) -> str | None:
    if label is None:
        return None
    text = _text("label", label, where)
    if any(e.label == text for e in earlier):
        raise _FieldError("label", f"{text!r} is already used by an earlier entry", where)
    return text


def _minute(minute: Any, where: str) -> int:
    if not isinstance(minute, int) or isinstance(minute, bool) or not 0 <= minute <= 200:
        raise _FieldError("minute", f"must be an integer 0-200, got {minute!r}", where)
    return minute


def _text(field: str, value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise _FieldError(field, f"must be a non-empty string of at most {MAX_TEXT}", where)
    if any(ord(c) < 32 for c in value):
        raise _FieldError(field, "must not contain control characters", where)
    return value


# --- playing a script against the feed control ----------------------------------------


class PlaybackError(RuntimeError):
    """The feed control refused an event of a script being played."""


class Clock(Protocol):
    """Time for `play()`: a monotonic clock to schedule by, a UTC clock to stamp events."""

    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Final = SystemClock()


@dataclass
class Stutter:
    """A vendor that re-sends and reorders. While `active`, an event is held back and sent
    after the next one with probability `swap_ratio`, and sent twice with probability
    `duplicate_ratio`. A drill's duplicate-feed fault switches it on and off."""

    duplicate_ratio: float = 0.0
    swap_ratio: float = 0.0
    active: bool = False
    seed: int = 7

    def __post_init__(self) -> None:
        for name in ("duplicate_ratio", "swap_ratio"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        self.rng = random.Random(self.seed)  # noqa: S311 - a simulation, not crypto
        self.duplicated = self.swapped = 0

    def hold(self) -> bool:
        held = self.active and self.rng.random() < self.swap_ratio
        self.swapped += held
        return held

    def repeat(self) -> bool:
        repeated = self.active and self.rng.random() < self.duplicate_ratio
        self.duplicated += repeated
        return repeated


async def play(
    script: Script,
    *,
    control_url: str,
    token: str,
    speed: float,
    run_id: str | None = None,
    on_event: Callable[[MatchEvent], None] | None = None,
    clock: Clock = SYSTEM_CLOCK,
    client: httpx.AsyncClient | None = None,
    stutter: Stutter | None = None,
) -> list[MatchEvent]:
    """POST each event of `script` to the feed control at its time on the match clock.

    `speed` 60 plays one match minute per real second. Each event's `occurred_at` is the
    real UTC time it is posted, so latency measured from it downstream is real. Returns
    the events of the match, in seq order. Raises PlaybackError if the control does not
    accept one. With a `stutter`, the vendor re-sends and reorders while it is active.
    """
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    run_id = run_id or uuid.uuid4().hex[:8]
    planned = script.to_events(clock.now(), run_id, speed=speed)
    url = f"{control_url.rstrip('/')}/v1/matches/{script.match_id}/events"
    headers = {"Authorization": f"Bearer {token}"}
    owned = client is None
    http = httpx.AsyncClient(timeout=10.0) if client is None else client
    sent: list[MatchEvent] = []
    held: MatchEvent | None = None
    async with http if owned else contextlib.nullcontext(http):
        start = clock.monotonic()
        for i, (entry, event) in enumerate(zip(script.entries, planned, strict=True)):
            await clock.sleep(max(0.0, start + entry.at_s / speed - clock.monotonic()))
            stamped = replace(event, occurred_at=format_time(clock.now()))
            sent.append(stamped)
            if on_event is not None:
                on_event(stamped)
            last = i == len(planned) - 1
            if held is None and stutter is not None and not last and stutter.hold():
                held = stamped  # goes out after the next event
                continue
            batch = [stamped] if held is None else [stamped, held]
            held = None
            if stutter is not None and stutter.repeat():
                batch.append(stamped)
            await _post(http, url, headers, batch)
    return sent


async def _post(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], events: list[MatchEvent]
) -> None:
    seqs = ", ".join(str(e.seq) for e in events)
    response = await http.post(url, json=[e.to_json() for e in events], headers=headers)
    if response.status_code != 202:
        raise PlaybackError(
            f"feed control answered HTTP {response.status_code} to seq {seqs}: "
            f"{response.text[:500]}"
        )
    if response.json().get("valid") != len(events):
        raise PlaybackError(f"feed control rejected seq {seqs}: {response.text[:500]}")
