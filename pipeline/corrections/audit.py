"""What the scorekeeper applied, read back from its audit trail (read-only).

The corrections service answers from here: a match's state is the fold of its audited
events, each carrying the seq fans received it as. The scorekeeper appends while this
reads, so a last line without its newline is not read yet.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from pipeline.model import MATCH_ID, MatchEvent, ScoreState

TRUSTED_NOW: Final = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)
"""Audited events were checked when accepted; reading them later is not 'the future'."""


class AuditReader:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def records(self, match_id: str) -> list[tuple[MatchEvent, dict[str, Any]]]:
        """Every complete audit line of the match: (event, context), in applied order."""
        if MATCH_ID.match(match_id) is None:  # never let a name escape the directory
            raise ValueError(f"bad match id {match_id!r}")
        try:
            text = (self.directory / f"{match_id}.jsonl").read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.split("\n")[:-1]:  # what follows the last newline is unfinished
            if line.strip():
                record = json.loads(line)
                event = MatchEvent.parse_any(record.pop("event"), now=TRUSTED_NOW)
                out.append((event, record))
        return out

    def state(self, match_id: str) -> ScoreState:
        """The match as the scorekeeper last applied it (seq 0: never heard of)."""
        state = ScoreState.new(match_id)
        for event, _ in self.records(match_id):
            if event.seq == state.seq + 1:
                state = state.apply(event)
        return state

    def applied(self, match_id: str, event_id: str) -> int | None:
        """The seq fans received `event_id` as, or None when it is not in the trail."""
        for event, _ in self.records(match_id):
            if event.event_id == event_id:
                return event.seq
        return None
