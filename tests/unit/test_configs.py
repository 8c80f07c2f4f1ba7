"""The config files the local stack hands to each server."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.deploy import configs
from pipeline.deploy.ports import free_ports, port_in_use


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_kafka_runs_kraft_combined_mode_on_loopback_only(tmp_path: Path) -> None:
    props = _props(
        configs.kafka_properties(broker_port=9092, controller_port=9093, data_dir=tmp_path)
    )
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["auto.create.topics.enable"] == "false"
    assert props["log.dirs"] == str(tmp_path)


def test_kafka_cluster_ids_are_22_url_safe_characters() -> None:
    ids = {configs.kafka_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert not any(i.startswith("-") for i in ids)  # the storage tool would read an option
    assert all(len(i) == 22 and "=" not in i and "/" not in i and "+" not in i for i in ids)


def test_redis_replica_follows_the_primary_and_binds_loopback(tmp_path: Path) -> None:
    primary = configs.redis_conf(port=7000, data_dir=tmp_path, replica_of=None)
    replica = configs.redis_conf(port=7001, data_dir=tmp_path, replica_of=7000)
    assert "replicaof" not in primary
    assert "replicaof 127.0.0.1 7000" in replica.splitlines()
    assert "bind 127.0.0.1" in primary.splitlines()


def test_sentinels_monitor_scores_with_quorum_two_and_fast_failover(tmp_path: Path) -> None:
    conf = configs.sentinel_conf(
        port=26379,
        data_dir=tmp_path,
        master_port=7000,
        down_after_ms=1000,
        failover_timeout_ms=4000,
    ).splitlines()
    assert "sentinel monitor scores 127.0.0.1 7000 2" in conf
    assert "sentinel down-after-milliseconds scores 1000" in conf
    assert "bind 127.0.0.1" in conf


def test_prometheus_scrapes_every_target_each_second_and_loads_rules() -> None:
    config = yaml.safe_load(
        configs.prometheus_yml(
            scrape_targets={"kafka": ["127.0.0.1:1"], "toxiproxy": ["127.0.0.1:2"]},
            alertmanager="127.0.0.1:3",
            rules_glob="/run/rules/*.yml",
        )
    )
    assert config["global"]["scrape_interval"] == "1000ms"
    assert config["global"]["evaluation_interval"] == "1000ms"
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert jobs == {"kafka": ["127.0.0.1:1"], "toxiproxy": ["127.0.0.1:2"]}
    assert config["rule_files"] == ["/run/rules/*.yml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:3"]


def test_alertmanager_sends_firing_and_resolved_alerts_to_webhooks() -> None:
    silent = yaml.safe_load(configs.alertmanager_yml())
    assert silent["receivers"] == [{"name": "gameday"}]
    wired = yaml.safe_load(configs.alertmanager_yml(webhook_urls=["http://127.0.0.1:9/hook"]))
    hook = wired["receivers"][0]["webhook_configs"][0]
    assert hook == {"url": "http://127.0.0.1:9/hook", "send_resolved": True, "max_alerts": 0}


def test_free_ports_are_distinct_and_free() -> None:
    ports = free_ports([f"p{i}" for i in range(30)])
    assert len(set(ports.values())) == 30
    assert not any(port_in_use(p) for p in ports.values())
