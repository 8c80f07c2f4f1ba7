"""Simulated fans: SSE clients that record every update they receive, as a browser would.

A fan keeps its stream open, reconnects after a drop with `Last-Event-ID` (as
EventSource does) after the server's `retry:` hint, and records each frame with the
time it arrived. Latency is read from the payload's timestamps, never from request time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from pipeline.model import parse_time

_propagator = TraceContextTextMapPropagator()


@dataclass(frozen=True)
class Receipt:
    seq: int
    data: dict[str, Any]
    received_at: datetime

    @property
    def latency_s(self) -> float:
        """Source occurred_at -> this fan, from the payload's own timestamp."""
        return (self.received_at - parse_time(self.data["occurred_at"])).total_seconds()


@dataclass
class FanHistory:
    fan_id: str
    region: str
    match_id: str
    receipts: list[Receipt] = field(default_factory=list)
    feed_events: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: int = 0
    connects: int = 0
    resumed_with_last_event_id: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def last_seq(self) -> int | None:
        return self.receipts[-1].seq if self.receipts else None


Router = Callable[[str, str], Awaitable[str]]
"""(region, fan id) -> the base URL of the edge to connect to (a load balancer's answer)."""


class Fan:
    """One fan of `match_id` on the edge at `base_url`, or wherever `router` sends it on
    each (re)connect."""

    def __init__(
        self,
        base_url: str,
        match_id: str,
        *,
        region: str = "",
        fan_id: str = "",
        last_event_id: int | None = None,
        connect_timeout_s: float = 5.0,
        tracer: trace.Tracer | None = None,
        router: Router | None = None,
    ) -> None:
        self.tracer = tracer
        """When given, every receipt is a `fan.receive` span in the update's trace."""
        self.router = router
        self.url = urlsplit(base_url)
        self.match_id = match_id
        self.history = FanHistory(fan_id or f"fan-{id(self):x}", region, match_id)
        self.last_event_id = last_event_id
        self.retry_s = 2.0
        self.connect_timeout_s = connect_timeout_s
        self.connected = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None

    async def run(self, stop: asyncio.Event) -> FanHistory:
        """Watch until `stop` is set, reconnecting after every drop."""
        while not stop.is_set():
            try:
                await self._session(stop)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                self.history.errors.append(f"{time.time():.3f} {exc.__class__.__name__}: {exc}")
            self.connected.clear()
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.retry_s)
        return self.history

    def drop(self) -> None:
        """Cut the connection from the fan's side (the fan will reconnect)."""
        if self._writer is not None:
            self._writer.transport.abort()

    async def _session(self, stop: asyncio.Event) -> None:
        if self.router is not None:
            self.url = urlsplit(await self.router(self.history.region, self.history.fan_id))
        host, port = self.url.hostname or "127.0.0.1", self.url.port or 80
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), self.connect_timeout_s
        )
        self._writer = writer
        try:
            headers = [
                f"GET /v1/matches/{self.match_id}/stream HTTP/1.1",
                f"Host: {host}",
                "Accept: text/event-stream",
                "Cache-Control: no-cache",
            ]
            if self.last_event_id is not None:
                headers.append(f"Last-Event-ID: {self.last_event_id}")
                self.history.resumed_with_last_event_id += 1
            writer.write(("\r\n".join(headers) + "\r\n\r\n").encode())
            status = await asyncio.wait_for(reader.readline(), self.connect_timeout_s)
            if b" 200 " not in status:
                raise ValueError(f"stream answered {status.decode(errors='replace').strip()}")
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            self.history.connects += 1
            self.connected.set()
            await self._read_events(reader, stop)
        finally:
            writer.close()
            self._writer = None

    async def _read_events(self, reader: asyncio.StreamReader, stop: asyncio.Event) -> None:
        fields: dict[str, str] = {}
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while True:
                line_task = asyncio.ensure_future(reader.readline())
                done, _ = await asyncio.wait(
                    {line_task, stopping}, return_when=asyncio.FIRST_COMPLETED
                )
                if line_task not in done:
                    line_task.cancel()
                    return
                raw = line_task.result()
                if not raw:
                    raise ConnectionResetError("stream closed by the edge")
                line = raw.decode().rstrip("\r\n")
                if line:
                    if line.startswith(":"):
                        self.history.heartbeats += 1
                    else:
                        name, _, value = line.partition(":")
                        fields[name] = value[1:] if value.startswith(" ") else value
                    continue
                self._dispatch(fields)
                fields = {}
        finally:
            stopping.cancel()

    def _dispatch(self, fields: dict[str, str]) -> None:
        now = datetime.now(UTC)
        if "retry" in fields and fields["retry"].isdigit():
            self.retry_s = int(fields["retry"]) / 1000
        if "id" in fields:
            self.last_event_id = int(fields["id"])
        if "data" not in fields:
            return
        data = json.loads(fields["data"])
        if fields.get("event") == "feed":
            self.history.feed_events.append(data)
        elif fields.get("event", "message") == "score":
            self.history.receipts.append(Receipt(int(data["seq"]), data, now))
            if self.tracer is not None:
                self._span(data, int(now.timestamp() * 1e9))

    def _span(self, data: dict[str, Any], at_ns: int) -> None:
        assert self.tracer is not None
        context = _propagator.extract({"traceparent": data.get("traceparent") or ""})
        attributes: dict[str, str | int] = {
            "region": self.history.region,
            "fan": self.history.fan_id,
            "seq": int(data["seq"]),
            "match_id": self.match_id,
        }
        span = self.tracer.start_span(
            "fan.receive", context=context, start_time=at_ns, attributes=attributes
        )
        span.end(end_time=at_ns)


async def watch(fans: list[Fan], stop: asyncio.Event) -> list[FanHistory]:
    """Run every fan until `stop`; return their histories."""
    return list(await asyncio.gather(*(fan.run(stop) for fan in fans)))


def receipts_json(histories: list[FanHistory]) -> dict[str, Any]:
    """Every receipt's event type, region and latency: `gameday slo report --client FILE`."""
    return {
        "receipts": [
            {
                "event_type": r.data.get("event", {}).get("type", ""),
                "region": h.region,
                "latency_s": r.latency_s,
            }
            for h in histories
            for r in h.receipts
        ]
    }
