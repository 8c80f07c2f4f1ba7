"""`gameday drill [NAME ...] [--all] [--list] [--time-scale F] [--out DIR]`.

Exit 0 when every check of every drill passed, 1 when one failed, 2 for bad input (an
unknown drill, an invalid scenario file, a stack that is not running at that scale)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import start_http_server

from chaos.drill import run_drill
from chaos.report import DrillRun, write
from chaos.scenario import ScenarioError, available_scenarios, load_scenario
from pipeline.deploy import open_deployment
from pipeline.telemetry import Metrics
from slo.rules import dump, rule_files
from slo.spec import default_specs, load

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_SUITE = ("redis-failover", "region-skew", "feed-loss")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], positive_float: Callable[[str], float]
) -> None:
    drill = sub.add_parser("drill", help="run game-day drills against the running stack")
    drill.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"drills to run (default: {', '.join(DEFAULT_SUITE)})",
    )
    drill.add_argument("--all", action="store_true", help="every drill in chaos/scenarios")
    drill.add_argument("--list", action="store_true", help="list the drills and exit")
    drill.add_argument(
        "--time-scale",
        type=positive_float,
        default=None,
        metavar="F",
        help="divide every declared duration by F (default: the stack's)",
    )
    drill.add_argument("--out", type=Path, default=Path("out/drill"), metavar="DIR")


async def run(args: argparse.Namespace) -> int:
    if args.list:
        for name in available_scenarios():
            print(f"{name:<22} {load_scenario(name).description.strip()[:90]}")
        return EXIT_OK
    names = available_scenarios() if args.all else (args.names or list(DEFAULT_SUITE))
    try:
        scenarios = [load_scenario(name) for name in names]
    except ScenarioError as exc:
        _say(f"gameday drill: {exc}")
        return EXIT_BAD_INPUT
    deployment = open_deployment()  # either target: drills use only what both offer
    status = await deployment.status()
    if not status.healthy:
        _say("gameday drill: the stack is not healthy (`gameday status`); `gameday up` first")
        return EXIT_BAD_INPUT
    scale = args.time_scale or deployment.stack_time_scale
    if scale != deployment.stack_time_scale:
        _say(
            f"gameday drill: the stack runs at time scale {deployment.stack_time_scale:g}; "
            f"restart it with `gameday down && gameday up --time-scale {scale:g}`"
        )
        return EXIT_BAD_INPUT
    files = rule_files(load(default_specs()), time_scale=scale)
    await deployment.load_rules({name: dump(content) for name, content in files.items()})
    metrics = Metrics()
    host, port = deployment.endpoints()["drill_metrics"].rsplit(":", 1)
    try:
        server, thread = start_http_server(int(port), addr=host, registry=metrics.registry)
    except OSError as exc:
        _say(
            f"gameday drill: cannot serve the drill's metrics on {host}:{port} ({exc}); "
            "is another drill running against this stack?"
        )
        return EXIT_BAD_INPUT
    drill_run = DrillRun(target=deployment.target, time_scale=scale, started_at=time.time())
    try:
        for scenario in scenarios:
            _say(f"== drill {scenario.name} (time scale {scale:g}x)")
            result = await run_drill(
                scenario, deployment, time_scale=scale, progress=_say, metrics=metrics
            )
            drill_run.drills.append(result)
            for check in result.checks:
                mark = "pass" if check.passed else "FAIL"
                _say(f"   {mark:<4} {check.name}: {check.observed} (expected {check.expected})")
            _say(f"== {scenario.name}: {'PASS' if result.passed else 'FAIL'}")
            await asyncio.sleep(2)  # let alerts of one drill settle before the next
    finally:
        await asyncio.sleep(1.5)  # one more scrape sees every fault at 0
        server.shutdown()
        thread.join(2)
        drill_run.finished_at = time.time()
        paths = write(drill_run, args.out)
        for kind, path in paths.items():
            _say(f"  {kind:<9} {path}")
    return EXIT_OK if drill_run.passed else EXIT_FAILED
