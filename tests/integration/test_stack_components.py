"""Each component of the local stack is the real server and reachable as the pipeline needs it."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

import httpx
import pytest
import redis
from confluent_kafka import Consumer, Producer

from pipeline.deploy import Toxiproxy
from pipeline.topology import REDIS_MASTER_NAME, REGIONS, redis_link


def _hostport(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def test_a_record_produced_to_the_score_topic_is_consumed_back(endpoints: dict[str, Any]) -> None:
    bootstrap, topic = endpoints["kafka_bootstrap"], endpoints["kafka_topic"]
    marker = uuid.uuid4().hex.encode()
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 0}
    )
    delivered: list[tuple[int, int]] = []
    producer.produce(
        topic,
        key=b"gha-pan",
        value=marker,
        on_delivery=lambda err, msg: (
            delivered.append((msg.partition(), msg.offset()))
            if err is None
            else pytest.fail(f"delivery failed: {err}")
        ),
    )
    assert producer.flush(15) == 0
    assert len(delivered) == 1

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        seen = None
        while seen is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None and msg.value() == marker:
                seen = msg
        assert seen is not None, "the produced record never came back"
        assert seen.key() == b"gha-pan"
        assert (seen.partition(), seen.offset()) == delivered[0]
        metadata = consumer.list_topics(topic, timeout=5)
        assert len(metadata.topics[topic].partitions) == 3
    finally:
        consumer.close()


def test_every_sentinel_names_the_same_master_and_the_replica_is_connected(
    endpoints: dict[str, Any],
) -> None:
    masters = set()
    for address in endpoints["redis_sentinels"]:
        host, port = _hostport(address)
        with redis.Redis(host=host, port=port, decode_responses=True) as sentinel:
            masters.add(tuple(sentinel.sentinel_get_master_addr_by_name(REDIS_MASTER_NAME)))
            replicas = sentinel.sentinel_slaves(REDIS_MASTER_NAME)
            assert len(replicas) == 1
            assert "s_down" not in replicas[0]["flags"]
    assert len(masters) == 1
    host, port = masters.pop()
    with redis.Redis(host=host, port=int(port), decode_responses=True) as master:
        info = master.info("replication")
        assert info["role"] == "master"
        assert info["connected_slaves"] == 1
        assert info["slave0"]["state"] == "online"


def _median_ping_ms(client: redis.Redis, n: int = 15) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        client.ping()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def test_a_latency_toxic_on_a_region_link_delays_redis_round_trips(
    endpoints: dict[str, Any],
) -> None:
    link = redis_link(REGIONS[0], "redis-a")
    host, port = _hostport(endpoints["links"][link]["listen"])
    added_ms = 150

    async def toxic(add: bool) -> None:
        async with Toxiproxy(endpoints["toxiproxy_api"]) as tp:
            if add:
                await tp.add_toxic(link, "latency", name="test-latency", latency=added_ms)
            else:
                await tp.remove_toxic(link, "test-latency")

    with redis.Redis(host=host, port=port, socket_timeout=5) as client:
        before = _median_ping_ms(client)
        asyncio.run(toxic(True))
        try:
            during = _median_ping_ms(client)
        finally:
            asyncio.run(toxic(False))
        after = _median_ping_ms(client)
    # Toxiproxy adds at least the declared latency to every reply; nothing else is timed.
    assert during >= before + added_ms * 0.95, (before, during)
    assert after < during - added_ms * 0.5, (during, after)


def test_every_prometheus_target_is_up(endpoints: dict[str, Any]) -> None:
    url = f"{endpoints['prometheus']}/api/v1/targets"
    deadline = time.monotonic() + 20
    while True:
        targets = httpx.get(url, timeout=5).json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in targets}
        drill = health.pop("gameday-drill", None)  # served only while `gameday drill` runs
        if all(h == "up" for h, _ in health.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert drill is not None
    assert set(health) == {
        "prometheus",
        "alertmanager",
        "toxiproxy",
        "kafka",
        "feed",
        "ingest",
        "scorekeeper",
        "edge-us-east",
        "edge-eu-west",
        "edge-ap-southeast",
        "edge-canary",
        "control",
        "corrections",
    }
    assert all(h == "up" for h, _ in health.values()), health
    # The broker's own metrics arrive through the JMX exporter.
    query = httpx.get(
        f"{endpoints['prometheus']}/api/v1/query",
        timeout=5,
        params={"query": 'count({job="kafka", __name__=~"kafka_server_.*"})'},
    ).json()
    assert float(query["data"]["result"][0]["value"][1]) > 0


def test_alertmanager_receives_an_alert_posted_to_it(endpoints: dict[str, Any]) -> None:
    name = f"GamedayProbe{uuid.uuid4().hex[:8]}"
    alert = {
        "labels": {"alertname": name, "severity": "ticket", "service": "gameday"},
        "annotations": {"summary": "posted by the integration tests"},
    }
    response = httpx.post(f"{endpoints['alertmanager']}/api/v2/alerts", json=[alert], timeout=5)
    assert response.status_code == 200
    deadline = time.monotonic() + 10
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:
        found = httpx.get(
            f"{endpoints['alertmanager']}/api/v2/alerts",
            timeout=5,
            params={"filter": f'alertname="{name}"'},
        ).json()
        time.sleep(0.2)
    assert len(found) == 1
    assert found[0]["status"]["state"] == "active"
    assert found[0]["labels"]["service"] == "gameday"


def test_prometheus_is_wired_to_alertmanager(endpoints: dict[str, Any]) -> None:
    answer = httpx.get(f"{endpoints['prometheus']}/api/v1/alertmanagers", timeout=5).json()
    active = [a["url"] for a in answer["data"]["activeAlertmanagers"]]
    assert active == [f"{endpoints['alertmanager']}/api/v2/alerts"]
