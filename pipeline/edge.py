"""The SSE edge of one region: Redis -> every fan, each update encoded once.

Fans hold `GET /v1/matches/{id}/stream` (SSE); `GET /v1/matches/{id}/ws` offers the same
updates over WebSocket (the JSON of each, one text frame encoded once for every
WebSocket fan), so the two can be measured side by side on one server.

One process per region (several may share a port with SO_REUSEPORT). It follows the
Redis master through Sentinel and its region's Toxiproxy link, reads the global update
stream by position, and writes each update as one pre-encoded SSE frame to every fan
watching that match.

Guarantees to a connected fan: each seq at most once, in increasing order, none skipped.
The edge keeps a per-match position and drops anything at or below it; a gap (updates a
failover lost or the stream skipped) is repaired from the match's own Redis stream
before anything newer goes out. A reconnecting fan with `Last-Event-ID` gets what it
missed from a replay buffer, or from Redis when the buffer no longer reaches back.

Fans are plain asyncio transports. A fan whose socket buffer passes
`max_client_buffer_bytes` is disconnected (counted); memory never grows with a slow fan.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from redis.exceptions import RedisError

from pipeline import wsframe
from pipeline.auth import bearer_ok, read_token
from pipeline.clientreport import ClientReport
from pipeline.exposition import CONTENT_TYPE, Exposition
from pipeline.httpwire import (
    MAX_HEAD,
    MAX_REQUEST_LINE,
    BadRequest,
    Request,
    json_error,
    parse_head,
    response,
)
from pipeline.model import MATCH_ID, parse_time
from pipeline.redisconn import MasterFollower, target_of
from pipeline.scorestore import ScoreStore
from pipeline.service import main, run_all
from pipeline.telemetry import Metrics, dumps, setup_tracing

log = logging.getLogger("edge")
propagator = TraceContextTextMapPropagator()

STATIC = {
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
    "/sw.js": ("sw.js", "text/javascript; charset=utf-8"),
}
PAGE = ("index.html", "text/html; charset=utf-8")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
HEARTBEAT = b": hb\n\n"
MAX_SEQ_DIGITS = 15
"""A Last-Event-ID is a seq (below 2**53): ASCII digits, at most this many, else 400."""
RETRY_AFTER_S = 5
"""What a client refused for holding too many connections is told to wait (Retry-After)."""
REFUSED_DEADLINE_S = 2.0
"""How long a connection over the per-address cap may take to send its request head
before it is closed without an answer (it is answered 429 as soon as the head is in)."""
REJECTION_LOG_S = 10.0
"""Each reason of refusal is logged at most once in this many seconds (with a count)."""
REJECTIONS = {
    400: "malformed",
    401: "unauthorized",
    405: "method_not_allowed",
    408: "header_timeout",
    411: "malformed",
    413: "body_too_large",
    414: "request_line_too_long",
    429: "per_address_cap",
    431: "head_too_large",
}
"""The `reason` of gameday_edge_rejected_total for each refusal of a request as such;
bad_last_event_id, bad_telemetry and unknown_path are counted where they are found."""


@dataclass(frozen=True, kw_only=True)
class EdgeConfig:
    region: str
    port: int
    sentinels: tuple[str, ...]
    master_name: str
    web_dir: Path
    version: str = "stable"
    host: str = "127.0.0.1"
    address_map: dict[str, str] = field(default_factory=dict)
    static_master: str | None = None
    trace_dir: Path | None = None
    heartbeat_ms: int = 15_000
    retry_ms: int = 2_000
    max_client_buffer_bytes: int = 256 * 1024
    replay_buffer: int = 4096
    replay_enabled: bool = True
    """Drill switch: with False, Last-Event-ID is ignored (drills must catch the loss)."""
    header_timeout_s: float = 10.0
    """A client must send a whole request (head and body) this long after connecting, or
    after its previous answer on a kept-alive connection; else 408 and close (slowloris)."""
    max_matches: int = 1000
    """Matches the edge holds at once. A match asked for that nobody has published nor
    watches yet (a placeholder) makes room for a new one, so made-up ids cannot lock the
    edge out of real matches."""
    max_connections_per_address: int = 256
    """Open connections one client address may hold; the next gets 429 with Retry-After
    (0: no cap). Browsers hold a few each; a carrier's NAT may put many fans behind one."""
    connection_cap_exempt: tuple[str, ...] = ("127.0.0.1", "::1")
    """Addresses the per-address cap does not apply to: the machine's own harness (the
    benchmarks and `gameday load` run thousands of fans from 127.0.0.1). Other loopback
    addresses (127.0.0.2, ...) are capped like any client."""
    reuse_port: bool = False
    admin_token_file: Path | None = None
    """Enables `POST /v1/admin/drain` (the rollout controller's rollback) for this token."""
    defect_error_ratio: float = 0.0
    """The bad build (a canary drill): this share of stream and snapshot requests fail
    with 500, as a crashing handler would."""
    defect_stream_cut_s: float = 0.0
    """The bad build: every stream is cut after this long (0: never)."""

    def __post_init__(self) -> None:
        if not 0 <= self.defect_error_ratio <= 1:
            raise ValueError(f"defect_error_ratio must be in [0, 1], got {self.defect_error_ratio}")
        if self.max_connections_per_address < 0:
            raise ValueError(
                f"max_connections_per_address must be >= 0, got {self.max_connections_per_address}"
            )
        if self.header_timeout_s <= 0:
            raise ValueError(f"header_timeout_s must be > 0, got {self.header_timeout_s}")


