"""SLO specs -> rules -> promtool: the rules are valid, their tests pass, and can fail."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from chaos.cli import main
from pipeline.deploy import Tools
from slo import promtool
from slo.rules import BURN_ALERTS, rule_files
from slo.spec import SpecError, default_specs, load

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    directory = tmp_path_factory.mktemp("slo-suite")
    return directory, promtool.write_suite(load(default_specs()), directory)


def test_every_generated_rule_file_passes_promtool_check_and_its_tests(
    suite: tuple[Path, list[Path]],
) -> None:
    directory, tests = suite
    outcome = promtool.run(Tools.load().promtool, directory, tests)
    assert outcome.ok, outcome.output
    assert outcome.output.count("SUCCESS") == 3 + len(tests)


@pytest.mark.parametrize(
    ("rules", "pattern", "flipped"),
    [
        ("slo-alerts-only.yml", r" > \(14\.4 \*", " < (14.4 *"),
        ("slo-alerts-only.yml", r" > \(1 \*", " < (1 *"),
        ("operational-rules.yml", r"\) > 2\b", ") < 2"),
        ("operational-rules.yml", r" == 0 ", " == 1 "),
        ("operational-rules.yml", r"\) > 0\.05", ") < 0.05"),
    ],
)
def test_a_deliberately_wrong_rule_makes_the_generated_tests_fail(
    tmp_path: Path,
    rules: str,
    pattern: str,
    flipped: str,
) -> None:
    tests = promtool.write_suite(load(default_specs()), tmp_path)
    path = tmp_path / rules
    text, count = re.subn(pattern, flipped, path.read_text())
    assert count > 0, f"{pattern} not found in {rules}"
    path.write_text(text)
    outcome = promtool.run(Tools.load().promtool, tmp_path, tests)
    assert not outcome.ok
    assert "FAILED" in outcome.output


def test_the_same_slo_in_our_yaml_and_in_openslo_gives_the_same_rules() -> None:
    ours = {s.name: s for s in load(default_specs())}
    theirs = load([HERE / "specs" / "goal-latency.openslo.yaml"])
    assert [s.name for s in theirs] == ["goal-latency", "stream-availability"]
    for slo in theirs:
        mine = dataclasses.replace(ours[slo.name], source=slo.source)
        assert rule_files([slo]) == rule_files([mine])


def test_burn_factors_follow_the_workbook_and_scale_with_the_period() -> None:
    thirty_days = [a.factor(30 * 86400) for a in BURN_ALERTS]
    assert thirty_days == [14.4, 6.0, 3.0, 1.0]
    four_weeks = [a.factor(28 * 86400) for a in BURN_ALERTS]
    assert four_weeks == [13.44, 5.6, 2.8, pytest.approx(0.933333)]


def test_a_time_scale_divides_every_range_and_for_but_keeps_the_names() -> None:
    slos = load(default_specs())
    plain, fast = rule_files(slos), rule_files(slos, time_scale=10)
    recorded = fast["slo-rules.yml"]["groups"][0]["rules"][0]
    assert recorded["record"] == plain["slo-rules.yml"]["groups"][0]["rules"][0]["record"]
    assert "[30s]" in recorded["expr"]
    assert "[5m]" not in recorded["expr"]
    operational = {r["alert"]: r for r in fast["operational-rules.yml"]["groups"][0]["rules"]}
    assert operational["ScoreLatencyP99High"]["for"] == "6s"
    assert operational["PrimaryFeedDown"]["for"] == "3s"


def test_sloth_names_and_labels_carry_over() -> None:
    groups = rule_files(load(default_specs()))["slo-rules.yml"]["groups"]
    records = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    assert {
        "slo:sli_error:ratio_rate5m",
        "slo:sli_error:ratio_rate30d",
        "slo:objective:ratio",
        "slo:error_budget:ratio",
        "slo:period_error_budget_remaining:ratio",
    } <= records
    alert = next(
        r for g in groups for r in g["rules"] if r.get("alert") == "GoalLatencyErrorBudgetBurn"
    )
    assert alert["labels"]["sloth_severity"] in ("page", "ticket")
    region = next(g for g in groups if g["name"].endswith("region-latency"))
    assert "by (region)" in region["rules"][0]["expr"]


BAD_SPECS = [
    ({"objective": 1.5}, r"slos\[0\] \(x\)\.objective: must be between 0 and 1"),
    (
        {"objective": "ninety"},
        r"\.objective: must be a ratio like 0.99 or a percentage like 99%, got 'ninety'",
    ),
    ({"window": "a month"}, r"\.window: 'a month' is not a duration"),
    (
        {"sli": {"latency": {"metric": "gameday_nope", "threshold_s": 1}}},
        r"\.sli\.latency\.metric: gameday_nope is not a histogram in the metrics catalog",
    ),
    (
        {"sli": {"latency": {"metric": "gameday_event_latency_seconds", "threshold_s": 0.7}}},
        r"\.sli\.latency\.threshold_s: gameday_event_latency_seconds has no bucket at 0.7",
    ),
    (
        {"sli": {"ratio": {"errors": "sum(x)", "total": "sum(y[{{window}}])"}}},
        r"\.sli\.ratio\.errors: the query must use \{\{window\}\}",
    ),
    ({"colour": "red"}, r"slos\[0\]: unknown field\(s\): colour"),
    (
        {
            "sli": {
                "latency": {
                    "metric": "gameday_event_latency_seconds",
                    "threshold_s": 1,
                    "selector": {"team": "GHA"},
                }
            }
        },
        r"\.sli\.latency\.selector\.team: gameday_event_latency_seconds has no label team",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD_SPECS)
def test_an_invalid_spec_exits_2_naming_the_file_and_the_field(
    tmp_path: Path,
    change: dict[str, object],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    slo = {
        "name": "x",
        "objective": 0.99,
        "sli": {"latency": {"metric": "gameday_event_latency_seconds", "threshold_s": 1}},
        **change,
    }
    spec = tmp_path / "team.yaml"
    spec.write_text(yaml.safe_dump({"service": "s", "slos": [slo]}))
    with pytest.raises(SpecError, match=message):
        load([spec])
    assert main(["slo", "rules", "--spec", str(spec), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "invalid spec" in error
    assert str(spec) in error
    assert not (tmp_path / "out").exists()


def test_an_openslo_document_we_cannot_evaluate_is_named(tmp_path: Path) -> None:
    doc = yaml.safe_load((HERE / "specs" / "goal-latency.openslo.yaml").read_text().split("---")[0])
    doc["spec"]["budgetingMethod"] = "Timeslices"
    spec = tmp_path / "timeslices.yaml"
    spec.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match=r"spec\.budgetingMethod: 'Timeslices' is not supported"):
        load([spec])
