"""Source -> fan latency: a scripted match played to N fans spread over the regions' edges.

Each fan is an SSE client that timestamps every frame on arrival; latency is that time
minus the event's `occurred_at` (the moment the stadium posted it), so every hop counts:
feed, ingest, Kafka, scorekeeper, Redis + WAIT, the edge, the socket. The fans run in
this process, on the same two cores as the pipeline, which a production fan does not:
the figures are an upper bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from chaos.delivery import DeliveryReport, check_delivery
from chaos.fans import Fan, watch
from chaos.stats import quantile
from loadtests.bench.report import provenance
from pipeline import env
from pipeline.deploy import LocalDeployment, Tools
from pipeline.feed.script import load_script, play
from pipeline.model import MatchEvent, format_time


@dataclass
class LatencyResult:
    fans: int
    events: int
    samples: list[float]
    delivery: DeliveryReport

    def quantile(self, q: float) -> float:
        found = quantile(self.samples, q)
        return float("nan") if found is None else found


async def _warm_up(endpoints: dict[str, Any], token: str) -> None:
    """One event through every hop first: producer metadata, the consumer group join and
    the edges' first reads are start-up costs, not latency."""
    match_id = f"gha-pan-warmup{uuid.uuid4().hex[:6]}"
    script = replace(load_script("gha-pan"), match_id=match_id)
    first = script.to_events(datetime.now(UTC), "warmup")[:1]
    watchers = [Fan(url, match_id) for url in endpoints["edges"].values()]
    stop = asyncio.Event()
    watching = asyncio.create_task(watch(watchers, stop))
    async with httpx.AsyncClient(timeout=10) as client:
        await client.post(
            f"{endpoints['feed_control']}/v1/matches/{match_id}/events",
            json=[first[0].to_json()],
            headers={"Authorization": f"Bearer {token}"},
        )
    for _ in range(300):
        if all(w.history.receipts for w in watchers):
            break
        await asyncio.sleep(0.1)
    stop.set()
    await watching


async def _measure(
    endpoints: dict[str, Any], fans: int, speed: float, progress: Callable[[str], None]
) -> LatencyResult:
    match_id = f"gha-pan-{uuid.uuid4().hex[:8]}"
    edges = list(endpoints["edges"].values())
    crowd = [Fan(edges[i % len(edges)], match_id, fan_id=f"fan-{i}") for i in range(fans)]
    stop = asyncio.Event()
    watching = asyncio.create_task(watch(crowd, stop))
    deadline = asyncio.get_running_loop().time() + 60
    while sum(f.connected.is_set() for f in crowd) < fans:
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(
                f"only {sum(f.connected.is_set() for f in crowd)} of {fans} "
                "fans connected within 60 s"
            )
        await asyncio.sleep(0.1)
    token = Path(endpoints["admin_token_file"]).read_text().strip()
    await _warm_up(endpoints, token)
    progress(f"{fans} fans connected; playing {match_id}")
    script = replace(load_script("gha-pan"), match_id=match_id)
    source = await play(script, control_url=endpoints["feed_control"], token=token, speed=speed)
    last = source[-1].seq
    deadline = asyncio.get_running_loop().time() + 30
    while any(f.history.last_seq != last for f in crowd):
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.1)
    stop.set()
    histories = await watching
    samples = [r.latency_s for h in histories for r in h.receipts]
    return LatencyResult(fans, len(source), samples, check_delivery(histories, source))


@contextlib.asynccontextmanager
async def fresh_stack(
    progress: Callable[[str], None], *, tools: Tools | None = None, label: str = ""
) -> AsyncIterator[LocalDeployment]:
    """A fresh local stack in a temporary directory, warmed up, stopped (by PID) on the
    way out."""
    with tempfile.TemporaryDirectory(prefix="gameday-bench-") as tmp:
        deployment = LocalDeployment(run_dir=Path(tmp) / "run", tools=tools)
        try:
            progress(f"{label}starting a fresh local stack")
            await deployment.up()
            await warm_up(deployment.endpoints())
            yield deployment
        finally:
            await deployment.down()


async def warm_up(endpoints: dict[str, Any], *, events: int = 5, timeout_s: float = 30.0) -> None:
    """Send a few events through a fresh stack until every edge serves the last one.

    The first event through a new stack pays once for what a running pipeline has done
    long before: the producer's id and metadata from the broker, the consumer's first
    fetch, connections. Measured, it made one update of the first run about a second late.
    """
    match_id = "gha-pan-warmup"
    token = Path(endpoints["admin_token_file"]).read_text().strip()
    async with httpx.AsyncClient(timeout=10) as client:
        await client.post(
            f"{endpoints['feed_control']}/v1/matches/{match_id}/events",
            json=[e.to_json() for e in burst(match_id, events)],
            headers={"Authorization": f"Bearer {token}"},
        )
        deadline = asyncio.get_running_loop().time() + timeout_s
        for edge in endpoints["edges"].values():
            while True:
                answer = await client.get(f"{edge}/v1/matches/{match_id}")
                if answer.status_code == 200 and answer.json().get("seq") == events:
                    break
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"the warm-up match did not reach {edge} in {timeout_s:g}s")
                await asyncio.sleep(0.1)


def measure_latency(
    fans: int, *, speed: float = 300.0, progress: Callable[[str], None] = lambda _: None
) -> LatencyResult:
    """Start a fresh local stack, measure, stop it."""

    async def run() -> LatencyResult:
        async with fresh_stack(progress, tools=Tools.load()) as deployment:
            return await _measure(deployment.endpoints(), fans, speed, progress)

    return asyncio.run(run())


