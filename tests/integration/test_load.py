"""`gameday load`: Locust fans on the real edges while a match plays; CSV and HTML out."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from support import gameday


@pytest.mark.timeout(180)
def test_a_goal_spike_load_reports_per_update_latency_and_the_spike(
    stack_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "load"
    result = gameday(
        "load",
        "--users", "6",
        "--shape", "goal-spike",
        "--spike-factor", "5",
        "--speed", "300",
        "--out", str(out),
        run_dir=stack_dir,
        timeout_s=170,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    with (out / "load_stats.csv").open() as f:
        rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(f)}
    goals = rows[("SSE", "goal")]
    assert int(goals["Request Count"]) > 0
    assert int(goals["Failure Count"]) == 0
    assert float(goals["99%"]) > 0  # latency from the payload's occurred_at
    assert int(rows[("SSE", "SSE connect")]["Request Count"]) >= 6 * 5 * 0.9
    with (out / "load_stats_history.csv").open() as f:
        peak = max(int(r["User Count"]) for r in csv.DictReader(f))
    assert peak == 30
    assert (out / "load.html").read_text().count("<html") == 1
    assert "SSE" in result.stdout
    assert "goal" in result.stdout


def test_bad_load_arguments_are_refused(stack_dir: Path) -> None:
    result = gameday("load", "--users", "0", run_dir=stack_dir)
    assert result.returncode == 2
    assert "--users and --spike-factor must be >= 1" in result.stderr
