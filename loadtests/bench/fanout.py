"""Fan-out at scale: the edge against the floor, with the fans in worker processes.

For each fan count, a fresh match is played (the 29 events of gha-pan) to that many fans
on the three regions' edges, then to as many fans on three floor writers (one per region,
reading Redis through that region's Toxiproxy link, as the edges do). Measured:

- source -> fan latency p50 / p99 / p99.9 (arrival minus the event's `occurred_at`);
- what every fan got: lost, duplicated, out of order against the match played;
- frames written per CPU-second of the servers (their user + system time during the
  match, from /proc): fan-out per core.

`measure_memory` opens idle connections to one freshly started edge process (the canary,
which no other fan uses) over SSE and then over WebSocket, and to a floor writer, and
divides the growth of the process's resident memory by the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chaos.stats import quantile
from loadtests.bench import peers
from loadtests.bench.fanpool import CONNECT_CONCURRENCY, FanPool, FanReceipts
from loadtests.bench.latency import fresh_stack
from loadtests.bench.report import provenance
from pipeline.deploy import LocalDeployment
from pipeline.deploy.health import sentinel_master_port
from pipeline.deploy.ports import free_ports
from pipeline.feed import load_script, play
from pipeline.topology import REDIS_MASTER_NAME, SENTINELS

Progress = Callable[[str], None]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    return total


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class FanoutRun:
    server: str
    fans: int
    connected: int
    latencies: list[float]
    lost: int
    duplicated: int
    out_of_order: int
    frames: int
    cpu_s: float

    def quantile(self, q: float) -> float:
        found = quantile(self.latencies, q)
        return float("nan") if found is None else found

    @property
    def frames_per_cpu_s(self) -> float:
        return self.frames / self.cpu_s if self.cpu_s > 0 and self.frames else float("nan")


def judge(receipts: list[FanReceipts], expected: list[int]) -> tuple[int, int, int]:
    """(lost, duplicated, out of order) over the seqs of every fan that connected (one that
    never did is counted as not connected, not as losing the match)."""
    lost = duplicated = out_of_order = 0
    wanted = set(expected)
    for fan in receipts:
        if not fan.connected:
            continue
        seqs = list(fan.seqs)
        lost += len(wanted - set(seqs))
        duplicated += len(seqs) - len(set(seqs))
        out_of_order += sum(1 for a, b in itertools.pairwise(seqs) if b < a)
    return lost, duplicated, out_of_order


def master_link(deployment: LocalDeployment, region: str) -> str:
    """The address of `region`'s Toxiproxy link to today's Redis master."""
    master = sentinel_master_port([deployment.ports[s] for s in SENTINELS], REDIS_MASTER_NAME)
    return str(
        next(
            spec["listen"]
            for name, spec in deployment.endpoints()["links"].items()
            if name.startswith(f"{region}.") and spec["upstream"].endswith(f":{master}")
        )
    )


class Floors:
    """Three floor writers, one per region, each on its region's link to the master."""

    def __init__(self, deployment: LocalDeployment) -> None:
        endpoints = deployment.endpoints()
        ports = free_ports([f"floor-{r}" for r in endpoints["edges"]])
        self.urls, self.processes = [], []
        log = (deployment.run_dir / "logs" / "floor.log").open("ab")
        for region in endpoints["edges"]:
            link = master_link(deployment, region)
            port = ports[f"floor-{region}"]
            argv = [sys.executable, "-m", "loadtests.bench.floor", "--port", str(port)]
            self.processes.append(
                subprocess.Popen([*argv, "--redis", link], stdout=log, stderr=log)
            )
            self.urls.append(f"http://127.0.0.1:{port}")
        time.sleep(1.0)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


async def _run(
    deployment: LocalDeployment,
    server: str,
    urls: list[str],
    pids: list[int],
    fans: int,
    *,
    workers: int,
    speed: float,
) -> FanoutRun:
    endpoints = deployment.endpoints()
    match_id = f"gha-pan-{uuid.uuid4().hex[:8]}"
    peer = peers.PEERS.get(server)
    pool = FanPool(
        urls,
        match_id,
        fans,
        workers=workers,
        connect_concurrency=peer.connect_concurrency if peer else CONNECT_CONCURRENCY,
    )
    try:
        connected = await asyncio.to_thread(pool.wait_connected)
        token = Path(endpoints["admin_token_file"]).read_text().strip()
        script = replace(load_script("gha-pan"), match_id=match_id)
        before = cpu_seconds(pids)
        source = await play(script, control_url=endpoints["feed_control"], token=token, speed=speed)
        await asyncio.sleep(2.0 + fans / 5000)  # the last frames on their way
        cpu_s = cpu_seconds(pids) - before
    finally:
        receipts = await asyncio.to_thread(pool.collect)
    lost, duplicated, out_of_order = judge(receipts, [e.seq for e in source])
    if pool.errors:
        print(f"  {server}: {connected} of {fans} connected; first errors: {pool.errors[:3]}")
    latencies = [latency for fan in receipts for latency in fan.latencies]
    return FanoutRun(
        server, fans, connected, latencies, lost, duplicated, out_of_order, len(latencies), cpu_s
    )


