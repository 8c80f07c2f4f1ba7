"""The append-only audit trail: every accepted event, one JSON line, one file per match.

A match can be replayed from it (`read()` then `fold()`), and the scorekeeper rebuilds
its memory from it at start.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from pipeline.model import MATCH_ID, MatchEvent

_TRUSTED_NOW = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)
"""Audited events were validated when accepted; re-reading them later is not 'the future'."""


class AuditLog:
    def __init__(self, directory: Path, *, fsync: bool = False) -> None:
        self.directory = directory
        self.fsync = fsync
        directory.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, IO[str]] = {}

    def path(self, match_id: str) -> Path:
        if MATCH_ID.match(match_id) is None:  # never let a name escape the directory
            raise ValueError(f"bad match id {match_id!r}")
        return self.directory / f"{match_id}.jsonl"

    def append(self, event: MatchEvent, **context: Any) -> None:
        f = self._files.get(event.match_id)
        if f is None:
            f = self._files[event.match_id] = self.path(event.match_id).open("a", encoding="utf-8")
        f.write(json.dumps({"event": event.to_json(), **context}, ensure_ascii=False) + "\n")
        f.flush()
        if self.fsync:
            os.fsync(f.fileno())

    def matches(self) -> list[str]:
        return sorted(p.stem for p in self.directory.glob("*.jsonl"))

    def records(self, match_id: str) -> list[tuple[MatchEvent, dict[str, Any]]]:
        """Every audited event of a match with its context, in the order it was applied."""
        try:
            lines = self.path(match_id).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            if line.strip():
                record = json.loads(line)
                event = MatchEvent.parse_any(record.pop("event"), now=_TRUSTED_NOW)
                out.append((event, record))
        return out

    def read(self, match_id: str) -> list[MatchEvent]:
        """Every audited event of a match, in the order it was applied."""
        return [event for event, _ in self.records(match_id)]

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
