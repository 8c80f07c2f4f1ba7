"""Generated promtool tests: every generated alert fires on series that breach it and stays
silent on series that do not; every latency SLI records the error ratio it should.

`write_suite(slos, dir)` writes the (unscaled) rule files and the tests beside them;
`run(dir)` runs the real `promtool check rules` and `promtool test rules`.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.telemetry import CATALOG, le_label
from slo.rules import alert_name, alert_rules, dump, operational_rules, rule_files, sloth_labels
from slo.spec import LatencySli, Slo

STEPS = 240  # four hours of one-minute samples
BUDGET_MULTIPLES = {
    "fast burn": (20.0, {"page", "ticket"}),
    "slow burn": (2.0, {"ticket"}),
    "healthy": (0.5, set()),
}


def _constant(value: float) -> str:
    return f"{value:g}+0x{STEPS}"


def _rising(per_minute: float) -> str:
    return f"0+{per_minute:g}x{STEPS}"


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _group_labels(slo: Slo) -> dict[str, str]:
    return {label: f"test-{label}" for label in slo.group_by}


def _example(regex: str) -> str:
    """A value matching a selector regex: its first alternative, if it is plain."""
    first = regex.split("|", maxsplit=1)[0]
    return first if re.fullmatch(r"[A-Za-z0-9_.\-]*", first) else "x"


def _alert_case(slo: Slo, multiple: float, firing: set[str]) -> dict[str, Any]:
    labels = {**sloth_labels(slo), **_group_labels(slo)}
    error = round((1 - slo.objective) * multiple, 12)
    windows = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    rules = {r["labels"]["severity"]: r for r in alert_rules(slo)}
    return {
        "interval": "1m",
        "input_series": [
            _series(f"slo:sli_error:ratio_rate{w}", {**labels, "sloth_window": w}, _constant(error))
            for w in windows
        ],
        "alert_rule_test": [
            {
                "eval_time": "30m",
                "alertname": alert_name(slo),
                "exp_alerts": [
                    {
                        "exp_labels": {**labels, **rules[s]["labels"]},
                        "exp_annotations": rules[s]["annotations"],
                    }
                    for s in sorted(firing)
                ],
            }
        ],
    }


def _recording_case(slo: Slo) -> dict[str, Any] | None:
    if not isinstance(slo.sli, LatencySli):
        return None  # a ratio SLI is the spec's own PromQL: its alerts are tested, not its query
    sli = slo.sli
    spec = CATALOG[sli.metric]
    labels = {
        label: _example(sli.selector[label]) if label in sli.selector else f"test-{label}"
        for label in spec.labels
    }
    le = le_label(sli.threshold_s)
    grouped = {k: v for k, v in labels.items() if k in slo.group_by}
    return {
        "interval": "1m",
        "input_series": [
            _series(f"{sli.metric}_bucket", {**labels, "le": le}, _rising(75)),
            _series(f"{sli.metric}_count", labels, _rising(100)),
        ],
        "promql_expr_test": [
            {
                "expr": f'slo:sli_error:ratio_rate5m{{sloth_id="{slo.id}"}}',
                "eval_time": "30m",
                "exp_samples": [
                    {
                        "labels": "slo:sli_error:ratio_rate5m{"
                        + ",".join(
                            f'{k}="{v}"'
                            for k, v in sorted(
                                {**sloth_labels(slo), **grouped, "sloth_window": "5m"}.items()
                            )
                        )
                        + "}",
                        "value": 0.25,
                    }
                ],
            }
        ],
    }


def _latency_buckets(labels: dict[str, str], at_s: float) -> list[dict[str, str]]:
    """Histogram series where every observation (100 a minute) takes `at_s` seconds."""
    buckets = [
        *(le_label(b) for b in CATALOG["gameday_event_latency_seconds"].buckets or ()),
        "+Inf",
    ]
    out = [
        _series(
            "gameday_event_latency_seconds_bucket",
            {**labels, "le": le},
            _rising(100 if le == "+Inf" or float(le) >= at_s else 0),
        )
        for le in buckets
    ]
    out.append(_series("gameday_event_latency_seconds_count", labels, _rising(100)))
    return out


def _operational_cases() -> list[dict[str, Any]]:
    rules = {r["alert"]: r for r in operational_rules(1.0)}

    def case(
        alert: str,
        series: list[dict[str, str]],
        fires: dict[str, str] | None,
    ) -> dict[str, Any]:
        expected = (
            []
            if fires is None
            else [
                {
                    "exp_labels": {**fires, **rules[alert]["labels"]},
                    "exp_annotations": rules[alert]["annotations"],
                }
            ]
        )
        return {
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [{"eval_time": "10m", "alertname": alert, "exp_alerts": expected}],
        }

    edge = {"event_type": "goal", "region": "us-east", "version": "stable"}
    slow_region = {"event_type": "goal", "region": "eu-west", "version": "stable"}

    def requests(errors_per_minute: float) -> list[dict[str, str]]:
        base = {"region": "us-east", "version": "canary", "route": "stream"}
        return [
            _series(
                "gameday_http_requests_total",
                {**base, "status": "200"},
                _rising(100 - errors_per_minute),
            ),
            _series(
                "gameday_http_requests_total", {**base, "status": "503"}, _rising(errors_per_minute)
            ),
        ]

    def feed(connected: float, age_s: float) -> list[dict[str, str]]:
        return [
            _series("gameday_feed_primary_connected", {}, _constant(connected)),
            _series("gameday_feed_last_packet_age_seconds", {}, _constant(age_s)),
        ]

    return [
        case(
            "ScoreLatencyP99High",
            _latency_buckets(edge, 2.5),
            {"region": "us-east", "version": "stable"},
        ),
        case("ScoreLatencyP99High", _latency_buckets(edge, 0.1), None),
        case("PrimaryFeedDown", feed(0, 60), {}),
        case("PrimaryFeedDown", feed(1, 0.5), None),
        case(
            "RegionSkewHigh", _latency_buckets(edge, 0.1) + _latency_buckets(slow_region, 2.5), {}
        ),
        case(
            "RegionSkewHigh",
            _latency_buckets(edge, 0.1) + _latency_buckets(slow_region, 0.25),
            None,
        ),
        case("CanaryErrorRateHigh", requests(10), {"region": "us-east"}),
        case("CanaryErrorRateHigh", requests(1), None),
    ]


def write_suite(slos: list[Slo], directory: Path) -> list[Path]:
    """Rule files (unscaled) and their promtool tests; returns the test files."""
    directory.mkdir(parents=True, exist_ok=True)
    files = rule_files(slos)
    for name, content in files.items():
        (directory / name).write_text(dump(content))
    alerts_only = {
        "groups": [
            g for g in files["slo-rules.yml"]["groups"] if all("alert" in r for r in g["rules"])
        ]
    }
    (directory / "slo-alerts-only.yml").write_text(dump(alerts_only))
    suites = {
        "test-slo-alerts.yml": (
            "slo-alerts-only.yml",
            [
                _alert_case(slo, multiple, firing)
                for slo in slos
                for multiple, firing in BUDGET_MULTIPLES.values()
            ],
        ),
        "test-slo-recordings.yml": (
            "slo-rules.yml",
            [c for c in (_recording_case(slo) for slo in slos) if c is not None],
        ),
        "test-operational.yml": ("operational-rules.yml", _operational_cases()),
    }
    written = []
    for name, (rules, tests) in suites.items():
        if tests:
            path = directory / name
            path.write_text(
                dump({"rule_files": [rules], "evaluation_interval": "1m", "tests": tests})
            )
            written.append(path)
    return written


@dataclass
class PromtoolRun:
    ok: bool
    output: str


def run(promtool: Path, directory: Path, tests: list[Path]) -> PromtoolRun:
    rules = sorted(p for p in directory.glob("*.yml") if not p.name.startswith("test-"))
    outputs = []
    ok = True
    for argv in (
        [str(promtool), "check", "rules", *map(str, rules)],
        [str(promtool), "test", "rules", *map(str, tests)],
    ):
        done = subprocess.run(
            argv, capture_output=True, text=True, cwd=directory, check=False, timeout=120
        )
        outputs.append(
            f"$ {' '.join(Path(a).name if i == 0 else a for i, a in enumerate(argv))}"
            f"\n{done.stdout}{done.stderr}"
        )
        ok = ok and done.returncode == 0
    return PromtoolRun(ok, "\n".join(outputs))