async def measure_fanout(
    deployment: LocalDeployment,
    fan_counts: list[int],
    *,
    workers: int,
    speed: float,
    progress: Progress,
) -> tuple[list[FanoutRun], dict[str, str]]:
    """Every fan count against the edge, the floor and each installed peer; returns the
    runs and the peers that could not be measured, with why. Only the server being
    measured runs (with its bridge): the others would take CPU from it."""
    installed, skipped = peers.available()
    names = ["edge", "floor"]
    for name in installed:
        if name in peers.PEERS:
            names.append(name)
        else:
            skipped[name] = "no adapter yet"
    runs = []
    for fans in fan_counts:
        for server in [n for n in names if n not in skipped]:
            limit = peers.PEERS[server].fan_limit() if server in peers.PEERS else None
            if limit is not None and fans > limit:
                skipped[server] = (
                    f"not at {fans} fans: it serves them from one process, and a process "
                    f"here may hold {limit + 100} open files"
                )
                progress(f"{server}: {skipped[server]}")
                continue
            try:
                with _serving(deployment, server, installed.get(server, {})) as (urls, pids):
                    run = await _run(
                        deployment, server, urls, pids, fans, workers=workers, speed=speed
                    )
            except (OSError, RuntimeError) as exc:
                skipped[server] = f"failed at {fans} fans: {exc.__class__.__name__}: {exc}"
                progress(f"{server}: {skipped[server]}")
                continue
            progress(
                f"{server} {fans} fans: {run.connected} connected, p50 "
                f"{run.quantile(0.5) * 1000:.0f} ms, p99 {run.quantile(0.99) * 1000:.0f} ms, "
                f"{run.frames_per_cpu_s:,.0f} frames per CPU-second, lost {run.lost}"
            )
            runs.append(run)
    return runs, skipped


@contextlib.contextmanager
def _serving(
    deployment: LocalDeployment, name: str, spec: dict[str, Any]
) -> Iterator[tuple[list[str], list[int]]]:
    """(fans' URLs, server PIDs) of `name` while it runs: the edges are the stack's own;
    the floor and the peers are started for the run and stopped after it."""
    endpoints = deployment.endpoints()
    if name == "edge":
        running = deployment.running()
        yield (
            list(endpoints["edges"].values()),
            [running[f"edge-{region}"].pid for region in endpoints["edges"]],
        )
        return
    if name == "floor":
        floors = Floors(deployment)
        try:
            yield floors.urls, floors.pids
        finally:
            floors.stop()
        return
    peer = peers.PEERS[name](deployment.run_dir, master_link(deployment, "us-east"))
    try:
        peer.start(spec, workers=len(endpoints["edges"]))
        yield peer.urls, peer.server_pids
    finally:
        peer.stop()


@dataclass
class MemoryRun:
    server: str
    protocol: str
    connections: int
    held: int
    bytes_per_connection: float


async def _memory(pid: int, url: str, conns: int, *, workers: int, ws: bool) -> tuple[int, float]:
    await asyncio.sleep(1.0)
    before = rss_bytes(pid)
    pool = FanPool([url], f"gha-pan-idle{uuid.uuid4().hex[:6]}", conns, workers=workers, ws=ws)
    try:
        held = await asyncio.to_thread(pool.wait_connected)
        await asyncio.sleep(2.0)
        grown = rss_bytes(pid) - before
    finally:
        await asyncio.to_thread(pool.collect)
    return held, grown / max(held, 1)


