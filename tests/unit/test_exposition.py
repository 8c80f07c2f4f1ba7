"""`/metrics` rendered by pipeline.exposition is what prometheus_client would write."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.exposition import Exposition


def _registry() -> tuple[CollectorRegistry, Counter, Histogram]:
    registry = CollectorRegistry()
    latency = Histogram(
        "gameday_event_latency_seconds",
        "Source occurred_at -> edge write.\nSecond line with a \\ backslash.",
        ["event_type", "region"],
        buckets=[0.1, 0.25, 1, 2.5],
        registry=registry,
    )
    latency.labels("goal", "eu-west").observe(0.2)
    latency.labels("goal", "eu-west").observe(3.0)
    latency.labels("red_card", "us-east").observe(1e-9)
    requests = Counter("gameday_http_requests", "Requests.", ["route", "code"], registry=registry)
    requests.labels('/v1/matches/"x"\\y\nz', "404").inc(3)
    requests.labels("/metrics", "200").inc(12345678901)
    Gauge("gameday_sse_connections", "Open streams.", registry=registry).set(-2.5)
    Info("gameday_build", "Build.", registry=registry).info({"version": "1.2.3"})
    return registry, requests, latency


def test_the_text_is_byte_for_byte_what_generate_latest_writes() -> None:
    registry, requests, latency = _registry()
    exposition = Exposition(registry)
    assert exposition.render() == generate_latest(registry)
    # Values change between scrapes; the cached prefixes must not freeze them.
    requests.labels("/metrics", "200").inc()
    latency.labels("goal", "eu-west").observe(0.05)
    assert exposition.render() == generate_latest(registry)


def test_a_series_that_is_removed_is_gone_from_the_next_scrape() -> None:
    registry, requests, _ = _registry()
    exposition = Exposition(registry)
    exposition.render()
    requests.remove("/metrics", "200")
    text = exposition.render()
    assert text == generate_latest(registry)
    assert b'route="/metrics"' not in text


def test_prometheus_reads_back_every_value_and_escaped_label() -> None:
    registry, _, _ = _registry()
    families = {
        f.name: f for f in text_string_to_metric_families(Exposition(registry).render().decode())
    }
    routes = {
        s.labels["route"]: s.value
        for s in families["gameday_http_requests"].samples
        if s.name.endswith("_total")
    }
    assert routes == {'/v1/matches/"x"\\y\nz': 3.0, "/metrics": 12345678901.0}
    buckets = {
        s.labels["le"]: s.value
        for s in families["gameday_event_latency_seconds"].samples
        if s.name.endswith("_bucket") and s.labels["event_type"] == "goal"
    }
    assert buckets == {"0.1": 0.0, "0.25": 1.0, "1.0": 1.0, "2.5": 1.0, "+Inf": 2.0}
