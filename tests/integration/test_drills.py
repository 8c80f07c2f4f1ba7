"""The default game-day suite passes on the healthy pipeline, and its report is what CI reads."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support import gameday

from chaos.drillcmd import DEFAULT_SUITE
from chaos.scenario import available_scenarios


@pytest.mark.timeout(600)
def test_the_default_drills_pass_on_the_healthy_pipeline(stack_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "drill"
    result = gameday("drill", "--out", str(out), run_dir=stack_dir, timeout_s=590)

    report = json.loads((out / "report.json").read_text())
    failed = {d["name"]: [c for c in d["checks"] if not c["passed"]] for d in report["drills"]}
    assert result.returncode == 0, (failed, result.stderr[-3000:])
    assert report["passed"] is True
    assert report["time_scale"] == 10
    assert [d["name"] for d in report["drills"]] == ["redis-failover", "region-skew", "feed-loss"]
    for drill in report["drills"]:
        assert drill["delivery"]["lost"] == 0
        assert drill["delivery"]["duplicated"] == 0
        assert drill["faults"]
        assert all(f["injected_at"] and f["reverted_at"] for f in drill["faults"])
    junit = ET.parse(out / "junit.xml").getroot()
    assert junit.findall(".//failure") == []
    assert len(junit.findall(".//testcase")) == sum(len(d["checks"]) for d in report["drills"])
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6  # latency and alert timeline per drill
    assert (out / "region-skew" / "report.html").exists()


@pytest.mark.timeout(900)
def test_every_other_drill_passes_on_the_healthy_pipeline(stack_dir: Path, tmp_path: Path) -> None:
    others = [name for name in available_scenarios() if name not in DEFAULT_SUITE]
    out = tmp_path / "drill"
    result = gameday("drill", *others, "--out", str(out), run_dir=stack_dir, timeout_s=880)

    report = json.loads((out / "report.json").read_text())
    failed = {d["name"]: [c for c in d["checks"] if not c["passed"]] for d in report["drills"]}
    assert result.returncode == 0, (failed, result.stderr[-3000:])
    assert [d["name"] for d in report["drills"]] == others
    checks = {d["name"]: {c["name"] for c in d["checks"]} for d in report["drills"]}
    assert {"rollback triggered", "fans left the canary"} <= checks["bad-canary"]
    assert "Kafka holds every event once" in checks["duplicate-feed"]
    assert "Kafka alone replayed the crash" in checks["scorekeeper-crash"]
    assert "every spike fan was served" in checks["goal-spike"]


def test_an_unknown_drill_or_scenario_is_bad_input(stack_dir: Path, tmp_path: Path) -> None:
    unknown = gameday("drill", "no-such-drill", run_dir=stack_dir)
    assert unknown.returncode == 2
    assert "unknown drill 'no-such-drill'" in unknown.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nfaults: [{kind: meteor, at: 1s, duration: 1s}]\n")
    invalid = gameday("drill", str(broken), run_dir=stack_dir)
    assert invalid.returncode == 2
    assert "faults[0].kind: 'meteor' is not one of" in invalid.stderr
