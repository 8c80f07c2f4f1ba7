"""The score state in Redis: keys, the atomic apply, and what edges read.

    gameday:match:{id}:seq       last applied seq
    gameday:match:{id}:state     the fans' JSON for that seq (what the snapshot serves)
    gameday:match:{id}:updates   stream, entry id "{seq}-0", field d = the fans' JSON
    gameday:updates              stream of every update and feed-mode change (edges read it)
    gameday:matches              set of match ids
    gameday:feed                 JSON {"feed", "delayed", "since"}

`APPLY` writes all of it in one Lua script, only when seq == last + 1, so a retried,
duplicated or reordered write can never leave a gap, a duplicate or a regression.
Streams are trimmed near `STREAM_MAXLEN` entries.
"""

from __future__ import annotations

from typing import Any, Final

import redis.asyncio as aioredis

UPDATES: Final = b"gameday:updates"
MATCHES: Final = b"gameday:matches"
FEED: Final = b"gameday:feed"
STREAM_MAXLEN: Final = 100_000

APPLIED: Final = -1


def seq_key(match_id: str) -> bytes:
    return f"gameday:match:{match_id}:seq".encode()


def state_key(match_id: str) -> bytes:
    return f"gameday:match:{match_id}:state".encode()


def match_stream(match_id: str) -> bytes:
    return f"gameday:match:{match_id}:updates".encode()


_APPLY_LUA = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local seq = tonumber(ARGV[1])
if seq ~= cur + 1 then return cur end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], ARGV[1] .. '-0', 'd', ARGV[2])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'm', ARGV[3], 's', ARGV[1], 'd', ARGV[2])
redis.call('SADD', KEYS[5], ARGV[3])
return -1
"""

_FEED_LUA = """
redis.call('SET', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'm', '*', 'f', ARGV[1])
return 1
"""


class ScoreStore:
    """Writes and reads of the score state on one Redis connection (the master's)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def apply(self, match_id: str, seq: int, payload: bytes) -> int:
        """APPLIED, or the last seq Redis holds when `seq` is not the next one."""
        keys = [seq_key(match_id), state_key(match_id), match_stream(match_id), UPDATES, MATCHES]
        result = await self.client.eval(
            _APPLY_LUA, len(keys), *keys, seq, payload, match_id, STREAM_MAXLEN
        )
        return int(result)

    async def set_feed(self, payload: bytes) -> None:
        await self.client.eval(_FEED_LUA, 2, FEED, UPDATES, payload, STREAM_MAXLEN)

    async def wait_replicas(self, replicas: int, timeout_ms: int) -> int:
        """How many replicas acknowledged every write so far (Redis WAIT)."""
        return int(await self.client.wait(replicas, timeout_ms))

    async def last_seq(self, match_id: str) -> int:
        value = await self.client.get(seq_key(match_id))
        return int(value) if value is not None else 0

    async def state(self, match_id: str) -> bytes | None:
        value = await self.client.get(state_key(match_id))
        return _bytes(value) if value is not None else None

    async def set_state(self, match_id: str, payload: bytes) -> None:
        await self.client.set(state_key(match_id), payload)

    async def feed(self) -> bytes | None:
        value = await self.client.get(FEED)
        return _bytes(value) if value is not None else None

    async def matches(self) -> list[str]:
        members = await self.client.smembers(MATCHES)
        return sorted(_bytes(m).decode() for m in members)

    async def updates_tail(self) -> bytes:
        """The id of the newest entry of the global stream, or 0-0 when it is empty."""
        newest: Any = await self.client.xrevrange(UPDATES, count=1)
        return _bytes(newest[0][0]) if newest else b"0-0"

    async def read_updates(
        self,
        after: bytes,
        *,
        block_ms: int,
        count: int = 1000,
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Global stream entries after id `after`, waiting up to `block_ms` for the first."""
        answer: Any = await self.client.xread({UPDATES: after}, count=count, block=block_ms)
        if not answer:
            return []
        return [(_bytes(entry_id), fields) for entry_id, fields in answer[0][1]]

    async def match_updates(
        self,
        match_id: str,
        first: int,
        last: int | None = None,
    ) -> list[tuple[int, bytes]]:
        """(seq, fans' JSON) of a match from seq `first` to `last` (inclusive) or the newest."""
        end = f"{last}-0" if last is not None else "+"
        entries: Any = await self.client.xrange(match_stream(match_id), f"{first}-0", end)
        return [
            (int(_bytes(entry_id).split(b"-")[0]), _bytes(fields[b"d"]))
            for entry_id, fields in entries
        ]


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"expected bytes from Redis, got {type(value).__name__}")
