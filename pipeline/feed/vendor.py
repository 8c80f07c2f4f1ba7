"""`Vendor`: what the simulated data vendors know, shared by the control, primary and secondary.

Every packet posted to the control goes out on the primary stream exactly as posted, in
posting order, duplicates and garbage included: that is how drills make a faulty feed.
Only valid events (they parse, and they belong to the match they were posted to) are kept
for replay and for the secondary's XML, one per seq, the first one posted winning.

Each stream subscriber gets a bounded queue. A subscriber that falls `queue_packets`
behind is disconnected and counted, never allowed to grow memory without limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge

from pipeline.model import InvalidEvent, MatchEvent, teams_of

Mode = Literal["normal", "silent"]
MODES: Final = frozenset(get_args(Mode))
QUEUE_PACKETS: Final = 10_000
"""How far a stream subscriber may fall behind before it is disconnected."""
HISTORY_PACKETS: Final = 10_000
"""How many of the latest posted packets `Vendor.history` keeps, for inspection."""


class FeedMetrics:
    """The vendors' Prometheus metrics, in a registry of their own (not the global one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.packets_posted = Counter(
            "gameday_feed_packets_posted",
            "Packets posted to the feed control, by whether they were valid match events.",
            ["kind"],
            registry=self.registry,
        )
        self.subscribers = Gauge(
            "gameday_feed_stream_subscribers",
            "Clients connected to the primary vendor's stream.",
            registry=self.registry,
        )
        self.slow_disconnected = Counter(
            "gameday_feed_slow_subscribers_disconnected",
            "Stream clients disconnected because they fell too far behind.",
            registry=self.registry,
        )
        self.primary_silent = Gauge(
            "gameday_feed_primary_silent",
            "1 while the primary vendor is silent (connected, sending nothing).",
            registry=self.registry,
        )
        for kind in ("valid", "invalid"):
            self.packets_posted.labels(kind=kind)


@dataclass(frozen=True, slots=True)
class Recorded:
    """A valid event and when the vendor got it (monotonic, for the secondary's delay)."""

    event: MatchEvent
    monotonic: float
    at: datetime


@dataclass(frozen=True, slots=True)
class Rejected:
    """A posted packet that is not a valid event of its match. It is emitted all the same."""

    index: int
    reason: str
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "reason": self.reason, "error": self.error}


@dataclass(frozen=True, slots=True)
class PostResult:
    accepted: int
    valid: int
    invalid: tuple[Rejected, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "valid": self.valid,
            "invalid": [r.to_json() for r in self.invalid],
        }


class Subscription:
    """One stream client's bounded queue of packets. `None` in the queue means: closed."""

    def __init__(self, queue_packets: int) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(queue_packets)
        self.closed = False
        self.dropped = False
        self.on_drop: Callable[[], None] | None = None
        """Called once if the subscriber is dropped for being slow (e.g. abort the socket)."""

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def offer(self, packet: bytes) -> bool:
        """Queue a packet; False when the queue is full (the subscriber is too slow)."""
        try:
            self._queue.put_nowait(packet)
        except asyncio.QueueFull:
            return False
        return True

    async def next(self, timeout_s: float) -> bytes | None:
        """The next packet, or None after `timeout_s` without one. Raises EOFError once closed."""
        if self.closed and self._queue.empty():
            raise EOFError("subscription closed")
        try:
            packet = await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None
        if packet is None:
            raise EOFError("subscription closed")
        return packet

    def close(self) -> None:
        """End the subscription: what is still queued is dropped, the reader sees EOFError."""
        if self.closed:
            return
        self.closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)