def markdown(results: list[LatencyResult], *, command: str) -> str:
    lines = [
        "## Source -> fan latency (SSE)",
        "",
        "A scripted match (29 events) played while N fans, spread evenly over the three "
        "regions' edges, hold SSE streams. Latency per received update = arrival at the fan "
        "minus the event's `occurred_at` (when the stadium posted it). The fans run on the "
        "same 2 cores as Kafka, Redis and the pipeline.",
        "",
        *provenance(command),
        "",
        "| fans | updates received | p50 | p90 | p99 | max | lost | duplicated | out of order |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ms = [f"{r.quantile(q) * 1000:.0f} ms" for q in (0.5, 0.9, 0.99)]
        lines.append(
            f"| {r.fans} | {len(r.samples)} | {' | '.join(ms)} | "
            f"{max(r.samples) * 1000:.0f} ms | {r.delivery.lost} | "
            f"{r.delivery.duplicated} | {r.delivery.out_of_order} |"
        )
    return "\n".join(lines) + "\n"


def burst(match_id: str, n: int) -> list[MatchEvent]:
    """A kickoff and then n - 1 cards and substitutions, all happening now."""
    now = format_time(datetime.now(UTC))
    kinds = ("yellow_card", "substitution")
    return [
        MatchEvent.parse(
            {
                "event_id": f"{match_id}-b{seq}",
                "match_id": match_id,
                "seq": seq,
                "type": "kickoff" if seq == 1 else kinds[seq % 2],
                "team": None if seq == 1 else "GHA",
                "minute": 1,
                "occurred_at": now,
            }
        )
        for seq in range(1, n + 1)
    ]


async def _throughput(endpoints: dict[str, Any], events: int) -> float:
    """Events per second through the whole pipeline: a burst posted at once, timed until
    a fan on every region has the last of it."""
    match_id = f"gha-pan-burst{uuid.uuid4().hex[:6]}"
    watchers = [Fan(url, match_id) for url in endpoints["edges"].values()]
    stop = asyncio.Event()
    watching = asyncio.create_task(watch(watchers, stop))
    await asyncio.gather(*(w.connected.wait() for w in watchers))
    token = Path(endpoints["admin_token_file"]).read_text().strip()
    packets = [e.to_json() for e in burst(match_id, events)]
    started = asyncio.get_running_loop().time()
    async with httpx.AsyncClient(timeout=30) as client:
        for i in range(0, len(packets), 200):
            await client.post(
                f"{endpoints['feed_control']}/v1/matches/{match_id}/events",
                json=packets[i : i + 200],
                headers={"Authorization": f"Bearer {token}"},
            )
    while any(w.history.last_seq != events for w in watchers):
        if asyncio.get_running_loop().time() - started > 120:
            break
        await asyncio.sleep(0.01)
    elapsed = asyncio.get_running_loop().time() - started
    stop.set()
    await watching
    return events / elapsed


@dataclass
class TracingCost:
    tracing: bool
    latency: LatencyResult
    events_per_s: float


async def _tracing_run(
    tracing: bool,
    *,
    fans: int,
    burst_events: int,
    speed: float,
    tools: Tools,
    progress: Callable[[str], None],
) -> TracingCost:
    label = f"tracing {'on' if tracing else 'off'}: "
    async with fresh_stack(progress, tools=tools, label=label) as deployment:
        endpoints = deployment.endpoints()
        result = await _measure(endpoints, fans, speed, progress)
        rate = await _throughput(endpoints, burst_events)
        return TracingCost(tracing, result, rate)


def measure_tracing_cost(
    fans: int,
    burst_events: int,
    *,
    speed: float = 300.0,
    progress: Callable[[str], None] = lambda _: None,
) -> list[TracingCost]:
    """The same latency and throughput runs with tracing on, then off, each on a fresh stack
    (the pipeline's processes inherit GAMEDAY_TRACING from this one)."""
    tools = Tools.load()
    results = []
    for tracing in (True, False):
        os.environ[env.TRACING] = "on" if tracing else "off"
        try:
            results.append(
                asyncio.run(
                    _tracing_run(
                        tracing,
                        fans=fans,
                        burst_events=burst_events,
                        speed=speed,
                        tools=tools,
                        progress=progress,
                    )
                )
            )
        finally:
            os.environ.pop(env.TRACING, None)
    return results


def tracing_markdown(results: list[TracingCost], *, command: str) -> str:
    lines = [
        "## What tracing costs",
        "",
        "The same runs with tracing on (every hop a span, exported to a file per process) "
        "and off (`GAMEDAY_TRACING=off`: the OpenTelemetry API's no-op tracer), each on a "
        "fresh stack: source -> fan latency with N fans, and the rate of a burst of events "
        "posted at once until a fan on every region has the last one. The burst rate is "
        "bounded by the scorekeeper, which applies one event at a time and waits for the "
        "replica (WAIT) after each.",
        "",
        *provenance(command),
        "",
        "| tracing | fans | p50 | p99 | burst throughput |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {'on' if r.tracing else 'off'} | {r.latency.fans} | "
            f"{r.latency.quantile(0.5) * 1000:.0f} ms | "
            f"{r.latency.quantile(0.99) * 1000:.0f} ms | {r.events_per_s:.0f} events/s |"
        )
    return "\n".join(lines) + "\n"
