"""Vendor stream -> validate -> dedupe -> Kafka, and the feed watchdog.

Ingest reads the primary vendor's push stream through its Toxiproxy link. Every packet
is validated (a bad one is counted by reason and logged, never forwarded); a valid event
whose event_id was already ingested is dropped; the rest is produced to Kafka keyed by
match_id with an idempotent producer (acks=all, linger 0), in the order read.

The watchdog: when the primary has sent nothing (not even a heartbeat) for
`silence_threshold_s`, or is unreachable that long, ingest switches to the fallback
vendor, polled every `fallback_poll_interval_s`, and tells the scorekeeper (a record on
the feed-status topic) so fans see `feed: fallback, delayed: true`. When the primary
speaks again it switches back; dedupe makes the overlap harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from aiohttp import web
from confluent_kafka import KafkaError, Message
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from pipeline.auth import bearer_ok, error, read_token
from pipeline.dedupe import Deduper
from pipeline.feed.secondary import parse_matches_xml, read_match_xml
from pipeline.model import REASONS, InvalidEvent, MatchEvent, format_time
from pipeline.producer import PolledProducer
from pipeline.service import main, run_all, with_telemetry
from pipeline.telemetry import Metrics, dumps

log = logging.getLogger("ingest")
propagator = TraceContextTextMapPropagator()
MAX_LINE = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class IngestConfig:
    primary_url: str
    secondary_url: str
    kafka_bootstrap: str
    topic: str
    feed_topic: str
    metrics_port: int
    host: str = "127.0.0.1"
    """Where the metrics and the control API listen (0.0.0.0 only inside a container)."""
    trace_dir: Path | None = None
    silence_threshold_s: float = 3.0
    fallback_poll_interval_s: float = 15.0
    fallback_enabled: bool = True
    """Drill switch: with False the watchdog never switches (drills must catch it)."""
    dedupe_enabled: bool = True
    """Drill switch: with False duplicates go to Kafka (the scorekeeper must still cope)."""
    dedupe_capacity: int = 1_000_000
    control_port: int | None = None
    """Serves `POST /v1/feed/fallback` (bearer token) for the rollout controller."""
    admin_token_file: Path | None = None
    forced_fallback_hold_s: float = 30.0
    """A fallback an operator (or the controller, on an alert) asked for lasts at least
    this long before the watchdog may switch back to the primary."""


class KafkaOut:
    """The pipeline's producer (pipeline.producer); delivery outcomes become metrics."""

    def __init__(self, bootstrap: str, metrics: Metrics) -> None:
        self.metrics = metrics
        self.producer = PolledProducer(bootstrap, message_timeout_ms=120_000)
        self.failed = 0

    def produce(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        headers: dict[str, str],
        span: trace.Span | None = None,
    ) -> None:
        started = time.perf_counter()

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                self.failed += 1
                log.error("kafka delivery failed for key %s: %s", key.decode(), error)
            else:
                self.metrics.histogram("gameday_kafka_produce_seconds").observe(
                    time.perf_counter() - started
                )
            if span is not None:
                span.end()

        self.producer.produce(topic, key, value, headers, delivered)

    def close(self) -> None:
        self.producer.close(flush_s=10)


