"""The `gameday` command line.

Exit codes: 0 success, 1 the stack or a check failed, 2 bad input or a missing prerequisite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline.deploy import (
    ComponentFailed,
    ComposeDeployment,
    DeployError,
    Stack,
    StackStatus,
    ToolMissing,
    open_deployment,
)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gameday",
        description="Game-day drills, SLOs and observability for a live-score push pipeline.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_up(sub)

    sub.add_parser("down", help="stop every process the stack started")

    _add_chaostoolkit(sub)

    status = sub.add_parser("status", help="health of every component and the endpoints")
    status.add_argument("--json", action="store_true", help="print the DESIGN.md JSON document")

    match = sub.add_parser("match", help="play a scripted match into the feed")
    match_sub = match.add_subparsers(dest="match_command", required=True, metavar="ACTION")
    play = match_sub.add_parser("play", help="post a script's events to the stadium, in time")
    play.add_argument("--script", default="gha-pan", help="script name or YAML path (gha-pan)")
    play.add_argument(
        "--speed",
        type=_positive_float,
        default=60.0,
        help="match seconds per real second (default 60: a minute a second)",
    )
    play.add_argument(
        "--match-id",
        help="play under another id of the same teams, e.g. gha-pan-final (default: the script's)",
    )
    match_sub.add_parser("list", help="the scripts available")

    dashboards = sub.add_parser("dashboards", help="Grafana dashboards from the metrics catalog")
    dash_sub = dashboards.add_subparsers(dest="dashboards_command", required=True, metavar="ACTION")
    build = dash_sub.add_parser("build", help="write the dashboards' JSON and provisioning")
    build.add_argument("--out", type=Path, required=True, metavar="DIR")
    check = dash_sub.add_parser(
        "check",
        help="run every panel's query against the live Prometheus; fail on errors "
        "and on queries that return nothing",
    )
    check.add_argument(
        "--prometheus", metavar="URL", help="Prometheus to query (default: the local stack's)"
    )
    check.add_argument("--json", action="store_true", help="print JSON")
    for action in (build, check):
        action.add_argument(
            "--with-slo-rules",
            action="store_true",
            help="include the SLO burn and budget row (needs the SLO rules)",
        )

    from chaos.correctcmd import add_parser as add_correct_parser
    from chaos.drillcmd import add_parser as add_drill_parser
    from loadtests.run import add_parser as add_load_parser
    from slo.commands import add_parser as add_slo_parser

    add_slo_parser(sub, _positive_float)
    add_drill_parser(sub, _positive_float)
    add_load_parser(sub)
    add_correct_parser(sub)

    trace = sub.add_parser("trace", help="read the pipeline's traces")
    trace_sub = trace.add_subparsers(dest="trace_command", required=True, metavar="ACTION")
    summary = trace_sub.add_parser(
        "summary", help="per-hop latency, and the hop that made the slowest traces slow"
    )
    summary.add_argument(
        "--run",
        type=Path,
        metavar="DIR",
        help="the stack's run directory (default: the current stack's)",
    )
    summary.add_argument("--json", action="store_true", help="print JSON")
    summary.add_argument(
        "--slowest",
        type=_positive_int,
        default=5,
        metavar="N",
        help="how many of the slowest traces to show (default 5)",
    )

    from loadtests.bench.commands import add_parser as add_bench_parser

    add_bench_parser(sub, _positive_int, _positive_float)
    return parser


def _add_up(sub: Any) -> None:
    up = sub.add_parser("up", help="start the stack and wait until every component is healthy")
    up.add_argument(
        "--target",
        choices=["local", "compose"],
        default=None,
        help="where to run it: local processes, or containers with docker compose (default: "
        "the run directory's current target, else local; see docs/docker.md)",
    )
    up.add_argument(
        "--time-scale",
        type=_positive_float,
        default=1.0,
        metavar="F",
        help="divide the pipeline's declared durations (fallback polling, reconciling, the "
        "feed watchdog) by F, as drills do (default 1)",
    )
    up.add_argument(
        "--set",
        dest="settings",
        action="append",
        type=_setting,
        default=[],
        metavar="SERVICE.FIELD=VALUE",
        help="run a pipeline service with this config field changed, e.g. "
        "edge.replay_enabled=false or control.canary_share=0.2 (repeatable; a running stack "
        "restarts what changed, and an `up` without --set puts the defaults back)",
    )
    up.add_argument(
        "--keep-on-failure",
        action="store_true",
        help="leave what started running when a component fails, to debug it",
    )


def _add_chaostoolkit(sub: Any) -> None:
    ctk = sub.add_parser(
        "chaostoolkit", help="export drills as Chaos Toolkit experiments, or import one"
    )
    ctk_sub = ctk.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = ctk_sub.add_parser("export", help="write drills as experiments (JSON)")
    export.add_argument("names", nargs="+", metavar="NAME", help="drill names or scenario files")
    export.add_argument("--out", type=Path, default=Path("."), metavar="DIR")
    imported = ctk_sub.add_parser("import", help="turn an experiment into a scenario file")
    imported.add_argument("experiment", type=Path, metavar="FILE")
    imported.add_argument("--out", type=Path, metavar="FILE", help="(default: stdout)")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _setting(text: str) -> tuple[str, object]:
    from pipeline.deploy.settings import SettingError, parse_assignment

    try:
        return parse_assignment(text)
    except SettingError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _progress(name: str, what: str) -> None:
    print(f"  {name:<14} {what}", file=sys.stderr, flush=True)


def _print_status(status: StackStatus) -> None:
    width = max((len(name) for name in status.services), default=8)
    for name, s in status.services.items():
        mark = "healthy" if s.healthy else f"UNHEALTHY: {s.detail}"
        print(f"{name:<{width}}  pid {s.pid or '-':<8}  {s.url:<28}  {mark}")
    print(f"stack: {'healthy' if status.healthy else 'NOT healthy'} ({status.target})")


async def _up(args: argparse.Namespace) -> int:
    deployment = open_deployment(
        target=args.target,
        keep_on_failure=args.keep_on_failure,
        time_scale=args.time_scale,
        settings=dict(args.settings),
    )
    print(
        f"gameday up: starting the {deployment.target} stack in {deployment.run_dir}",
        file=sys.stderr,
    )
    status = await deployment.up(progress=_progress)
    if status.healthy:
        groups = await _load_slo_rules(deployment)
        _progress("prometheus", f"{len(groups)} rule groups loaded (SLOs, operational alerts)")
        if isinstance(deployment, ComposeDeployment):
            from dashboards import build

            written = build(deployment.dashboards_dir, with_slo_rules=True)
            _progress("grafana", f"{len(written)} dashboard and provisioning files written")
    _print_status(status)
    return EXIT_OK if status.healthy else EXIT_FAILED


async def _load_slo_rules(deployment: Stack) -> list[str]:
    """The declared SLOs' rules and the runbook's alerts, at the stack's time scale."""
    from slo.rules import dump, rule_files
    from slo.spec import default_specs, load

    files = rule_files(load(default_specs()), time_scale=deployment.stack_time_scale)
    return await deployment.load_rules({name: dump(content) for name, content in files.items()})


