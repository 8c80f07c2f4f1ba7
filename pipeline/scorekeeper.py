"""Kafka -> ordered apply to Redis -> the edges. The one writer of score state.

For each match the scorekeeper keeps the fold of everything applied so far. An event is
applied when its seq is the next one: older ones are dropped (counted), later ones wait
behind the gap for `gap_hold_ms`, then the gap is filled from the primary vendor's
replay (and the filled events are written to Kafka too, which stays the complete log).

Durability order, per event: Redis apply (atomic, seq-checked Lua) -> WAIT for the
replica -> audit log -> Kafka offset commit. A crash anywhere re-reads the event and
the seq check makes the replay harmless. A failover is followed through Sentinel; what
the new master lost is re-applied from memory by the apply itself or the reconciler.

An official's correction (pipeline/corrections/service.py) comes through Kafka too, and is
applied at once after the last event applied, unless `corrections.rules.refusal()` says
no. So one match has two sources; what fans get is one sequence: every applied event is
published with the next seq (the same as the vendor's until a correction takes one; the
vendor's own seq goes on ordering the vendor's events, filling gaps and the audit's
`source_seq`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from redis.exceptions import RedisError

from pipeline.audit import AuditLog
from pipeline.corrections.rules import refusal
from pipeline.model import OFFICIAL_TYPES, InvalidEvent, MatchEvent, ScoreState, format_time
from pipeline.offsets import OffsetTracker
from pipeline.redisconn import MasterFollower, target_of
from pipeline.scorestore import APPLIED, ScoreStore
from pipeline.sequencer import Sequencer
from pipeline.service import main, run_all, with_telemetry
from pipeline.telemetry import Metrics, dumps

log = logging.getLogger("scorekeeper")
REPLICA_RECHECK_S = 1.0
"""With no replica online, how long writes go unreplicated before WAIT is tried again."""


def _online_replicas(info: dict[str, Any]) -> int:
    """Replicas in INFO replication whose state is `online` (synced, streaming)."""
    return sum(
        1
        for key, value in info.items()
        if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
    )


propagator = TraceContextTextMapPropagator()


@dataclass(frozen=True, kw_only=True)
class ScorekeeperConfig:
    kafka_bootstrap: str
    topic: str
    feed_topic: str
    sentinels: tuple[str, ...]
    master_name: str
    replay_url: str
    audit_dir: Path
    metrics_port: int
    host: str = "127.0.0.1"
    """Where the metrics listen (0.0.0.0 only inside a container)."""
    group_id: str = "scorekeeper"
    group_instance_id: str | None = "scorekeeper-0"
    """Static group membership: a restarted scorekeeper takes its partitions back at once
    instead of waiting out the dead member's session (a rebalance)."""
    address_map: dict[str, str] = field(default_factory=dict)
    static_master: str | None = None
    trace_dir: Path | None = None
    gap_hold_ms: int = 200
    wait_replicas: int = 1
    wait_timeout_ms: int = 500
    reconcile_interval_s: float = 10.0
    commit_before_apply: bool = False
    """Drill switch: commit offsets before the Redis write (the bug drills must catch)."""


@dataclass
class Pending:
    event: MatchEvent
    partition: int
    offset: int
    feed: str
    carrier: dict[str, str]
    received_ns: int = 0
    """When the message left Kafka (time.time_ns()), for the consume span."""

    @property
    def seq(self) -> int:
        return self.event.seq


@dataclass
class MatchBook:
    """What the scorekeeper knows of one match: its fold and the payload of every seq."""

    state: ScoreState
    sequencer: Sequencer[Pending]
    payloads: dict[int, bytes] = field(default_factory=dict)
    gap_since: float | None = None
    vendor_ahead: int = 0


def _ids(event: MatchEvent) -> tuple[str, str]:
    return event.match_id, event.event_id


def _headers(message: Message) -> dict[str, str]:
    out: dict[str, str] = {}
    for header in message.headers() or []:
        key, value = header[0], header[1]
        out[str(key)] = value.decode() if isinstance(value, bytes) else str(value)
    return out


