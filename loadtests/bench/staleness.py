"""Push against polling: how late fans learn of an update, SSE against polling every 15 s.

Events are posted one every `every_s` seconds (real time: polling's cost is measured in
seconds, so the match cannot be sped up), while `fans` SSE fans and `pollers` polling
fans watch. A poller asks for the snapshot every `poll_s` seconds from a random phase
(with If-None-Match, as a browser would) and learns of event k when it first sees a
state at or past seq k (it may skip states in between: the score includes them). The
staleness of event k for a fan is that moment minus the event's `occurred_at`.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from chaos.fans import Fan, watch
from chaos.stats import quantile
from loadtests.bench.latency import burst
from loadtests.bench.report import provenance
from pipeline.deploy import LocalDeployment
from pipeline.model import format_time

Progress = Callable[[str], None]


@dataclass
class Staleness:
    push: list[float]
    poll: list[float]
    fans: int
    pollers: int
    events: int
    every_s: float
    poll_s: float

    @staticmethod
    def quantile(values: list[float], q: float) -> float:
        found = quantile(values, q)
        return float("nan") if found is None else found


async def _poller(
    client: httpx.AsyncClient, url: str, poll_s: float, seen: list[tuple[float, int]]
) -> None:
    """Poll forever (until cancelled); note (time, seq) whenever the seq moves on."""
    await asyncio.sleep(random.uniform(0, poll_s))  # noqa: S311 - a phase, not a secret
    etag, last = None, 0
    while True:
        try:
            answer = await client.get(url, headers={"If-None-Match": etag} if etag else {})
            if answer.status_code == 200:
                etag, seq = answer.headers.get("ETag"), int(answer.json()["seq"])
                if seq > last:
                    seen.append((time.time(), seq))
                    last = seq
        except (httpx.HTTPError, ValueError, KeyError):
            pass  # a failed poll is a later one; the staleness shows it
        await asyncio.sleep(poll_s)


async def measure_staleness(
    deployment: LocalDeployment,
    *,
    fans: int,
    pollers: int,
    events: int,
    every_s: float,
    poll_s: float,
    progress: Progress,
) -> Staleness:
    endpoints = deployment.endpoints()
    edges = list(endpoints["edges"].values())
    match_id = f"gha-pan-stale{uuid.uuid4().hex[:6]}"
    token = Path(endpoints["admin_token_file"]).read_text().strip()
    posts = burst(match_id, events)
    crowd = [Fan(edges[i % len(edges)], match_id, fan_id=f"push-{i}") for i in range(fans)]
    stop = asyncio.Event()
    watching = asyncio.create_task(watch(crowd, stop))
    await asyncio.gather(*(f.connected.wait() for f in crowd))
    seen: list[list[tuple[float, int]]] = [[] for _ in range(pollers)]
    occurred: dict[int, float] = {}
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=pollers)) as c:
        polling = [
            asyncio.create_task(
                _poller(c, f"{edges[i % len(edges)]}/v1/matches/{match_id}", poll_s, seen[i])
            )
            for i in range(pollers)
        ]
        try:
            for event in posts:
                now = datetime.now(UTC)
                stamped = event.to_json() | {"occurred_at": format_time(now)}
                occurred[event.seq] = now.timestamp()
                await c.post(
                    f"{endpoints['feed_control']}/v1/matches/{match_id}/events",
                    json=[stamped],
                    headers={"Authorization": f"Bearer {token}"},
                )
                progress(f"event {event.seq}/{events} posted")
                await asyncio.sleep(every_s)
            await asyncio.sleep(poll_s + 2)  # every poller has had its turn after the last
        finally:
            for task in polling:
                task.cancel()
            await asyncio.gather(*polling, return_exceptions=True)
            stop.set()
    histories = await watching
    push = [r.latency_s for h in histories for r in h.receipts]
    poll = [
        next(t for t, s in saw if s >= seq) - at
        for saw in seen
        for seq, at in occurred.items()
        if any(s >= seq for _, s in saw)
    ]
    return Staleness(push, poll, fans, pollers, events, every_s, poll_s)


def markdown(result: Staleness, *, command: str) -> str:
    q = Staleness.quantile
    rows = [("push (SSE)", result.push), (f"polling every {result.poll_s:g} s", result.poll)]
    lines = [
        "## Push against polling: how late fans learn of an update",
        "",
        f"{result.events} events posted one every {result.every_s:g} s (real time), watched by "
        f"{result.fans} SSE fans and {result.pollers} fans polling the snapshot every "
        f"{result.poll_s:g} s from random phases (with If-None-Match). Staleness = the moment "
        "a fan first holds a state that includes the event, minus the event's `occurred_at`.",
        "",
        *provenance(command),
        "",
        "| fans | samples | p50 | p90 | p99 | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, values in rows:
        cells = [f"{q(values, x):.2f} s" for x in (0.5, 0.9, 0.99)]
        lines.append(f"| {name} | {len(values)} | {' | '.join(cells)} | {max(values):.2f} s |")
    ratio = q(result.poll, 0.5) / q(result.push, 0.5)
    lines += ["", f"Polling's median staleness is {ratio:,.0f} times push's."]
    return "\n".join(lines) + "\n"