def score_frame(seq: int, payload: bytes) -> bytes:
    return b"id: %d\nevent: score\ndata: %s\n\n" % (seq, payload)


def feed_frame(payload: bytes) -> bytes:
    return b"event: feed\ndata: %s\n\n" % payload


def ws_from_sse(seq: int, frame: bytes) -> bytes:
    """The WebSocket message for an SSE score frame: its JSON data, framed."""
    return wsframe.frame(frame[len(b"id: %d\nevent: score\ndata: " % seq) : -2])


class Fan:
    """One open stream: SSE, or WebSocket (`ws`) carrying the same JSON."""

    __slots__ = ("backlog", "last_seq", "match", "transport", "ws")

    def __init__(
        self, transport: asyncio.Transport, match: MatchFeed, last_seq: int, *, ws: bool = False
    ) -> None:
        self.transport = transport
        self.match = match
        self.last_seq = last_seq
        self.ws = ws
        self.backlog: list[tuple[int, bytes]] | None = None
        """Frames that arrived while this fan was being caught up from Redis."""


@dataclass
class MatchFeed:
    """One match as this edge sees it."""

    match_id: str
    last_seq: int = 0
    payload: bytes | None = None
    frames: deque[tuple[int, bytes]] = field(default_factory=deque)
    fans: set[Fan] = field(default_factory=set)
    held: dict[int, bytes] = field(default_factory=dict)

    def replay_from(self, after: int) -> list[tuple[int, bytes]] | None:
        """Buffered frames after seq `after`, or None when the buffer does not reach back."""
        if after >= self.last_seq:
            return []
        if not self.frames or self.frames[0][0] > after + 1:
            return None
        return [(seq, frame) for seq, frame in self.frames if seq > after]