async def _down(_args: argparse.Namespace) -> int:
    deployment = open_deployment()
    stubborn = await deployment.down()
    for name in stubborn:
        print(f"gameday down: {name} ignored SIGTERM and was killed", file=sys.stderr)
    print(f"gameday down: stopped; logs kept in {deployment.run_dir / 'logs'}", file=sys.stderr)
    return EXIT_OK


async def _status(args: argparse.Namespace) -> int:
    deployment = open_deployment()
    status = await deployment.status()
    if args.json:
        print(json.dumps(status.to_json(), indent=2))
    elif not status.services:
        print(f"no stack in {deployment.run_dir}: `gameday up` starts one")
    else:
        _print_status(status)
    return EXIT_OK if status.healthy else EXIT_FAILED


async def _match(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from pipeline.feed.script import available_scripts, load_script, play
    from pipeline.model import InvalidEvent, teams_of

    if args.match_command == "list":
        for name in available_scripts():
            print(name)
        return EXIT_OK
    try:
        script = load_script(args.script)
        if args.match_id:
            if teams_of(args.match_id) != teams_of(script.match_id):
                raise ValueError(
                    f"--match-id {args.match_id} does not name the teams of {script.match_id}"
                )
            script = replace(script, match_id=args.match_id)
    except (ValueError, InvalidEvent) as exc:
        print(f"gameday match play: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    endpoints = open_deployment().endpoints()
    token = Path(endpoints["admin_token_file"]).read_text().strip()
    seconds = script.duration_s / args.speed
    print(
        f"gameday match play: {script.match_id}, {len(script.entries)} events over {seconds:.0f}s",
        file=sys.stderr,
    )

    def show(event: Any) -> None:
        team = f" {event.team}" if event.team else ""
        player = f" {event.player}" if event.player else ""
        print(
            f"  {event.minute or 0:>3}' seq {event.seq:<3} {event.type}{team}{player}",
            file=sys.stderr,
            flush=True,
        )

    await play(
        script, control_url=endpoints["feed_control"], token=token, speed=args.speed, on_event=show
    )
    for region, url in endpoints["edges"].items():
        print(f"{region}: {url}/matches/{script.match_id}")
    return EXIT_OK


async def _dashboards(args: argparse.Namespace) -> int:
    from dashboards import build_command, check_command, local_prometheus_url
    from dashboards.errors import PrometheusUnavailable

    if args.dashboards_command == "build":
        return build_command(args.out, with_slo_rules=args.with_slo_rules)
    try:
        url = args.prometheus or local_prometheus_url()
    except PrometheusUnavailable as exc:
        print(f"gameday dashboards check: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return await asyncio.to_thread(
        check_command, url, json_output=args.json, with_slo_rules=args.with_slo_rules
    )


async def _load(args: argparse.Namespace) -> int:
    from loadtests.run import run

    return await run(args)


async def _drill(args: argparse.Namespace) -> int:
    from chaos.drillcmd import run

    return await run(args)


async def _correct(args: argparse.Namespace) -> int:
    from chaos.correctcmd import run

    return await run(args)


async def _slo(args: argparse.Namespace) -> int:
    from slo.commands import run

    return await asyncio.to_thread(run, args)


async def _trace(args: argparse.Namespace) -> int:
    from chaos.traces import load_spans, summarize, traces

    run_dir = args.run or open_deployment().run_dir
    trace_dir = run_dir / "traces"
    if not trace_dir.is_dir():
        print(f"gameday trace: no traces in {trace_dir}", file=sys.stderr)
        return EXIT_BAD_INPUT
    summary = summarize(traces(load_spans(trace_dir)), slowest=args.slowest)
    print(json.dumps(summary.to_json(), indent=2) if args.json else summary.render())
    return EXIT_OK if summary.traces else EXIT_FAILED


def _bench(args: argparse.Namespace) -> int:
    """Not a coroutine: each benchmark runs its own event loop, in the main thread, so
    that SIGINT/SIGTERM cancel it and its stack and peers are stopped on the way out."""
    from loadtests.bench.commands import run

    run(args)
    return EXIT_OK


async def _chaostoolkit(args: argparse.Namespace) -> int:
    import yaml

    from chaos.ctk import export, scenario_of
    from chaos.scenario import load_scenario, parse

    if args.action == "export":
        args.out.mkdir(parents=True, exist_ok=True)
        for name in args.names:
            scenario = load_scenario(name)
            path = args.out / f"{scenario.name}.json"
            path.write_text(json.dumps(export(scenario), indent=2) + "\n")
            print(f"gameday chaostoolkit: {scenario.name} -> {path}", file=sys.stderr)
        return EXIT_OK
    try:
        doc = json.loads(args.experiment.read_text())
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not JSON, not UTF-8
        raise ValueError(f"{args.experiment}: cannot read the experiment ({exc})") from None
    raw = scenario_of(doc, str(args.experiment))
    parse(raw, str(args.experiment))  # refuses what a drill could not run
    text = yaml.safe_dump(raw, sort_keys=False)
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text)
        print(f"gameday chaostoolkit: scenario written to {args.out}", file=sys.stderr)
    return EXIT_OK


COMMANDS = {
    "up": _up,
    "down": _down,
    "status": _status,
    "match": _match,
    "trace": _trace,
    "slo": _slo,
    "drill": _drill,
    "chaostoolkit": _chaostoolkit,
    "load": _load,
    "dashboards": _dashboards,
    "correct": _correct,
}
SYNC_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"bench": _bench}


def _terminate(_signum: int, _frame: object) -> None:
    """SIGTERM takes the Ctrl-C path: the running event loop cancels its main task, so
    faults are reverted and started processes stopped in `finally` blocks."""
    signal.raise_signal(signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.command in SYNC_COMMANDS:
            return SYNC_COMMANDS[args.command](args)
        return asyncio.run(COMMANDS[args.command](args))
    except ToolMissing as exc:
        print(f"gameday {args.command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ComponentFailed as exc:
        print(f"gameday {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (DeployError, ValueError) as exc:
        print(f"gameday {args.command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"gameday {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
