"""`gameday slo rules | test | report`. Exit codes: 0 pass, 1 a test or an SLO failed,
2 bad input (an invalid spec names its file and field) or Prometheus unreachable."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.deploy import Tools, open_deployment
from slo import promtool
from slo.evaluate import PrometheusError, evaluate, load_client_samples
from slo.rules import dump, rule_files
from slo.spec import Slo, SpecError, default_specs, load, parse_duration

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _specs(args: argparse.Namespace) -> list[Slo]:
    return load(args.spec or default_specs())


def rules(args: argparse.Namespace) -> int:
    slos = _specs(args)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _say(f"gameday slo rules: --out {args.out}: cannot make the directory ({exc.strerror})")
        return EXIT_BAD_INPUT
    for name, content in rule_files(slos, time_scale=args.time_scale).items():
        (args.out / name).write_text(dump(content))
        _say(f"gameday slo rules: wrote {args.out / name}")
    _say(f"{len(slos)} SLOs, time scale {args.time_scale:g}")
    return EXIT_OK


def test(args: argparse.Namespace) -> int:
    slos = _specs(args)
    with tempfile.TemporaryDirectory(prefix="gameday-slo-") as tmp:
        directory = args.keep or Path(tmp)
        tests = promtool.write_suite(slos, directory)
        outcome = promtool.run(Tools.load().promtool, directory, tests)
    print(outcome.output)
    _say(
        f"gameday slo test: {'passed' if outcome.ok else 'FAILED'} ({len(slos)} SLOs, "
        f"{len(tests)} test files)"
    )
    return EXIT_OK if outcome.ok else EXIT_FAILED


def report(args: argparse.Namespace) -> int:
    from slo.report import console_table, write_report

    slos = _specs(args)
    url = args.prometheus or open_deployment().endpoints()["prometheus"]
    end = time.time()
    start = end - parse_duration(args.since, "--since")
    try:
        client = load_client_samples(args.client) if args.client else None
    except ValueError as exc:
        _say(f"gameday slo report: {exc}")
        return EXIT_BAD_INPUT
    try:
        result = evaluate(
            slos, url, start=start, end=end, time_scale=args.time_scale, client=client
        )
    except PrometheusError as exc:
        _say(f"gameday slo report: {exc}")
        return EXIT_BAD_INPUT
    paths = write_report(result, args.out)
    print(console_table(result))
    for kind, path in paths.items():
        _say(f"  {kind:<9} {path}")
    return EXIT_OK if result.passed else EXIT_FAILED


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], positive_float: Callable[[str], float]
) -> None:
    slo = sub.add_parser("slo", help="SLO rules, promtool tests and the SLO report")
    actions = slo.add_subparsers(dest="slo_command", required=True, metavar="ACTION")
    spec_help = "an SLO spec (our YAML or OpenSLO v1); repeatable (default: slo/specs/*.yaml)"
    r = actions.add_parser("rules", help="write the Prometheus rule files")
    r.add_argument("--out", type=Path, required=True, metavar="DIR")
    t = actions.add_parser("test", help="promtool check and test the generated rules")
    t.add_argument("--keep", type=Path, metavar="DIR", help="write the suite here and keep it")
    p = actions.add_parser("report", help="judge every SLO on what Prometheus recorded")
    p.add_argument("--prometheus", metavar="URL", help="default: the local stack's")
    p.add_argument(
        "--since", default="5m", metavar="DURATION", help="evaluate the last DURATION (default 5m)"
    )
    p.add_argument(
        "--client",
        type=Path,
        metavar="FILE",
        help="the fans' own receipts (JSON), judged beside Prometheus",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("out/slo-report"),
        metavar="DIR",
        help="where report.json, junit.xml, summary.md, report.html go",
    )
    for action in (r, t, p):
        action.add_argument("--spec", type=Path, action="append", metavar="FILE", help=spec_help)
    for action in (r, p):
        action.add_argument(
            "--time-scale",
            type=positive_float,
            default=1.0,
            metavar="F",
            help="divide every window and for: by F, as drills do",
        )


COMMANDS = {"rules": rules, "test": test, "report": report}


def run(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.slo_command](args)
    except SpecError as exc:
        _say(f"gameday slo {args.slo_command}: invalid spec: {exc}")
        return EXIT_BAD_INPUT