class Edge:
    def __init__(self, config: EdgeConfig, *, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.exposition = Exposition(self.metrics.registry)
        self.follower = MasterFollower(target_of(config))
        self.matches: dict[str, MatchFeed] = {}
        self.feed_payload: bytes | None = None
        self.position = b"0-0"
        self.last_read_ok = 0.0
        self.tracer = trace.get_tracer("gameday.edge")
        self.web = {
            path: (config.web_dir / name).read_bytes()
            for path, (name, _) in {**STATIC, "/": PAGE}.items()
        }
        self._snapshot_reads: dict[str, asyncio.Future[bytes | None]] = {}
        self._per_address: dict[str, int] = {}
        """Open connections per client address (only addresses the cap applies to)."""
        self._rejection_log: dict[str, tuple[float, int]] = {}
        """Per rejection reason: when it was last logged, and how many were not logged since."""
        self.token = read_token(config.admin_token_file) if config.admin_token_file else None
        region = config.region
        self._connections = self.metrics.gauge("gameday_sse_connections").labels(
            region=region, version=config.version
        )
        self._frames = self.metrics.counter("gameday_sse_frames_total").labels(region=region)
        self._latency = self.metrics.histogram("gameday_event_latency_seconds")
        self._zero_series()

    def _zero_series(self) -> None:
        """Create the request counters SLOs read at 0, so the first request (or error) is an
        increase Prometheus can see, not the first sample of a new series."""
        requests = self.metrics.counter("gameday_http_requests_total")
        for route, statuses in (
            ("stream", (200, 400, 404, 500, 503)),
            ("snapshot", (200, 304, 404, 500, 503)),
            ("telemetry", (202, 400)),
        ):
            for status in statuses:
                requests.labels(
                    region=self.config.region,
                    version=self.config.version,
                    route=route,
                    status=str(status),
                )
        rejected = self.metrics.counter("gameday_edge_rejected_total")
        for reason in {*REJECTIONS.values(), "bad_last_event_id", "bad_telemetry", "unknown_path"}:
            rejected.labels(region=self.config.region, reason=reason)

    # --- matches and fans -------------------------------------------------------------

    def match(self, match_id: str) -> MatchFeed | None:
        feed = self.matches.get(match_id)
        if feed is not None or not MATCH_ID.match(match_id):
            return feed
        if len(self.matches) >= self.config.max_matches:
            self._evict_placeholder()
        if len(self.matches) < self.config.max_matches:
            feed = self.matches[match_id] = MatchFeed(match_id)
        return feed

    def _evict_placeholder(self) -> None:
        """Forget one match that has no state and no fans (asked for, never published)."""
        for match_id, feed in self.matches.items():
            if feed.payload is None and not feed.fans and not feed.held:
                del self.matches[match_id]
                return

    # --- who may connect ----------------------------------------------------------------

    def admit(self, address: str) -> bool:
        """Count a new connection from `address`; False when it is over the cap."""
        cap = self.config.max_connections_per_address
        if cap == 0 or address in self.config.connection_cap_exempt:
            return True
        held = self._per_address.get(address, 0)
        if held >= cap:
            return False
        self._per_address[address] = held + 1
        return True

    def release(self, address: str) -> None:
        """A connection `admit` counted has closed."""
        held = self._per_address.get(address, 0) - 1
        if held > 0:
            self._per_address[address] = held
        else:
            self._per_address.pop(address, None)

    def rejected(self, reason: str, detail: str = "") -> None:
        """Count a refused request or connection, and log it: at most once per reason every
        REJECTION_LOG_S, with how many there were since, so a flood cannot flood the log."""
        self.metrics.counter("gameday_edge_rejected_total").labels(
            region=self.config.region, reason=reason
        ).inc()
        now = time.monotonic()
        last, count = self._rejection_log.get(reason, (-REJECTION_LOG_S, 0))
        if now - last < REJECTION_LOG_S:
            self._rejection_log[reason] = (last, count + 1)
            return
        self._rejection_log[reason] = (now, 0)
        more = f" (+{count} more since the last log)" if count else ""
        log.warning("refused (%s)%s: %s", reason, more, detail[:200] or reason)

    def _write(self, fan: Fan, frame: bytes) -> bool:
        transport = fan.transport
        if transport.is_closing():
            return False
        transport.write(frame)
        if transport.get_write_buffer_size() > self.config.max_client_buffer_bytes:
            self.drop(fan, "slow_client")
            return False
        return True

    def drop(self, fan: Fan, reason: str) -> None:
        if fan in fan.match.fans:
            fan.match.fans.discard(fan)
            self._connections.dec()
            self.metrics.counter("gameday_sse_disconnects_total").labels(
                region=self.config.region, reason=reason
            ).inc()
        fan.transport.abort() if reason == "slow_client" else fan.transport.close()

    def deliver(
        self,
        match: MatchFeed,
        seq: int,
        payload: bytes,
        read_ns: int | None = None,
        *,
        live: bool = True,
    ) -> None:
        """Make `seq` the match's newest update and write it to every fan still before it.

        `read_ns` is when the update was read from Redis (time.time_ns()); the fan-out span
        starts there, so the trace shows the edge's own time apart from the Redis hop.
        Updates that are not `live` (history read at start-up) are neither measured nor
        traced: their age is not the pipeline's latency.
        """
        read_ns = read_ns or time.time_ns()
        frame = score_frame(seq, payload)
        ws: bytes | None = None
        match.last_seq, match.payload = seq, payload
        match.frames.append((seq, frame))
        while len(match.frames) > self.config.replay_buffer:
            match.frames.popleft()
        written, limit = 0, self.config.max_client_buffer_bytes
        # The hot loop: what _write() does, inlined (a call per fan is a tenth of the cost).
        for fan in tuple(match.fans):
            if fan.backlog is not None:
                fan.backlog.append((seq, frame))
                continue
            transport = fan.transport
            if seq <= fan.last_seq or transport.is_closing():
                continue
            if fan.ws:
                ws = ws or wsframe.frame(payload)
                transport.write(ws)
            else:
                transport.write(frame)
            if transport.get_write_buffer_size() > limit:
                self.drop(fan, "slow_client")
                continue
            fan.last_seq = seq
            written += 1
        self._frames.inc(written)
        if live:
            self._observe(payload, written, read_ns)

    def _observe(self, payload: bytes, fans: int, read_ns: int) -> None:
        try:
            data = json.loads(payload)
            occurred = parse_time(data["occurred_at"])
            kind = data["event"]["type"]
        except (ValueError, KeyError, TypeError):
            return
        latency = (datetime.now(UTC) - occurred).total_seconds()
        self._latency.labels(
            event_type=kind, region=self.config.region, version=self.config.version
        ).observe(max(0.0, latency))
        context = propagator.extract({"traceparent": data.get("traceparent") or ""})
        attributes = {
            "region": self.config.region,
            "version": self.config.version,
            "fans": fans,
            "seq": data.get("seq", 0),
            "match_id": data.get("match_id", ""),
            "event_type": kind,
        }
        self.tracer.start_span(
            "edge.fanout", context=context, attributes=attributes, start_time=read_ns
        ).end()

    def broadcast_feed(self, payload: bytes) -> None:
        self.feed_payload = payload
        frame, ws = feed_frame(payload), wsframe.frame(payload)
        for match in self.matches.values():
            for fan in list(match.fans):
                if fan.backlog is None:
                    self._write(fan, ws if fan.ws else frame)

    def drain(self) -> int:
        """Close every stream (a rollback moving fans away); they come back elsewhere with
        Last-Event-ID. Returns how many were closed."""
        fans = [fan for match in self.matches.values() for fan in match.fans]
        for fan in fans:
            self.drop(fan, "drained")
        log.warning("drained %d streams", len(fans))
        return len(fans)

    def heartbeat(self) -> None:
        for match in self.matches.values():
            for fan in list(match.fans):
                self._write(fan, wsframe.PING_FRAME if fan.ws else HEARTBEAT)
        self.metrics.counter("gameday_sse_heartbeats_total").labels(region=self.config.region).inc()

    async def subscribe(
        self,
        transport: asyncio.Transport,
        match: MatchFeed,
        last_event_id: int | None,
        *,
        ws: bool = False,
    ) -> None:
        """Start a fan's stream: what it missed (or the current state), then live updates."""
        replayed = last_event_id is not None and self.config.replay_enabled
        start = last_event_id if replayed and last_event_id is not None else 0
        fan = Fan(transport, match, start, ws=ws)
        match.fans.add(fan)
        self._connections.inc()
        if self.config.defect_stream_cut_s > 0:
            asyncio.get_running_loop().call_later(
                self.config.defect_stream_cut_s, self.drop, fan, "defect"
            )
        if self.feed_payload is not None:
            feed = self.feed_payload
            self._write(fan, wsframe.frame(feed) if ws else feed_frame(feed))
        if not replayed:
            if match.payload is not None:
                payload = match.payload
                self._write(
                    fan, wsframe.frame(payload) if ws else score_frame(match.last_seq, payload)
                )
                fan.last_seq = match.last_seq
            return
        frames = match.replay_from(start)
        source = "buffer"
        if frames is None:
            source = "redis"
            fan.backlog = []
            frames = [
                (seq, score_frame(seq, p)) for seq, p in await self._match_range(match, start + 1)
            ]
            frames += fan.backlog
            fan.backlog = None
        sent = 0
        for seq, frame in frames:
            if seq > fan.last_seq:
                if not self._write(fan, ws_from_sse(seq, frame) if ws else frame):
                    return
                fan.last_seq = seq
                sent += 1
        self.metrics.counter("gameday_sse_replayed_total").labels(
            region=self.config.region, source=source
        ).inc(sent)

    async def _match_range(
        self,
        match: MatchFeed,
        first: int,
        last: int | None = None,
    ) -> list[tuple[int, bytes]]:
        try:
            store = ScoreStore(await self.follower.client())
            return await store.match_updates(match.match_id, first, last)
        except (RedisError, OSError) as exc:
            log.warning("%s: reading updates from Redis failed: %s", match.match_id, exc)
            await self.follower.invalidate()
            return []

    # --- reading Redis ----------------------------------------------------------------

    async def load(self) -> None:
        """Learn every match's latest state; read the update stream from before that on."""
        store = ScoreStore(await self.follower.client())
        self.position = await store.updates_tail()
        self.feed_payload = await store.feed()
        for match_id in await store.matches():
            match = self.match(match_id)
            if match is None:
                continue
            recent = await store.match_updates(match_id, 1)
            for seq, payload in recent[-self.config.replay_buffer :]:
                if seq > match.last_seq:
                    self.deliver(match, seq, payload, live=False)
        self.last_read_ok = time.monotonic()

    async def on_update(
        self, match: MatchFeed, seq: int, payload: bytes, read_ns: int | None = None
    ) -> None:
        outcomes = self.metrics.counter("gameday_edge_updates_total")
        if seq <= match.last_seq or seq in match.held:
            outcomes.labels(region=self.config.region, outcome="duplicate").inc()
            return
        outcomes.labels(region=self.config.region, outcome="new").inc()
        match.held[seq] = payload
        if seq > match.last_seq + 1:
            repaired = await self._match_range(match, match.last_seq + 1, seq - 1)
            for missing, missing_payload in repaired:
                match.held.setdefault(missing, missing_payload)
            self.metrics.counter("gameday_edge_gap_repairs_total").labels(
                region=self.config.region
            ).inc(len(repaired))
        while (ready := match.held.pop(match.last_seq + 1, None)) is not None:
            self.deliver(match, match.last_seq + 1, ready, read_ns)

    async def follow_forever(self) -> None:
        reconnects = self.metrics.counter("gameday_edge_redis_reconnects_total")
        delay = 0.05
        while True:
            try:
                store = ScoreStore(await self.follower.client())
                entries = await store.read_updates(self.position, block_ms=1000)
                read_ns = time.time_ns()
                self.last_read_ok = time.monotonic()
                delay = 0.05
            except (RedisError, OSError) as exc:
                log.warning("redis read failed (%s); following the master", exc)
                changed = await self.follower.reconnect(after_s=delay)
                delay = min(delay * 2, 1.0)
                if changed is None:
                    continue
                reconnects.labels(
                    region=self.config.region, master_changed=str(changed).lower()
                ).inc()
                if changed:
                    self.metrics.counter("gameday_redis_failovers_followed_total").labels(
                        service=f"edge-{self.config.region}"
                    ).inc()
                continue
            for entry_id, fields in entries:
                self.position = entry_id
                await self._on_entry(fields, read_ns)
            await self._retry_held()

    async def _on_entry(self, fields: dict[bytes, bytes], read_ns: int) -> None:
        match_id = fields.get(b"m", b"").decode()
        if match_id == "*":
            self.broadcast_feed(fields.get(b"f", b"{}"))
            return
        match = self.match(match_id)
        if match is not None:
            await self.on_update(match, int(fields[b"s"]), fields[b"d"], read_ns)

    async def _retry_held(self) -> None:
        """Updates held behind a gap: look for the missing ones again (a re-apply may be in)."""
        for match in self.matches.values():
            if match.held and min(match.held) > match.last_seq + 1:
                first = min(match.held)
                for seq, payload in await self._match_range(match, match.last_seq + 1, first - 1):
                    match.held.setdefault(seq, payload)
                while (ready := match.held.pop(match.last_seq + 1, None)) is not None:
                    self.deliver(match, match.last_seq + 1, ready)

    async def heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_ms / 1000)
            self.heartbeat()

    # --- snapshots --------------------------------------------------------------------

    def snapshot_body(self, match: MatchFeed) -> bytes | None:
        """The latest state, with the current feed mode laid over it while in fallback."""
        if match.payload is None:
            return None
        if self.feed_payload is None:
            return match.payload
        try:
            feed = json.loads(self.feed_payload)
        except ValueError:
            return match.payload
        if feed.get("feed") != "fallback":
            return match.payload
        state = json.loads(match.payload)
        state.update(feed="fallback", delayed=True)
        return dumps(state)

    async def snapshot(self, match: MatchFeed) -> bytes | None:
        """The latest state; concurrent requests for a match Redis has not shown us share
        one read (request coalescing)."""
        result = self.metrics.counter("gameday_snapshot_requests_total")
        if match.payload is not None:
            result.labels(region=self.config.region, result="memory").inc()
            return self.snapshot_body(match)
        pending = self._snapshot_reads.get(match.match_id)
        if pending is not None:
            result.labels(region=self.config.region, result="coalesced").inc()
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._snapshot_reads[match.match_id] = future
        result.labels(region=self.config.region, result="redis").inc()
        try:
            store = ScoreStore(await self.follower.client())
            future.set_result(await store.state(match.match_id))
        except (RedisError, OSError) as exc:
            future.set_exception(exc)
        finally:
            del self._snapshot_reads[match.match_id]
        return await future

    def healthy(self) -> bool:
        return time.monotonic() - self.last_read_ok < 5.0

    def client_report(self, body: bytes) -> tuple[int, str]:
        """A page's telemetry (pipeline/web/app.js): metrics, and a span per receipt.

        Returns (HTTP status, error). A bad report is refused and counted; it never
        touches a metric.
        """
        reports = self.metrics.counter("gameday_client_reports_total")
        try:
            report = ClientReport.parse(body)
        except ValueError as exc:
            reports.labels(region=self.config.region, result="rejected").inc()
            self.rejected("bad_telemetry", str(exc))
            return 400, str(exc)
        region = self.config.region
        if report.page_load_s is not None:
            self.metrics.histogram("gameday_client_page_load_seconds").labels(
                region=region
            ).observe(report.page_load_s)
        if report.staleness_s is not None:
            self.metrics.histogram("gameday_client_staleness_seconds").labels(
                region=region, visible=str(report.visible).lower()
            ).observe(report.staleness_s)
        delay = self.metrics.histogram("gameday_client_update_delay_seconds").labels(region=region)
        for receipt in report.receipts:
            delay.observe(max(0.0, receipt.delay_s))
            context = propagator.extract({"traceparent": receipt.traceparent})
            at_ns = int(receipt.received_at_ms * 1e6)
            self.tracer.start_span(
                "browser.receive",
                context=context,
                start_time=at_ns,
                attributes={"region": region, "seq": receipt.seq},
            ).end(end_time=at_ns)
        reports.labels(region=region, result="ok").inc()
        return 202, ""