class Vendor:
    """The record of one simulated vendor: posted packets, valid events, stream subscribers."""

    def __init__(
        self,
        *,
        queue_packets: int = QUEUE_PACKETS,
        history_packets: int = HISTORY_PACKETS,
        metrics: FeedMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        utc_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if queue_packets < 1:
            raise ValueError(f"queue_packets must be >= 1, got {queue_packets}")
        self.metrics = metrics if metrics is not None else FeedMetrics()
        self.history: deque[bytes] = deque(maxlen=history_packets)
        self._queue_packets = queue_packets
        self._clock = clock
        self._utc_clock = utc_clock
        self._mode: Mode = "normal"
        self._matches: dict[str, dict[int, Recorded]] = {}
        self._subscribers: set[Subscription] = set()

    # --- the primary's mode -----------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: object) -> Mode:
        """'normal' streams; 'silent' keeps connections open and sends nothing at all."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        self._mode = "silent" if mode == "silent" else "normal"
        self.metrics.primary_silent.set(1 if self._mode == "silent" else 0)
        return self._mode

    # --- posting ------------------------------------------------------------------------

    def post(self, match_id: str, packets: Iterable[bytes]) -> PostResult:
        """Record and emit packets posted for `match_id`. Raises InvalidEvent for a bad id."""
        teams_of(match_id)
        recorded = self._matches.setdefault(match_id, {})
        accepted, rejected = 0, []
        for index, packet in enumerate(packets):
            accepted += 1
            problem = self._record(match_id, recorded, packet)
            if problem is not None:
                rejected.append(Rejected(index, problem.reason, str(problem)))
            kind = "invalid" if problem is not None else "valid"
            self.metrics.packets_posted.labels(kind=kind).inc()
            self.history.append(packet)
            if self._mode == "normal":
                self._fan_out(packet)
        return PostResult(accepted, accepted - len(rejected), tuple(rejected))

    def _record(
        self, match_id: str, recorded: dict[int, Recorded], packet: bytes
    ) -> InvalidEvent | None:
        """Keep the packet's event for replay if valid and the first of its seq."""
        try:
            event = MatchEvent.parse(packet, now=self._utc_clock())
        except InvalidEvent as exc:
            return exc
        if event.match_id != match_id:
            return InvalidEvent(
                "wrong_match", f"event of {event.match_id} posted to match {match_id}"
            )
        if event.seq not in recorded:
            recorded[event.seq] = Recorded(event, self._clock(), self._utc_clock())
        return None

    def _fan_out(self, packet: bytes) -> None:
        for subscription in list(self._subscribers):
            if not subscription.offer(packet):
                self._drop_slow(subscription)

    def _drop_slow(self, subscription: Subscription) -> None:
        subscription.dropped = True
        self.unsubscribe(subscription)
        self.metrics.slow_disconnected.inc()
        if subscription.on_drop is not None:
            subscription.on_drop()

    # --- the stream's subscribers -------------------------------------------------------

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscription:
        subscription = Subscription(self._queue_packets)
        self._subscribers.add(subscription)
        self.metrics.subscribers.set(len(self._subscribers))
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Close and forget a subscription; safe to call more than once."""
        subscription.close()
        self._subscribers.discard(subscription)
        self.metrics.subscribers.set(len(self._subscribers))

    def close_subscribers(self) -> None:
        """End every stream (at shutdown), so that no handler keeps the server waiting."""
        for subscription in list(self._subscribers):
            self.unsubscribe(subscription)

    # --- what the vendors serve ---------------------------------------------------------

    def utc_now(self) -> datetime:
        """The vendor's wall clock (the secondary stamps its documents with it)."""
        return self._utc_clock()

    def knows(self, match_id: str) -> bool:
        return match_id in self._matches

    def matches(self) -> dict[str, int]:
        """Each match posted to, with its highest valid seq (0 before any valid event)."""
        return {m: max(recorded, default=0) for m, recorded in sorted(self._matches.items())}

    def events(self, match_id: str, *, after: int = 0) -> list[MatchEvent]:
        """The valid events of a match with seq > `after`, in seq order, each seq once."""
        recorded = self._matches.get(match_id, {})
        return [recorded[seq].event for seq in sorted(recorded) if seq > after]

    def events_older_than(self, match_id: str, age_s: float) -> list[MatchEvent]:
        """The valid events recorded at least `age_s` ago, in seq order (the secondary's view)."""
        cutoff = self._clock() - age_s
        recorded = self._matches.get(match_id, {})
        return [
            recorded[seq].event for seq in sorted(recorded) if recorded[seq].monotonic <= cutoff
        ]
