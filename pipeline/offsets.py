"""Which Kafka offsets may be committed: only those below every message still in flight.

A message is in flight from the moment it is read until its effect is durable in Redis
(or it is known to need none). Held messages (behind a gap) keep their partition's
commit point back, so a crash can never skip an event that was read but not applied.
"""

from __future__ import annotations


class OffsetTracker:
    def __init__(self) -> None:
        self._pending: dict[int, set[int]] = {}
        self._next: dict[int, int] = {}
        self._committed: dict[int, int] = {}

    def started(self, partition: int, offset: int) -> None:
        self._pending.setdefault(partition, set()).add(offset)
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def finished(self, partition: int, offset: int) -> None:
        self._pending.get(partition, set()).discard(offset)

    def committable(self) -> dict[int, int]:
        """Per partition, the offset to commit (the next one to read) if it moved on."""
        out = {}
        for partition, upto in self._next.items():
            pending = self._pending.get(partition)
            point = min(pending) if pending else upto
            if point > self._committed.get(partition, -1):
                out[partition] = point
        return out

    def committed(self, partition: int, offset: int) -> None:
        self._committed[partition] = max(self._committed.get(partition, -1), offset)

    def in_flight(self) -> int:
        return sum(len(p) for p in self._pending.values())