async def measure_memory(
    deployment: LocalDeployment, conns: int, *, workers: int, progress: Progress
) -> list[MemoryRun]:
    endpoints = deployment.endpoints()
    out = []
    for protocol in ("sse", "ws"):
        await deployment.kill("edge-canary")  # a fresh process: the same starting point
        await deployment.start("edge-canary")
        pid = deployment.running()["edge-canary"].pid
        held, per = await _memory(
            pid, endpoints["canary_edge"], conns, workers=workers, ws=protocol == "ws"
        )
        out.append(MemoryRun("edge", protocol, conns, held, per))
        progress(f"edge {protocol}: {held} idle connections, {per / 1024:.1f} KiB each")
    floors = Floors(deployment)
    try:
        held, per = await _memory(floors.pids[0], floors.urls[0], conns, workers=workers, ws=False)
    finally:
        floors.stop()
    out.append(MemoryRun("floor", "sse", conns, held, per))
    progress(f"floor sse: {held} idle connections, {per / 1024:.1f} KiB each")
    return out


def fanout_markdown(runs: list[FanoutRun], skipped: dict[str, str], *, command: str) -> str:
    lines = [
        "## Fan-out at scale: the edge against the floor",
        "",
        "The 29 events of gha-pan played to N SSE fans spread over three servers (the "
        "regions' edges, then three floor writers that only write one pre-encoded frame to "
        "every socket). The fans run in worker processes on the same 2 cores. Latency = "
        "arrival at the fan minus the event's `occurred_at`; fan-out = frames written per "
        "CPU-second of the three server processes during the match. Each of the fan "
        f"workers opens {CONNECT_CONCURRENCY} connections at a time; against Pushpin, "
        f"{peers.Pushpin.connect_concurrency} (its proxy answers 502 when its queue to zurl "
        "is full).",
        "",
        *provenance(command, peers=peers.available()[0]),
        "",
        "| fans | server | connected | p50 | p99 | p99.9 | frames per CPU-s | lost | dup | "
        "out of order |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        ms = [f"{r.quantile(q) * 1000:.0f} ms" for q in (0.5, 0.99, 0.999)]
        lines.append(
            f"| {r.fans} | {r.server} | {r.connected} | {' | '.join(ms)} | "
            f"{r.frames_per_cpu_s:,.0f} | {r.lost} | {r.duplicated} | {r.out_of_order} |"
        )
    for other in sorted({r.server for r in runs} - {"edge"}):
        ratios = _ratios(runs, other)
        if ratios:
            lines += ["", f"Edge against {other} (p99, fan-out): " + "; ".join(ratios) + "."]
    for name, why in skipped.items():
        lines += ["", f"Not measured: {name} ({why})."]
    return "\n".join(lines) + "\n"


def _ratios(runs: list[FanoutRun], other: str) -> list[str]:
    by = {(r.server, r.fans): r for r in runs}
    out = []
    for (server, fans), edge in sorted(by.items()):
        peer = by.get((other, fans))
        if server == "edge" and peer is not None:
            out.append(
                f"{fans} fans: p99 x{edge.quantile(0.99) / peer.quantile(0.99):.1f}, "
                f"fan-out x{edge.frames_per_cpu_s / peer.frames_per_cpu_s:.2f}"
            )
    return out


def memory_markdown(runs: list[MemoryRun], *, command: str) -> str:
    lines = [
        "## Memory per idle connection: SSE and WebSocket",
        "",
        "Idle connections opened to one freshly started edge process (the canary, which no "
        "other fan uses), first over SSE, then (after a restart) over WebSocket, and to a "
        "floor writer; growth of the server's resident memory divided by the connections "
        "held. Kernel socket buffers are not in it.",
        "",
        *provenance(command),
        "",
        "| server | protocol | connections held | per connection |",
        "|---|---|---:|---:|",
    ]
    for r in runs:
        per = f"{r.bytes_per_connection / 1024:.1f} KiB"
        lines.append(f"| {r.server} | {r.protocol.upper()} | {r.held} | {per} |")
    sse = next((r for r in runs if r.server == "edge" and r.protocol == "sse"), None)
    ws = next((r for r in runs if r.server == "edge" and r.protocol == "ws"), None)
    if sse and ws and sse.bytes_per_connection > 0:
        ratio = ws.bytes_per_connection / sse.bytes_per_connection
        lines += ["", f"WebSocket against SSE on the same edge: x{ratio:.2f} per connection."]
    return "\n".join(lines) + "\n"


def on_fresh_stack(work: Callable[[LocalDeployment], Any], progress: Progress) -> Any:
    """Run `work(deployment)` on a fresh local stack in a temporary directory."""

    async def run() -> Any:
        async with fresh_stack(progress) as deployment:
            return await work(deployment)

    return asyncio.run(run())
