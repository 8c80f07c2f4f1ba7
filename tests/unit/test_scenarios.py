"""Drill scenario files: the shipped ones load; a wrong one names its file and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from chaos.scenario import ScenarioError, available_scenarios, load_scenario

GOOD: dict[str, Any] = {
    "name": "x",
    "load": {"fans_per_region": 2, "script": "gha-pan", "speed": 60},
    "faults": [
        {
            "kind": "toxic",
            "link": "eu-west.redis-a",
            "toxic": "latency",
            "attributes": {"latency": 1500},
            "at": "20s",
            "duration": "1m",
        }
    ],
    "expect": {
        "alerts": [{"name": "RegionSkewHigh", "within": "2m"}],
        "slowest_hop_region": "eu-west",
    },
}


def test_every_shipped_scenario_loads() -> None:
    names = available_scenarios()
    assert {
        "redis-failover",
        "region-skew",
        "feed-loss",
        "kafka-broker-restart",
        "goal-spike",
    } <= set(names)
    for name in names:
        scenario = load_scenario(name)
        assert scenario.name == name
        assert scenario.faults or scenario.load.spike_fans_per_region


def test_durations_are_read_in_seconds() -> None:
    region_skew = load_scenario("region-skew")
    assert region_skew.faults[0].at_s == 20
    assert region_skew.faults[0].duration_s == 240
    assert region_skew.expect.alerts[0].within_s == 180
    assert region_skew.expect.alerts[0].labels == {"region": "eu-west"}


def _bad(path: Path, **changes: Any) -> Path:
    doc = {**GOOD, **changes}
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"faults": [{"kind": "meteor", "at": "1s", "duration": "1s"}]},
            r"faults\[0\]\.kind: 'meteor' is not one of",
        ),
        (
            {
                "faults": [
                    {
                        "kind": "toxic",
                        "link": "mars.redis-a",
                        "toxic": "latency",
                        "at": "1s",
                        "duration": "1s",
                    }
                ]
            },
            r"faults\[0\]\.link: 'mars.redis-a' is not one of",
        ),
        (
            {
                "faults": [
                    {
                        "kind": "toxic",
                        "link": "eu-west.redis-a",
                        "toxic": "gremlins",
                        "at": "1s",
                        "duration": "1s",
                    }
                ]
            },
            r"faults\[0\]\.toxic: 'gremlins'",
        ),
        ({"faults": [{"kind": "feed_silent", "duration": "1s"}]}, r"faults\[0\]\.at: is required"),
        (
            {"faults": [{"kind": "feed_silent", "at": "soon", "duration": "1s"}]},
            r"faults\[0\]\.at: 'soon' is not a duration",
        ),
        (
            {"faults": [{"kind": "feed_silent", "at": "1s", "duration": "1s", "link": "x"}]},
            r"faults\[0\]\.link: does not apply to a feed_silent fault",
        ),
        (
            {
                "faults": [
                    {"kind": "service_down", "service": "mainframe", "at": "1s", "duration": "1s"}
                ]
            },
            r"faults\[0\]\.service: 'mainframe' is not one of",
        ),
        ({"faults": []}, r"faults: must be a non-empty list"),
        (
            {"faults": [{"kind": "bad_canary", "at": "1s", "duration": "1s", "error_ratio": 2}]},
            r"faults\[0\]\.error_ratio: must be a number in \[0, 1\], got 2",
        ),
        (
            {
                "faults": [
                    {
                        "kind": "feed_duplicates",
                        "at": "1s",
                        "duration": "1s",
                        "duplicate_ratio": 0,
                        "swap_ratio": 0,
                    }
                ]
            },
            r"faults\[0\]: a feed_duplicates fault needs a ratio above 0",
        ),
        (
            {"faults": [{"kind": "feed_silent", "at": "1s", "duration": "1s", "error_ratio": 1}]},
            r"faults\[0\]\.error_ratio: does not apply to a feed_silent fault",
        ),
        (
            {"steady_state": {"probes": [{"name": "lag", "query": "x", "within": [5, 1]}]}},
            r"steady_state\.probes\[0\]\.within: must be \[low, high\]",
        ),
        ({"load": {"canary_share": 1.5}}, r"load\.canary_share: must be a number in \[0, 1\]"),
        ({"expect": {"kafka_log": "yes"}}, r"expect\.kafka_log: must be true or false"),
        ({"colour": "red"}, r"unknown field\(s\): colour"),
        ({"load": {"script": "eng-fra"}}, r"load\.script: 'eng-fra' is not one of"),
        ({"load": {"fans_per_region": 0}}, r"load\.fans_per_region: must be a number >= 1"),
        ({"expect": {"alerts": "RegionSkewHigh"}}, r"expect\.alerts: must be a list"),
        ({"expect": {"slowest_hop_region": "mars"}}, r"expect\.slowest_hop_region: 'mars'"),
        ({"expect": {"delivery": {"lost": -1}}}, r"expect\.delivery\.lost: must be a number >= 0"),
    ],
)
def test_an_invalid_scenario_names_the_file_and_the_field(
    tmp_path: Path,
    changes: dict[str, Any],
    message: str,
) -> None:
    path = _bad(tmp_path / "broken.yaml", **changes)
    with pytest.raises(ScenarioError, match=message) as error:
        load_scenario(path)
    assert str(path) in str(error.value)


def test_an_unknown_drill_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match=r"unknown drill 'nope'; known: .*redis-failover"):
        load_scenario("nope")
