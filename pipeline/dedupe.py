"""Dropping events already ingested, by event_id, at the earliest point.

A Bloom filter answers "certainly new" for almost every event without touching the exact
set; only a "maybe seen" consults the bounded exact set. Beyond `capacity` ids the oldest
are forgotten (counted): the scorekeeper's seq check still stops a very late duplicate.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict


class BloomFilter:
    def __init__(self, capacity: int, error_rate: float = 0.001) -> None:
        bits = max(64, int(-capacity * math.log(error_rate) / math.log(2) ** 2))
        self.size = bits
        self.hashes = max(1, round(bits / capacity * math.log(2)))
        self._bits = bytearray((bits + 7) // 8)

    def _positions(self, key: str) -> list[int]:
        digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
        h1, h2 = int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little") | 1
        return [(h1 + i * h2) % self.size for i in range(self.hashes)]

    def add(self, key: str) -> None:
        for p in self._positions(key):
            self._bits[p >> 3] |= 1 << (p & 7)

    def __contains__(self, key: str) -> bool:
        return all(self._bits[p >> 3] & (1 << (p & 7)) for p in self._positions(key))


class Deduper:
    def __init__(self, capacity: int = 1_000_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = capacity
        self._bloom = BloomFilter(capacity)
        self._exact: OrderedDict[str, None] = OrderedDict()
        self.forgotten = 0
        self.bloom_hits = 0

    def seen(self, event_id: str) -> bool:
        """True if `event_id` was seen before; otherwise remember it and return False."""
        if event_id in self._bloom:
            self.bloom_hits += 1
            if event_id in self._exact:
                self._exact.move_to_end(event_id)
                return True
        self._bloom.add(event_id)
        self._exact[event_id] = None
        if len(self._exact) > self.capacity:
            self._exact.popitem(last=False)
            self.forgotten += 1
            if self.forgotten % self.capacity == 0:  # the filter is saturated: rebuild it
                self._bloom = BloomFilter(self.capacity)
                for key in self._exact:
                    self._bloom.add(key)
        return False