class LineSplitter:
    """Raw lines of a byte stream, kept as sent (invalid UTF-8 included), each bounded.

    A line longer than MAX_LINE is cut: its first MAX_LINE bytes come out once (to be
    refused as oversized) and the rest of it, up to its newline, is skipped, so no part
    of an over-long line is ever read as a packet of its own.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._skipping = False

    def feed(self, chunk: bytes) -> list[bytes]:
        out: list[bytes] = []
        self._buffer += chunk
        while (cut := self._buffer.find(b"\n")) >= 0:
            if not self._skipping:
                out.append(self._buffer[:cut])
            self._skipping = False
            self._buffer = self._buffer[cut + 1 :]
        if len(self._buffer) > MAX_LINE:
            if not self._skipping:
                out.append(self._buffer[:MAX_LINE])
            self._buffer, self._skipping = b"", True
        return out


async def lines(response: httpx.Response) -> AsyncIterator[bytes]:
    """Raw lines of a streamed body (LineSplitter)."""
    splitter = LineSplitter()
    async for chunk in response.aiter_raw():
        for line in splitter.feed(chunk):
            yield line


class Ingest:
    def __init__(self, config: IngestConfig, *, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.dedupe = Deduper(config.dedupe_capacity)
        self.tracer = trace.get_tracer("gameday.ingest")
        self.kafka: KafkaOut | None = None
        self.connected = False
        self.last_heard = time.monotonic()
        self.fallback = False
        self.held_until = 0.0
        """monotonic time before which only a forced fallback's hold keeps the fallback."""
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=None))
        for reason in REASONS:  # at 0, so that the first rejection is an increase
            self.metrics.counter("gameday_ingest_rejected_total").labels(reason=reason)

    # --- one packet -------------------------------------------------------------------

    def accept(self, packet: bytes, feed: str) -> bool:
        """Validate, dedupe and produce one packet. True when it went to Kafka."""
        with self.tracer.start_as_current_span("vendor.receive") as root:
            root.set_attribute("feed", feed)
            with self.tracer.start_as_current_span("ingest.validate_dedupe") as check:
                try:
                    event = MatchEvent.parse(packet)
                except InvalidEvent as exc:
                    self._reject(exc, packet, feed)
                    check.set_attribute("rejected", exc.reason)
                    return False
                except Exception as exc:  # a parser bug must not stop the stream
                    log.exception("parser failed on %r", packet[:200])
                    self._reject(InvalidEvent("internal_error", repr(exc)), packet, feed)
                    return False
                duplicate = self.config.dedupe_enabled and self.dedupe.seen(event.event_id)
            root.set_attribute("match_id", event.match_id)
            root.set_attribute("seq", event.seq)
            root.set_attribute("event_type", event.type)
            if duplicate:
                self.metrics.counter("gameday_ingest_duplicates_dropped_total").labels(
                    feed=feed
                ).inc()
                self.metrics.counter("gameday_ingest_packets_total").labels(
                    feed=feed, outcome="duplicate"
                ).inc()
                return False
            self.produce(event, feed)
        self.metrics.counter("gameday_ingest_packets_total").labels(
            feed=feed, outcome="accepted"
        ).inc()
        return True

    def produce(self, event: MatchEvent, feed: str) -> None:
        assert self.kafka is not None
        span = self.tracer.start_span("kafka.produce")
        carrier: dict[str, str] = {}
        propagator.inject(carrier, context=trace.set_span_in_context(span))
        headers = {
            **carrier,
            "feed": feed,
            "source": feed,
            "ingested_at": format_time(datetime.now(UTC)),
        }
        self.kafka.produce(
            self.config.topic, event.match_id.encode(), event.encode(), headers, span
        )

    def _reject(self, error: InvalidEvent, packet: bytes, feed: str) -> None:
        self.metrics.counter("gameday_ingest_rejected_total").labels(reason=error.reason).inc()
        self.metrics.counter("gameday_ingest_packets_total").labels(
            feed=feed, outcome="rejected"
        ).inc()
        log.warning("rejected packet (%s): %s: %r", error.reason, error, packet[:200])

    # --- the primary stream -----------------------------------------------------------

    async def read_primary_forever(self) -> None:
        delay = 0.1
        connected_gauge = self.metrics.gauge("gameday_feed_primary_connected")
        while True:
            try:
                url = f"{self.config.primary_url}/v1/stream"
                async with self._http.stream("GET", url) as response:
                    response.raise_for_status()
                    self.connected, delay = True, 0.1
                    connected_gauge.set(1)
                    log.info("connected to the primary stream")
                    async for line in lines(response):
                        self.last_heard = time.monotonic()
                        if line.strip():
                            self.accept(line, "primary")
            except (httpx.HTTPError, OSError) as exc:
                log.warning("primary stream: %s: %s", exc.__class__.__name__, exc)
            self.connected = False
            connected_gauge.set(0)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    # --- the watchdog and the fallback vendor -----------------------------------------

    def primary_healthy(self) -> bool:
        return (
            self.connected and time.monotonic() - self.last_heard < self.config.silence_threshold_s
        )

    async def watchdog_forever(self) -> None:
        age = self.metrics.gauge("gameday_feed_last_packet_age_seconds")
        next_poll = 0.0
        while True:
            await asyncio.sleep(0.1)
            age.set(time.monotonic() - self.last_heard)
            healthy = self.primary_healthy()
            if not healthy and not self.fallback and self.config.fallback_enabled:
                self.switch(fallback=True)
                next_poll = 0.0
            elif healthy and self.fallback and time.monotonic() >= self.held_until:
                self.switch(fallback=False)
            if self.fallback and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.config.fallback_poll_interval_s
                await self.poll_secondary()

    def force_fallback(self, reason: str) -> tuple[int, dict[str, object]]:
        """Switch to the fallback vendor now and hold it (the controller's alert path).
        Returns an HTTP status and body: 409 when fallback is disabled by configuration."""
        if not self.config.fallback_enabled:
            log.warning("fallback asked for (%s) but disabled by configuration", reason)
            return 409, {"error": "fallback is disabled by configuration (fallback_enabled)"}
        changed = not self.fallback
        self.held_until = time.monotonic() + self.config.forced_fallback_hold_s
        if changed:
            log.warning("fallback forced: %s", reason)
            self.switch(fallback=True)
        return 200, {"mode": "fallback", "changed": changed, "reason": reason}

    def switch(self, *, fallback: bool) -> None:
        self.fallback = fallback
        mode = "fallback" if fallback else "primary"
        log.warning("feed mode -> %s", mode)
        self.metrics.gauge("gameday_feed_mode").set(1 if fallback else 0)
        self.metrics.counter("gameday_feed_mode_changes_total").labels(to=mode).inc()
        assert self.kafka is not None
        status = {"feed": mode, "delayed": fallback, "since": format_time(datetime.now(UTC))}
        self.kafka.produce(self.config.feed_topic, b"feed", dumps(status), {})

    async def poll_secondary(self) -> None:
        """Every match the fallback vendor lists, each on its own: a match whose document
        cannot be read does not keep the others back, nor a bad event the good ones."""
        polls = self.metrics.counter("gameday_fallback_polls_total")
        base = self.config.secondary_url
        try:
            listing = await self._http.get(f"{base}/v1/matches.xml")
            listing.raise_for_status()
            match_ids = parse_matches_xml(listing.content)
        except (httpx.HTTPError, ValueError) as exc:
            polls.labels(result="error").inc()
            log.warning("fallback poll failed: %s", exc)
            return
        failed = False
        for match_id in match_ids:
            try:
                document = await self._http.get(f"{base}/v1/matches/{match_id}.xml")
                document.raise_for_status()
                items = read_match_xml(document.content)
            except (httpx.HTTPError, ValueError) as exc:
                failed = True
                log.warning("fallback poll of %s failed: %s", match_id, exc)
                continue
            for item in items:
                if isinstance(item, InvalidEvent):
                    self._reject(item, f"<{match_id}.xml event>".encode(), "fallback")
                else:
                    self.accept(item.encode(), "fallback")
        polls.labels(result="error" if failed else "ok").inc()

    async def run(self) -> None:
        self.kafka = KafkaOut(self.config.kafka_bootstrap, self.metrics)
        self.metrics.gauge("gameday_feed_mode").set(0)
        try:
            await run_all(self.read_primary_forever(), self.watchdog_forever())
        finally:
            await self._http.aclose()
            self.kafka.close()


