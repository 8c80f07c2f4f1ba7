"""Ordering events per match: each seq applied once, in order, gaps held until filled.

Pure logic (no I/O, no clock), shared by the scorekeeper and the edges: what arrives in
any order with duplicates leaves as the in-order run of new events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class HasSeq(Protocol):
    @property
    def seq(self) -> int: ...


T = TypeVar("T", bound=HasSeq)


@dataclass
class Offered(Generic[T]):
    ready: list[T] = field(default_factory=list)
    """Items now next in order, oldest first: apply them in this order."""
    dropped: str | None = None
    """Why the offered item was not kept: 'stale' (seq already applied), 'duplicate' (already
    held) or 'overflow' (too many held behind a gap)."""


class Sequencer(Generic[T]):
    def __init__(self, last_seq: int = 0, *, max_held: int = 10_000) -> None:
        self.last_seq = last_seq
        self.max_held = max_held
        self._held: dict[int, T] = {}

    def offer(self, item: T) -> Offered[T]:
        seq = item.seq
        if seq <= self.last_seq:
            return Offered(dropped="stale")
        if seq in self._held:
            return Offered(dropped="duplicate")
        if seq != self.last_seq + 1 and len(self._held) >= self.max_held:
            return Offered(dropped="overflow")
        self._held[seq] = item
        return Offered(ready=self._drain())

    def _drain(self) -> list[T]:
        ready = []
        while (item := self._held.pop(self.last_seq + 1, None)) is not None:
            ready.append(item)
            self.last_seq += 1
        return ready

    @property
    def held(self) -> int:
        return len(self._held)

    def missing(self) -> range | None:
        """The seqs missing before the earliest held item, or None when nothing waits."""
        if not self._held:
            return None
        return range(self.last_seq + 1, min(self._held))

    def skip_to(self, last_seq: int) -> list[T]:
        """Move the position forward (after a repair elsewhere); returns what became ready."""
        if last_seq > self.last_seq:
            self.last_seq = last_seq
            for seq in [s for s in self._held if s <= last_seq]:
                del self._held[seq]
        return self._drain()
