"""Stack settings (`gameday up --set`) and Chaos Toolkit export/import."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from chaos.ctk import export, import_experiment
from chaos.scenario import ScenarioError, available_scenarios, load_scenario
from pipeline.deploy.services import PipelineLayout
from pipeline.deploy.settings import SettingError, parse_assignment


def configs(**settings: Any) -> dict[str, dict[str, Any]]:
    return PipelineLayout(defaultdict(lambda: 1), Path("/run"), settings=settings).configs()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("edge.replay_enabled=false", ("edge.replay_enabled", False)),
        ("control.canary_share=0.25", ("control.canary_share", 0.25)),
        (
            'scorekeeper.static_master="127.0.0.1:6379"',
            ("scorekeeper.static_master", "127.0.0.1:6379"),
        ),
        (
            "scorekeeper.static_master=127.0.0.1:6379",
            ("scorekeeper.static_master", "127.0.0.1:6379"),
        ),
    ],
)
def test_a_setting_is_read_as_json_or_else_as_text(text: str, expected: tuple[str, Any]) -> None:
    assert parse_assignment(text) == expected


@pytest.mark.parametrize("text", ["edge", "edge=1", "edge.=1", "replay_enabled=false"])
def test_a_setting_without_service_and_field_is_refused(text: str) -> None:
    with pytest.raises(SettingError, match=r"expected SERVICE\.FIELD=VALUE"):
        parse_assignment(text)


def test_edge_means_every_edge_and_a_named_service_only_itself() -> None:
    changed = configs(**{"edge.replay_enabled": False, "edge-canary.defect_error_ratio": 0.5})
    edges = [name for name in changed if name.startswith("edge-")]
    assert len(edges) == 4
    assert all(changed[name]["replay_enabled"] is False for name in edges)
    assert changed["edge-canary"]["defect_error_ratio"] == 0.5
    assert changed["edge-eu-west"]["defect_error_ratio"] == 0.0
    assert configs()["edge-eu-west"]["replay_enabled"] is True


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"kafka.x": 1},
            "no service 'kafka'; settable: edge, control, corrections, edge-ap-southeast",
        ),
        ({"ingest.bogus": 1}, "ingest has no field 'bogus'; fields: admin_token_file"),
        ({"ingest.fallback_enabled": "no"}, "fallback_enabled must be a bool"),
        ({"control.canary_share": 3}, r"canary_share must be in \[0, 1\]"),
    ],
)
def test_a_bad_setting_names_the_service_or_field(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingError, match=message):
        PipelineLayout.check_settings(settings)


@pytest.mark.parametrize("name", available_scenarios())
def test_an_exported_scenario_imports_back_unchanged(name: str) -> None:
    scenario = load_scenario(name)
    again = import_experiment(export(scenario), f"{name}.json")
    assert dataclasses.replace(again, source="") == dataclasses.replace(scenario, source="")


def test_the_export_replays_the_faults_on_their_declared_timeline() -> None:
    experiment = export(load_scenario("scorekeeper-crash"))
    method = experiment["method"]
    funcs = [(a["provider"]["func"], a["pauses"]["before"]) for a in method]
    assert funcs == [
        ("create_toxic", 20.0),
        ("create_toxic", 0.0),
        ("inject", 40.0),
        ("revert", 30.0),
        ("delete_toxic", 10.0),
        ("delete_toxic", 0.0),
    ]
    assert len(experiment["rollbacks"]) == 3


def test_an_experiment_without_the_gameday_block_is_read_from_its_method() -> None:
    experiment = {
        "title": "Redis link slows down",
        "method": [
            {
                "type": "action",
                "name": "slow",
                "provider": {
                    "type": "python",
                    "module": "chaostoxi.toxic.actions",
                    "func": "create_latency_toxic",
                    "arguments": {
                        "for_proxy": "eu-west.redis-a",
                        "toxic_name": "slow",
                        "latency": 800,
                    },
                },
                "pauses": {"before": 10, "after": 45},
            },
            {
                "type": "action",
                "name": "cut",
                "provider": {
                    "type": "python",
                    "module": "chaostoxi.proxy.actions",
                    "func": "disable_proxy",
                    "arguments": {"proxy_name": "ingest.vendor-primary"},
                },
            },
        ],
        "rollbacks": [
            {
                "type": "action",
                "name": "fast",
                "provider": {
                    "type": "python",
                    "module": "chaostoxi.toxic.actions",
                    "func": "delete_toxic",
                    "arguments": {"for_proxy": "eu-west.redis-a", "toxic_name": "slow"},
                },
            }
        ],
        "steady-state-hypothesis": {
            "title": "caught up",
            "probes": [
                {
                    "type": "probe",
                    "name": "lag",
                    "tolerance": {"type": "range", "range": [0, 5]},
                    "provider": {
                        "type": "python",
                        "module": "chaosprometheus.probes",
                        "func": "query",
                        "arguments": {"query": "max(gameday_kafka_consumer_lag)"},
                    },
                }
            ],
        },
    }
    scenario = import_experiment(experiment, "slow.json")
    assert scenario.name == "redis-link-slows-down"
    slow, cut = scenario.faults
    assert (slow.kind, slow.link, slow.toxic, slow.attributes) == (
        "toxic",
        "eu-west.redis-a",
        "latency",
        {"latency": 800.0},
    )
    assert (slow.at_s, slow.duration_s) == (10, 60)  # until the method ends, at least 1m
    assert (cut.kind, cut.at_s, cut.duration_s) == ("link_down", 55, 60)
    assert scenario.steady_state_probes[0].query == "max(gameday_kafka_consumer_lag)"
    assert scenario.expect.other_alerts is True


def test_an_unsupported_activity_is_named_with_what_is_supported() -> None:
    experiment = {
        "method": [
            {
                "type": "action",
                "name": "kill pods",
                "provider": {
                    "type": "python",
                    "module": "chaosk8s.pod.actions",
                    "func": "terminate_pods",
                },
            }
        ]
    }
    with pytest.raises(
        ScenarioError,
        match=r"x.json: method\[0\]: chaosk8s.pod.actions.terminate_pods is not supported; "
        r"gameday imports chaostoxi",
    ):
        import_experiment(experiment, "x.json")
    with pytest.raises(ScenarioError, match="http providers are not supported"):
        import_experiment(
            {"method": [{"name": "h", "provider": {"type": "http", "url": "http://x"}}]}, "x.json"
        )
