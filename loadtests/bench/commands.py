"""`gameday bench ...`: run a benchmark, print its table, optionally write its section."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadtests.bench import coldstart, fanout, latency, staleness
from loadtests.bench.report import write_section


def add_parser(
    sub: Any, positive_int: Callable[[str], int], positive_float: Callable[[str], float]
) -> None:
    bench = sub.add_parser("bench", help="benchmarks; results into docs/benchmarks.md")
    bench_sub = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")

    def benchmark(name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = bench_sub.add_parser(name, help=help)
        parser.add_argument(
            "--write", type=Path, metavar="FILE", help=f"replace the {name} section of this file"
        )
        return parser

    def fans(parser: argparse.ArgumentParser, default: list[int]) -> None:
        parser.add_argument(
            "--fans", type=positive_int, nargs="+", default=default, help="fan counts to measure"
        )

    def speed(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--speed", type=positive_float, default=300.0, help="match speed (300: about 20 s)"
        )

    cold = benchmark("cold-start", "time from `gameday up` to a healthy stack")
    cold.add_argument("--runs", type=positive_int, default=5, help="repetitions (default 5)")
    lat = benchmark("latency", "source -> fan latency at N SSE fans (fans in this process)")
    fans(lat, [1000])
    speed(lat)
    tracing = benchmark("tracing", "latency and throughput, tracing on vs off")
    tracing.add_argument("--fans", type=positive_int, default=300, help="fans (default 300)")
    tracing.add_argument(
        "--burst", type=positive_int, default=2000, help="events in the throughput burst"
    )
    wide = benchmark("fanout", "the edge against the floor at 1k-20k fans in worker processes")
    fans(wide, [1000, 5000, 10000, 20000])
    speed(wide)
    wide.add_argument("--workers", type=positive_int, default=4, help="fan processes (4)")
    stale = benchmark("staleness", "push against polling every 15 s: how late fans learn")
    stale.add_argument("--fans", type=positive_int, default=200, help="SSE fans (200)")
    stale.add_argument("--pollers", type=positive_int, default=200, help="polling fans (200)")
    stale.add_argument("--events", type=positive_int, default=20, help="events posted (20)")
    stale.add_argument("--every", type=positive_float, default=4.0, help="seconds apart (4)")
    stale.add_argument("--poll", type=positive_float, default=15.0, help="poll interval (15)")
    memory = benchmark("memory", "memory per idle connection: SSE, WebSocket, the floor")
    memory.add_argument("--conns", type=positive_int, default=5000, help="connections (5000)")
    memory.add_argument("--workers", type=positive_int, default=2, help="fan processes (2)")


def _say(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def cold_start(args: argparse.Namespace) -> str:
    def on_run(i: int, result: coldstart.ColdStart) -> None:
        _say(f"run {i + 1}/{args.runs}: healthy in {result.total_s:.2f}s")

    results = coldstart.measure_cold_start(args.runs, on_run)
    return coldstart.markdown(
        results,
        command=f"gameday bench cold-start --runs {args.runs}",
    )


def fan_latency(args: argparse.Namespace) -> str:
    results = []
    for fans in args.fans:
        result = latency.measure_latency(fans, speed=args.speed, progress=_say)
        _say(
            f"{fans} fans: p50 {result.quantile(0.5) * 1000:.0f} ms, "
            f"p99 {result.quantile(0.99) * 1000:.0f} ms"
        )
        results.append(result)
    command = f"gameday bench latency --fans {' '.join(map(str, args.fans))} --speed {args.speed:g}"
    return latency.markdown(results, command=command)


def tracing_cost(args: argparse.Namespace) -> str:
    results = latency.measure_tracing_cost(args.fans, args.burst, progress=_say)
    command = f"gameday bench tracing --fans {args.fans} --burst {args.burst}"
    return latency.tracing_markdown(results, command=command)


def fan_out(args: argparse.Namespace) -> str:
    async def work(deployment: Any) -> tuple[list[fanout.FanoutRun], dict[str, str]]:
        return await fanout.measure_fanout(
            deployment, args.fans, workers=args.workers, speed=args.speed, progress=_say
        )

    runs, skipped = fanout.on_fresh_stack(work, _say)
    command = (
        f"gameday bench fanout --fans {' '.join(map(str, args.fans))} "
        f"--workers {args.workers} --speed {args.speed:g}"
    )
    return fanout.fanout_markdown(runs, skipped, command=command)


def memory(args: argparse.Namespace) -> str:
    async def work(deployment: Any) -> list[fanout.MemoryRun]:
        return await fanout.measure_memory(
            deployment, args.conns, workers=args.workers, progress=_say
        )

    runs = fanout.on_fresh_stack(work, _say)
    command = f"gameday bench memory --conns {args.conns} --workers {args.workers}"
    return fanout.memory_markdown(runs, command=command)


def staleness_bench(args: argparse.Namespace) -> str:
    async def work(deployment: Any) -> staleness.Staleness:
        return await staleness.measure_staleness(
            deployment,
            fans=args.fans,
            pollers=args.pollers,
            events=args.events,
            every_s=args.every,
            poll_s=args.poll,
            progress=_say,
        )

    result = fanout.on_fresh_stack(work, _say)
    command = (
        f"gameday bench staleness --fans {args.fans} --pollers {args.pollers} "
        f"--events {args.events} --every {args.every:g} --poll {args.poll:g}"
    )
    return staleness.markdown(result, command=command)


BENCHMARKS = {
    "cold-start": cold_start,
    "latency": fan_latency,
    "tracing": tracing_cost,
    "fanout": fan_out,
    "memory": memory,
    "staleness": staleness_bench,
}


def run(args: argparse.Namespace) -> None:
    print(f"gameday bench {args.benchmark}", file=sys.stderr)
    text = BENCHMARKS[args.benchmark](args)
    print(text)
    if args.write:
        write_section(Path(args.write), args.benchmark, text)
        print(f"gameday bench: wrote the {args.benchmark} section of {args.write}", file=sys.stderr)