class EdgeProtocol(asyncio.Protocol):
    """One client connection: requests until it becomes an SSE stream or closes."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.streaming = False
        self.ws = False
        self.fan_match: MatchFeed | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._awaiting: tuple[Request, int] | None = None
        """A request whose head is parsed, and the body length it still waits for."""
        self.address: str | None = None
        """The client's address, when the per-address cap counted this connection."""
        self.over_cap = False
        """The client's address holds too many connections: its request is answered 429."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = self.transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if self.edge.admit(address):
            self.address = address
            self._arm()
        else:
            self.over_cap = True
            self._arm(min(REFUSED_DEADLINE_S, self.edge.config.header_timeout_s))

    def _arm(self, timeout_s: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(
            timeout_s or self.edge.config.header_timeout_s, self._too_slow
        )

    def _too_slow(self) -> None:
        if self.transport is None or self.streaming or self.transport.is_closing():
            return
        if self.over_cap:  # never sent a head: no answer is owed
            self.edge.rejected(REJECTIONS[429])
            self.transport.abort()
            return
        self.edge.metrics.counter("gameday_sse_disconnects_total").labels(
            region=self.edge.config.region, reason="request_timeout"
        ).inc()
        self._fail(BadRequest(408, "request head not received in time"))

    def data_received(self, data: bytes) -> None:
        if self.streaming:
            if self.ws and self.transport is not None:  # a WebSocket client may close
                opcodes = wsframe.client_opcodes(data)
                if wsframe.CLOSE in opcodes:
                    self.transport.write(wsframe.CLOSE_FRAME)
                    self.transport.close()
                elif wsframe.PING in opcodes:
                    self.transport.write(wsframe.frame(b"", wsframe.PONG))
            return  # an SSE client has nothing more to say
        if self.transport is None or self.transport.is_closing():
            return
        self.buffer += data
        if self._awaiting is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                self._check_partial_head()
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            if self.over_cap:
                self._fail(
                    BadRequest(429, "too many connections from your address"),
                    {"Retry-After": str(RETRY_AFTER_S)},
                )
                return
            try:
                request = parse_head(head)
                self._awaiting = (request, request.body_length())
            except BadRequest as exc:
                self._fail(exc)
                return
        request, length = self._awaiting
        if len(self.buffer) < length:
            return  # the rest of the body is on its way (within the request deadline)
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        self._awaiting = None
        if self._deadline is not None:
            self._deadline.cancel()
        request = replace(request, body=body)
        asyncio.ensure_future(self._dispatch(request)).add_done_callback(self._crashed)

    def _crashed(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("request failed", exc_info=task.exception())
            if self.transport is not None and not self.streaming:
                self.transport.write(json_error(500, "internal error"))
                self.transport.close()

    def _check_partial_head(self) -> None:
        """Refuse a head that is already too long before its end arrives."""
        line_end = self.buffer.find(b"\r\n")
        if len(self.buffer if line_end < 0 else self.buffer[:line_end]) > MAX_REQUEST_LINE:
            self._fail(BadRequest(414, f"request line over {MAX_REQUEST_LINE} bytes"))
        elif len(self.buffer) > MAX_HEAD:
            self._fail(BadRequest(431, f"request head over {MAX_HEAD} bytes"))

    def _fail(self, error: BadRequest, headers: dict[str, str] | None = None) -> None:
        """Answer a request refused as such (its head, its size, its timing) and close."""
        assert self.transport is not None
        if self._deadline is not None:
            self._deadline.cancel()
        self._count("bad_request", error.status)
        self.edge.rejected(
            REJECTIONS.get(error.status, "malformed"), f"{error.status} {error.message}"
        )
        self.transport.write(json_error(error.status, error.message, headers=headers))
        self.transport.close()

    def _count(self, route: str, status: int) -> None:
        self.edge.metrics.counter("gameday_http_requests_total").labels(
            region=self.edge.config.region,
            version=self.edge.config.version,
            route=route,
            status=str(status),
        ).inc()

    def _send(self, request: Request, route: str, payload: bytes) -> None:
        assert self.transport is not None
        status = int(payload[9:12])
        self._count(route, status)
        self.transport.write(payload)
        if request.keep_alive and status < 400:
            self._arm()
            if self.buffer:
                self.data_received(b"")
        else:
            self.transport.close()

    async def _dispatch(self, request: Request) -> None:
        edge, path = self.edge, request.path
        if request.method == "POST" and path == "/v1/telemetry":
            status, message = edge.client_report(request.body)
            body = dumps({"ok": True} if status == 202 else {"error": message})
            self._send(request, "telemetry", response(status, body, keep_alive=request.keep_alive))
            return
        if request.method == "POST" and path == "/v1/admin/drain":
            self._drain(request)
            return
        if request.method not in ("GET", "HEAD"):
            edge.rejected(REJECTIONS[405])
            message = f"{request.method[:20]} is not allowed"
            self._send(request, "other", json_error(405, message, headers={"Allow": "GET, HEAD"}))
            return
        parts = path.strip("/").split("/")
        if path in STATIC or path == "/" or (len(parts) == 2 and parts[0] == "matches"):
            self._static(request, path if path in STATIC else "/")
        elif path == "/healthz":
            self._healthz(request)
        elif path == "/metrics":
            body = edge.exposition.render()
            self._send(request, "metrics", response(200, body, content_type=CONTENT_TYPE))
        elif len(parts) == 4 and parts[:2] == ["v1", "matches"] and parts[3] in ("stream", "ws"):
            if not self._defective(request, "stream"):
                await self._stream(request, parts[2], ws=parts[3] == "ws")
        elif len(parts) == 3 and parts[:2] == ["v1", "matches"]:
            if not self._defective(request, "snapshot"):
                await self._snapshot(request, parts[2])
        else:
            edge.rejected("unknown_path", f"{request.method[:20]} {path[:80]!r}")
            self._send(
                request,
                "other",
                json_error(404, f"no route for {path[:80]}", keep_alive=request.keep_alive),
            )

    def _healthz(self, request: Request) -> None:
        edge = self.edge
        ok = edge.healthy()
        body = dumps({"healthy": ok, "region": edge.config.region, "master": edge.follower.master})
        self._send(request, "healthz", response(200 if ok else 503, body))

    def _defective(self, request: Request, route: str) -> bool:
        """The bad build's failure (EdgeConfig.defect_error_ratio): True when it answered."""
        if random.random() >= self.edge.config.defect_error_ratio:  # noqa: S311 - not crypto
            return False
        self._send(request, route, json_error(500, "internal error"))
        return True

    def _drain(self, request: Request) -> None:
        if self.edge.token is None:
            self._send(request, "admin", json_error(404, "admin endpoints are not enabled"))
        elif not bearer_ok(request.headers.get("authorization"), self.edge.token):
            self.edge.rejected(REJECTIONS[401])
            self._send(request, "admin", json_error(401, "missing or wrong bearer token"))
        else:
            body = dumps({"drained": self.edge.drain()})
            self._send(request, "admin", response(200, body, keep_alive=request.keep_alive))

    def _static(self, request: Request, path: str) -> None:
        body = self.edge.web[path]
        content_type = STATIC[path][1] if path in STATIC else PAGE[1]
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
        if path == "/sw.js":
            headers["Service-Worker-Allowed"] = "/"
        self._send(
            request,
            "static",
            response(
                200,
                body,
                content_type=content_type,
                headers=headers,
                keep_alive=request.keep_alive,
                head_only=request.method == "HEAD",
            ),
        )

    async def _snapshot(self, request: Request, match_id: str) -> None:
        match = self.edge.match(match_id)
        if match is None:
            self._send(request, "snapshot", json_error(404, f"unknown match {match_id!r}"))
            return
        try:
            body = await self.edge.snapshot(match)
        except (RedisError, OSError):
            self._send(request, "snapshot", json_error(503, "score state unavailable"))
            return
        if body is None:
            self._send(
                request,
                "snapshot",
                json_error(404, f"no state yet for {match_id}", keep_alive=request.keep_alive),
            )
            return
        etag = f'"{match.match_id}-{match.last_seq}-{hash(body) & 0xFFFFFFFF:x}"'
        headers = {"ETag": etag, "Cache-Control": "max-age=1", "Access-Control-Allow-Origin": "*"}
        status = 304 if request.headers.get("if-none-match") == etag else 200
        self._send(
            request,
            "snapshot",
            response(
                status,
                body,
                headers=headers,
                keep_alive=request.keep_alive,
                head_only=request.method == "HEAD",
            ),
        )

    async def _stream(self, request: Request, match_id: str, *, ws: bool = False) -> None:
        assert self.transport is not None
        match = self.edge.match(match_id)
        if match is None:
            self._send(request, "stream", json_error(404, f"unknown match {match_id!r}"))
            return
        key = request.headers.get("sec-websocket-key")
        if ws and (
            request.headers.get("upgrade", "").lower() != "websocket" or not wsframe.valid_key(key)
        ):
            self._send(request, "stream", json_error(400, "expected a WebSocket upgrade"))
            return
        raw = request.headers.get("last-event-id", request.query.get("last_event_id"))
        last_event_id = None
        if raw not in (None, ""):
            if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_SEQ_DIGITS:
                self.edge.rejected("bad_last_event_id", f"Last-Event-ID {raw[:40]!r}")
                self._send(
                    request,
                    "stream",
                    json_error(400, f"Last-Event-ID {raw[:40]!r} is not a seq number"),
                )
                return
            last_event_id = int(raw)
        self.streaming, self.ws = True, ws
        self.fan_match = match
        if ws:
            self._count("stream", 101)
            self.transport.write(wsframe.handshake(key or ""))
        else:
            self._count("stream", 200)
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Cache-Control: no-store\r\nConnection: keep-alive\r\nX-Accel-Buffering: no\r\n"
                b"Access-Control-Allow-Origin: *\r\n\r\n"
                + b"retry: %d\n\n"
                % self.edge.config.retry_ms
            )
        await self.edge.subscribe(self.transport, match, last_event_id, ws=ws)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        if self.address is not None:
            self.edge.release(self.address)
            self.address = None
        if self.fan_match is not None:
            for fan in list(self.fan_match.fans):
                if fan.transport is self.transport:
                    self.edge.drop(fan, "client_closed")


async def serve(config: EdgeConfig) -> None:
    name = f"edge-{config.region}" if config.version == "stable" else f"edge-{config.version}"
    provider = setup_tracing(name, trace_dir=config.trace_dir)
    edge = Edge(config)
    while True:  # Redis may be failing over as the edge starts: keep asking
        try:
            await edge.load()
            break
        except (RedisError, OSError) as exc:
            log.warning("cannot load the score state yet: %s", exc)
            await edge.follower.invalidate()
            await asyncio.sleep(0.2)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: EdgeProtocol(edge),
        config.host,
        config.port,
        reuse_port=config.reuse_port,
        backlog=4096,
    )
    log.info("edge %s (%s): SSE on %s:%d", config.region, config.version, config.host, config.port)
    try:
        await run_all(edge.follow_forever(), edge.heartbeat_forever())
    finally:
        server.close()
        for match in edge.matches.values():
            for fan in list(match.fans):
                edge.drop(fan, "shutdown")
        await edge.follower.aclose()
        provider.shutdown()


if __name__ == "__main__":
    raise SystemExit(main("edge", EdgeConfig, serve))
