"""`gameday bench ...`: run a benchmark, print its table, optionally write its section."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadtests.bench import coldstart, latency
from loadtests.bench.report import machine_description, write_section
from pipeline.deploy import Tools


def _say(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def cold_start(args: argparse.Namespace) -> str:
    def on_run(i: int, result: coldstart.ColdStart) -> None:
        _say(f"run {i + 1}/{args.runs}: healthy in {result.total_s:.2f}s")

    results = coldstart.measure_cold_start(args.runs, on_run)
    return coldstart.markdown(
        results,
        command=f"gameday bench cold-start --runs {args.runs}",
        machine=machine_description(),
        tools=Tools.load(),
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
    return latency.markdown(results, command=command, machine=machine_description())


def tracing_cost(args: argparse.Namespace) -> str:
    results = latency.measure_tracing_cost(args.fans, args.burst, progress=_say)
    command = f"gameday bench tracing --fans {args.fans} --burst {args.burst}"
    return latency.tracing_markdown(results, command=command, machine=machine_description())


BENCHMARKS = {"cold-start": cold_start, "latency": fan_latency, "tracing": tracing_cost}


def run(args: argparse.Namespace) -> None:
    print(f"gameday bench {args.benchmark}", file=sys.stderr)
    text = BENCHMARKS[args.benchmark](args)
    print(text)
    if args.write:
        write_section(Path(args.write), args.benchmark, text)
        print(f"gameday bench: wrote the {args.benchmark} section of {args.write}", file=sys.stderr)