def control_app(ingest: Ingest, token: str) -> web.Application:
    """`POST /v1/feed/fallback {"reason": ...}` (bearer token); `GET /v1/feed`."""

    async def fallback(request: web.Request) -> web.Response:
        if not bearer_ok(request.headers.get("Authorization"), token):
            return error(401, "missing or wrong bearer token")
        try:
            body = await request.json()
            reason = str(body.get("reason", "unspecified"))[:200]
        except (ValueError, AttributeError, RecursionError):
            return error(400, 'expected a JSON object {"reason": "..."}')
        status, answer = ingest.force_fallback(reason)
        return web.json_response(answer, status=status)

    async def mode(_request: web.Request) -> web.Response:
        held = max(0.0, ingest.held_until - time.monotonic())
        return web.json_response(
            {"mode": "fallback" if ingest.fallback else "primary", "held_s": round(held, 1)}
        )

    app = web.Application(client_max_size=16 * 1024)
    app.router.add_post("/v1/feed/fallback", fallback)
    app.router.add_get("/v1/feed", mode)
    return app


async def serve(config: IngestConfig) -> None:
    ingest = Ingest(config)
    runner: web.AppRunner | None = None
    if config.control_port is not None and config.admin_token_file is not None:
        runner = web.AppRunner(control_app(ingest, read_token(config.admin_token_file)))
        await runner.setup()
        await web.TCPSite(runner, config.host, config.control_port).start()
    try:
        await with_telemetry(
            "ingest",
            trace_dir=config.trace_dir,
            metrics_port=config.metrics_port,
            host=config.host,
            registry=ingest.metrics.registry,
            work=ingest.run(),
        )
    finally:
        if runner is not None:
            await runner.cleanup()


if __name__ == "__main__":
    raise SystemExit(main("ingest", IngestConfig, serve))
