"""`gameday dashboards build` and `gameday dashboards check`, as functions returning exit codes.

Exit codes: 0 success; 1 a dashboard is invalid (build) or a target failed (check);
2 bad input: an output directory that cannot be written, or no Prometheus to talk to.
Progress goes to stderr; results (the table, or JSON with `json_output`) to stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from dashboards.build import all_dashboards, build
from dashboards.check import check, render_table
from dashboards.errors import InvalidDashboard, PrometheusUnavailable

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def build_command(
    out: Path,
    *,
    with_slo_rules: bool = False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Write the dashboards and Grafana provisioning to `out`; print each file written."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        paths = build(out, with_slo_rules=with_slo_rules)
    except InvalidDashboard as exc:
        print(f"gameday dashboards build: invalid dashboard: {exc}", file=stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"gameday dashboards build: cannot write to {out}: {exc}", file=stderr)
        return EXIT_BAD_INPUT
    for path in paths:
        print(path, file=stdout)
    print(f"gameday dashboards build: wrote {len(paths)} files to {out}", file=stderr)
    return EXIT_OK


def check_command(
    prometheus_url: str,
    *,
    json_output: bool,
    with_slo_rules: bool = False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Evaluate every panel query against `prometheus_url`; print a table or JSON."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    dashboards = all_dashboards(with_slo_rules=with_slo_rules)
    count = sum(1 for d in dashboards for _ in d.targets())
    print(
        f"gameday dashboards check: {count} targets of {len(dashboards)} dashboards "
        f"against {prometheus_url}",
        file=stderr,
    )
    try:
        results = check(prometheus_url, dashboards)
    except PrometheusUnavailable as exc:
        print(f"gameday dashboards check: {exc}", file=stderr)
        return EXIT_BAD_INPUT
    passed = not any(r.failed for r in results)
    if json_output:
        document = {
            "prometheus": prometheus_url,
            "passed": passed,
            "targets": [r.to_json() for r in results],
        }
        print(json.dumps(document, indent=2), file=stdout)
    else:
        print(render_table(results), end="", file=stdout)
    return EXIT_OK if passed else EXIT_FAILED


def local_prometheus_url() -> str:
    """Prometheus of the local stack in GAMEDAY_RUN_DIR (for a default `--prometheus`).

    Raises PrometheusUnavailable when no stack was started there.
    """
    from pipeline.deploy import DeployError, open_deployment

    try:
        url: str = open_deployment().endpoints()["prometheus"]
    except DeployError as exc:
        raise PrometheusUnavailable(f"{exc}, or pass the Prometheus URL") from None
    return url