class Scorekeeper:
    def __init__(self, config: ScorekeeperConfig, *, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.follower = MasterFollower(target_of(config))
        self.audit = AuditLog(config.audit_dir)
        self.books: dict[str, MatchBook] = {}
        self.offsets = OffsetTracker()
        self.tracer = trace.get_tracer("gameday.scorekeeper")
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._http = httpx.AsyncClient(timeout=2.0)
        self._lock = asyncio.Lock()
        """One change at a time: events apply in order, the reconciler never interleaves."""
        self._unreplicated_until = 0.0
        fills = self.metrics.counter("gameday_scorekeeper_gap_fills_total")
        for result in ("gap", "reconcile", "empty", "error"):  # at 0, so a restart's first
            fills.labels(result=result)  # fill is an increase Prometheus can see

    # --- memory -----------------------------------------------------------------------

    def book(self, match_id: str) -> MatchBook:
        book = self.books.get(match_id)
        if book is None:
            state = ScoreState.new(match_id)
            book = self.books[match_id] = MatchBook(state, Sequencer(last_seq=0))
        return book

    def load_audit(self) -> None:
        """Rebuild every match from the audit trail (what was durably applied before)."""
        for match_id in self.audit.matches():
            book, vendor_seq = self.book(match_id), 0
            for event, context in self.audit.records(match_id):
                if event.seq == book.state.seq + 1:
                    book.state = book.state.apply(event)
                    if event.type not in OFFICIAL_TYPES:
                        vendor_seq = int(context.get("source_seq", event.seq))
                    book.payloads[event.seq] = self._payload(
                        book.state,
                        str(context.get("feed", "primary")),
                        str(context.get("published_at", "")),
                        context.get("traceparent"),
                    )
            book.sequencer = Sequencer(last_seq=vendor_seq)
            log.info("%s: rebuilt from the audit trail up to seq %d", match_id, book.state.seq)

    # --- Redis ------------------------------------------------------------------------

    async def _store(self) -> ScoreStore:
        return ScoreStore(await self.follower.client())

    async def _redis(self, what: str, attempt: Any) -> Any:
        """Run `attempt(store)` until it succeeds, following failovers; never gives up."""
        delay = 0.05
        while True:
            try:
                return await attempt(await self._store())
            except (RedisError, OSError) as exc:
                self.metrics.counter("gameday_scorekeeper_redis_retries_total").labels(
                    reason="error"
                ).inc()
                log.warning("redis %s failed (%s); following the master", what, exc)
                moved = await self.follower.reconnect(after_s=delay)
                delay = min(delay * 2, 0.5)
                if moved:
                    self.metrics.counter("gameday_redis_failovers_followed_total").labels(
                        service="scorekeeper"
                    ).inc()

    async def _durable_apply(self, book: MatchBook, seq: int) -> None:
        """Make Redis hold every seq up to `seq` of this match, replicated."""
        match_id = book.state.match_id

        async def attempt(store: ScoreStore) -> None:
            while True:
                held = await store.apply(match_id, seq, book.payloads[seq])
                if held == APPLIED or held >= seq:
                    break
                if held < seq - 1:  # the master lost writes (a failover): re-apply them
                    self.metrics.counter("gameday_reconcile_corrections_total").labels(
                        kind="reapplied_after_failover"
                    ).inc(seq - 1 - held)
                    for missing in range(held + 1, seq):
                        await store.apply(match_id, missing, book.payloads[missing])
            await self._replicated(store)

        await self._redis("apply", attempt)

    async def _replicated(self, store: ScoreStore) -> None:
        """WAIT for the replica. With no replica online (none connected, or one still in
        its initial sync, which acknowledges nothing until it is done), carry on without
        waiting, counted, and look again after REPLICA_RECHECK_S: a rejoining replica
        must not stall every write for the length of its sync."""
        want = self.config.wait_replicas
        if time.monotonic() < self._unreplicated_until:
            self._retry("no_replica")
            return
        for _ in range(3):
            if await store.wait_replicas(want, self.config.wait_timeout_ms) >= want:
                return
            self._retry("wait")
            online = _online_replicas(await store.client.info("replication"))
            if online < want:
                log.warning("%d replica(s) online: applying without replication", online)
                self._unreplicated_until = time.monotonic() + REPLICA_RECHECK_S
                return
        raise RedisError(
            f"WAIT: no replica acknowledged within {3 * self.config.wait_timeout_ms} ms"
        )

    def _retry(self, reason: str) -> None:
        self.metrics.counter("gameday_scorekeeper_redis_retries_total").labels(reason=reason).inc()

    # --- applying events --------------------------------------------------------------

    async def handle(self, pending: Pending) -> None:
        async with self._lock:
            await self._handle(pending)

    async def _handle(self, pending: Pending) -> None:
        book = self.book(pending.event.match_id)
        if pending.event.type in OFFICIAL_TYPES:
            await self._official(book, pending)
            return
        offered = book.sequencer.offer(pending)
        if offered.dropped is not None:
            self.metrics.counter("gameday_scorekeeper_rejected_total").labels(
                reason=offered.dropped
            ).inc()
            self.offsets.finished(pending.partition, pending.offset)
            return
        for ready in offered.ready:
            await self.apply(book, ready)
        book.gap_since = None if book.sequencer.held == 0 else (book.gap_since or time.monotonic())

    async def _official(self, book: MatchBook, pending: Pending) -> None:
        """A correction goes right after the last event applied, or nowhere."""
        refused = refusal(book.state, pending.event)
        if refused is not None:
            self.metrics.counter("gameday_scorekeeper_rejected_total").labels(
                reason=f"correction_{refused}"
            ).inc()
            log.warning("%s: correction %s refused: %s", *_ids(pending.event), refused)
            self.offsets.finished(pending.partition, pending.offset)
            return
        last = book.payloads.get(book.state.seq)  # fans keep the feed they were on
        pending.feed = str(json.loads(last).get("feed", "primary")) if last else "primary"
        await self.apply(book, pending)

    async def apply(self, book: MatchBook, pending: Pending) -> None:
        source_seq = pending.event.seq
        event = pending.event
        if event.seq != book.state.seq + 1:  # fans get the next seq (corrections took some)
            event = replace(event, seq=book.state.seq + 1)
        context = propagator.extract(pending.carrier)
        attributes: dict[str, str | int] = {
            "match_id": event.match_id,
            "seq": event.seq,
            "event_type": event.type,
        }
        if pending.received_ns:  # from Kafka to here: fetch, then any wait behind a gap
            self.tracer.start_span(
                "kafka.consume",
                context=context,
                attributes=attributes,
                start_time=pending.received_ns,
            ).end()
        carrier: dict[str, str] = {}
        with self.tracer.start_as_current_span(
            "scorekeeper.apply", context=context, attributes=attributes
        ):
            book.state = book.state.apply(event)
            published_at = format_time(datetime.now(UTC))
            if self.config.commit_before_apply:
                self.offsets.finished(pending.partition, pending.offset)
                self.commit()
            # The hand-off to the edges is the Redis write itself (the update stream):
            # its span is the parent of everything the edges and fans do with the update.
            with self.tracer.start_as_current_span("redis.handoff", attributes=attributes):
                propagator.inject(carrier)
                book.payloads[event.seq] = self._payload(
                    book.state, pending.feed, published_at, carrier.get("traceparent")
                )
                started = time.perf_counter()
                await self._durable_apply(book, event.seq)
                self.metrics.histogram("gameday_scorekeeper_apply_seconds").observe(
                    time.perf_counter() - started
                )
        self.audit.append(
            event,
            feed=pending.feed,
            partition=pending.partition,
            offset=pending.offset,
            traceparent=carrier.get("traceparent"),
            published_at=published_at,
            **({} if event.type in OFFICIAL_TYPES else {"source_seq": source_seq}),
        )
        self.metrics.counter("gameday_scorekeeper_applied_total").labels(
            event_type=event.type
        ).inc()
        self.offsets.finished(pending.partition, pending.offset)
        self.commit()

    @staticmethod
    def _payload(state: ScoreState, feed: str, published_at: str, traceparent: object) -> bytes:
        """What fans receive for this state (DESIGN.md, "What a fan receives")."""
        return dumps(
            {
                **state.to_json(),
                "feed": feed,
                "delayed": feed == "fallback",
                "published_at": published_at,
                "traceparent": traceparent,
            }
        )

    def commit(self) -> None:
        points = self.offsets.committable()
        if not points or self._consumer is None:
            return
        self._consumer.commit(
            offsets=[TopicPartition(self.config.topic, p, o) for p, o in points.items()],
            asynchronous=True,
        )
        for partition, offset in points.items():
            self.offsets.committed(partition, offset)

    async def handle_feed_status(self, value: bytes) -> None:
        async def attempt(store: ScoreStore) -> None:
            await store.set_feed(value)

        async with self._lock:
            await self._redis("feed", attempt)

    # --- gaps and reconciliation ------------------------------------------------------

    async def vendor_events(self, match_id: str, after: int) -> list[MatchEvent]:
        url = f"{self.config.replay_url}/v1/matches/{match_id}/events"
        response = await self._http.get(url, params={"after": after})
        response.raise_for_status()
        events = []
        for raw in response.json():
            try:
                events.append(MatchEvent.parse(raw))
            except InvalidEvent as exc:
                log.warning("vendor replay sent an invalid event (%s): %r", exc, raw)
        return events

    async def fill(self, book: MatchBook, upto: int, reason: str) -> None:
        """Fetch seqs after the applied one up to `upto` from the vendor and apply them."""
        match_id = book.state.match_id
        try:
            events = await self.vendor_events(match_id, book.sequencer.last_seq)
        except (httpx.HTTPError, ValueError) as exc:
            self.metrics.counter("gameday_scorekeeper_gap_fills_total").labels(result="error").inc()
            log.warning("%s: gap fill from the vendor failed: %s", match_id, exc)
            return
        wanted = [e for e in events if e.seq <= upto]
        self.metrics.counter("gameday_scorekeeper_gap_fills_total").labels(
            result=reason if wanted else "empty"
        ).inc(max(len(wanted), 1))
        for event in wanted:
            self._log_to_kafka(event)
            await self.handle(Pending(event, -1, -1, "primary", {}))

    def _log_to_kafka(self, event: MatchEvent) -> None:
        """Kafka stays the complete log: filled events are produced like ingested ones."""
        if self._producer is not None:
            self._producer.produce(
                self.config.topic,
                key=event.match_id.encode(),
                value=event.encode(),
                headers=[("source", b"gapfill"), ("feed", b"primary")],
            )
            self._producer.poll(0)

    async def watch_gaps(self) -> None:
        hold_s = self.config.gap_hold_ms / 1000
        while True:
            await asyncio.sleep(hold_s / 4)
            now = time.monotonic()
            for book in list(self.books.values()):
                missing = book.sequencer.missing()
                if missing and book.gap_since is not None and now - book.gap_since >= hold_s:
                    await self.fill(book, missing.stop - 1, "gap")
                    book.gap_since = now if book.sequencer.held else None

    async def reconcile(self) -> None:
        """Compare Redis with what was applied; catch up with a vendor the stream missed."""
        for book in list(self.books.values()):
            match_id = book.state.match_id
            vendor_seq = book.sequencer.last_seq  # the vendor's numbering, not the fans'
            if book.vendor_ahead > vendor_seq:  # ahead a whole interval: the tail was lost
                await self.fill(book, book.vendor_ahead, "reconcile")
            try:
                events = await self.vendor_events(match_id, book.sequencer.last_seq)
                book.vendor_ahead = max((e.seq for e in events), default=0)
            except (httpx.HTTPError, ValueError):
                book.vendor_ahead = 0
            await self._check_redis(book)

    async def _check_redis(self, book: MatchBook) -> None:
        if book.state.seq == 0:
            return
        async with self._lock:
            await self._reconcile_redis(book)

    async def _reconcile_redis(self, book: MatchBook) -> None:
        match_id, seq = book.state.match_id, book.state.seq

        async def attempt(store: ScoreStore) -> tuple[int, bytes | None]:
            return await store.last_seq(match_id), await store.state(match_id)

        held, state = await self._redis("reconcile", attempt)
        corrections = self.metrics.counter("gameday_reconcile_corrections_total")
        if held < seq:
            corrections.labels(kind="redis_behind").inc(seq - held)
            await self._durable_apply(book, seq)
        elif held > seq:
            corrections.labels(kind="redis_ahead").inc()
            log.error("%s: Redis holds seq %d, beyond the %d applied", match_id, held, seq)
        elif state != book.payloads.get(seq, state):
            corrections.labels(kind="state_drift").inc()

            async def repair(store: ScoreStore) -> None:
                await store.set_state(match_id, book.payloads[seq])

            await self._redis("repair", repair)

    async def reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.reconcile_interval_s)
            try:
                await self.reconcile()
                self.metrics.counter("gameday_reconcile_runs_total").labels(result="ok").inc()
            except Exception:
                self.metrics.counter("gameday_reconcile_runs_total").labels(result="error").inc()
                log.exception("reconcile pass failed")

    # --- Kafka ------------------------------------------------------------------------

    async def consume_forever(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        loop = asyncio.get_running_loop()

        def fetch() -> list[Message]:
            # Wait for the first message only, then take what else is already there:
            # consume(n, timeout) would hold the first one back until n arrive.
            first = consumer.poll(0.1)
            if first is None:
                return []
            return [first, *consumer.consume(num_messages=499, timeout=0)]

        while True:
            for message in await loop.run_in_executor(None, fetch):
                await self._on_message(message)

    async def _on_message(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("kafka: %s", error)
            return
        value = message.value() or b""
        if message.topic() == self.config.feed_topic:
            await self.handle_feed_status(value)
            return
        partition, offset = message.partition(), message.offset()
        if partition is None or offset is None:
            return
        self.offsets.started(partition, offset)
        headers = _headers(message)
        try:
            event = MatchEvent.parse_any(value)
        except InvalidEvent as exc:
            self.metrics.counter("gameday_scorekeeper_rejected_total").labels(
                reason="invalid"
            ).inc()
            log.error("invalid event in Kafka at %d/%d: %s", partition, offset, exc)
            self.offsets.finished(partition, offset)
            return
        await self.handle(
            Pending(
                event,
                partition,
                offset,
                headers.get("feed", "primary"),
                {"traceparent": headers.get("traceparent", "")},
                received_ns=time.time_ns(),
            )
        )

    async def report_lag_forever(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        gauge = self.metrics.gauge("gameday_kafka_consumer_lag")
        loop = asyncio.get_running_loop()

        def lag() -> dict[int, int]:
            out = {}
            mine = [tp for tp in consumer.assignment() if tp.topic == self.config.topic]
            committed = {tp.partition: tp.offset for tp in consumer.committed(mine, timeout=1)}
            for tp in consumer.position(mine):
                _, high = consumer.get_watermark_offsets(tp, timeout=1, cached=False)
                # No position yet (nothing fetched since the start): the committed offset
                # is where it will resume; with neither, everything is still to read.
                at = tp.offset if tp.offset >= 0 else committed.get(tp.partition, -1)
                out[tp.partition] = max(0, high - at) if at >= 0 else high
            return out

        while True:
            try:
                for partition, value in (await loop.run_in_executor(None, lag)).items():
                    gauge.labels(partition=str(partition)).set(value)
            except Exception as exc:  # a metric must never stop the scorekeeper
                log.debug("lag: %s", exc)
            await asyncio.sleep(1.0)

    async def run(self) -> None:
        cfg = self.config
        self.load_audit()
        self._consumer = Consumer(
            {
                "bootstrap.servers": cfg.kafka_bootstrap,
                "group.id": cfg.group_id,
                **({"group.instance.id": cfg.group_instance_id} if cfg.group_instance_id else {}),
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 10,
                "enable.partition.eof": False,
            }
        )
        self._producer = Producer(
            {
                "bootstrap.servers": cfg.kafka_bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 0,
            }
        )
        self._consumer.subscribe([cfg.topic, cfg.feed_topic])
        try:
            await run_all(
                self.consume_forever(),
                self.watch_gaps(),
                self.reconcile_forever(),
                self.report_lag_forever(),
            )
        finally:
            self.commit()
            self._consumer.close()
            self._producer.flush(5)
            self.audit.close()
            await self.follower.aclose()
            await self._http.aclose()


async def serve(config: ScorekeeperConfig) -> None:
    keeper = Scorekeeper(config)
    await with_telemetry(
        "scorekeeper",
        trace_dir=config.trace_dir,
        metrics_port=config.metrics_port,
        host=config.host,
        registry=keeper.metrics.registry,
        work=keeper.run(),
    )


if __name__ == "__main__":
    raise SystemExit(main("scorekeeper", ScorekeeperConfig, serve))
