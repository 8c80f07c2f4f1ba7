"""States as the edge sends them, made by folding real match events with pipeline.model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.model import EventType, MatchEvent, ScoreState, fold, format_time

State = dict[str, Any]


class MatchScript:
    """One match's events so far; every step returns the state a fan would receive."""

    def __init__(self, match_id: str = "gha-pan", *, start: datetime | None = None) -> None:
        self.match_id = match_id
        self.events: list[MatchEvent] = []
        self.feed = "primary"
        self.delayed = False
        self._start = start or datetime.now(UTC) - timedelta(hours=2)

    def state(self) -> State:
        folded = fold(self.events, self.match_id) if self.events else ScoreState.new(self.match_id)
        now = format_time(datetime.now(UTC))
        return {
            **folded.to_json(),
            "feed": self.feed,
            "delayed": self.delayed,
            "published_at": now,
            "traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01",
        }

    def add(
        self,
        kind: EventType,
        *,
        team: str | None = None,
        player: str | None = None,
        minute: int | None = None,
        ref: str | None = None,
    ) -> State:
        seq = len(self.events) + 1
        packet = {
            "event_id": f"{self.match_id}-e{seq}",
            "match_id": self.match_id,
            "seq": seq,
            "type": kind,
            "team": team,
            "player": player,
            "minute": minute,
            "occurred_at": format_time(self._start + timedelta(minutes=minute or 0)),
            "ref_event_id": ref,
        }
        self.events.append(MatchEvent.parse(packet))
        return self.state()

    def kickoff(self) -> State:
        return self.add("kickoff", minute=0)

    def goal(self, team: str, player: str, minute: int) -> State:
        return self.add("goal", team=team, player=player, minute=minute)

    def last_id(self) -> str:
        return self.events[-1].event_id

    def var_review(self, ref: str, minute: int) -> State:
        return self.add("var_review", ref=ref, minute=minute)

    def confirm(self, ref: str, minute: int) -> State:
        return self.add("goal_confirmed", ref=ref, minute=minute)

    def overturn(self, ref: str, minute: int) -> State:
        return self.add("goal_overturned", ref=ref, minute=minute)
