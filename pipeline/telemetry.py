"""One place for the metrics catalog and tracing setup, used by every service, slo/ and dashboards/.

The catalog names each metric once (name, kind, labels, help, buckets). Services create
their metrics from it with `Metrics(registry)`; dashboards and SLO rules read it, so a
metric cannot be renamed in one place and forgotten in another.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.utils import floatToGoString

from pipeline import env

Kind = Literal["counter", "gauge", "histogram"]

LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    10.0,
    30.0,
)
"""Source -> fan latency buckets: one at every SLO threshold (1 s goals, 3 s cards and
substitutions) and at the p99 alert threshold (2 s)."""

STALENESS_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
"""How old the score on a fan's screen is: seconds to many minutes (quiet spells count)."""

FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""For one hop (a produce, a Redis apply)."""


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None


def _c(name: str, help: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, "counter", help, labels)


def _g(name: str, help: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, "gauge", help, labels)


def _h(name: str, help: str, buckets: tuple[float, ...], *labels: str) -> MetricSpec:
    return MetricSpec(name, "histogram", help, labels, buckets)


CATALOG: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        # --- what fans get (edges) ------------------------------------------------------
        _h(
            "gameday_event_latency_seconds",
            "Source occurred_at to the edge writing the update to every subscribed fan.",
            LATENCY_BUCKETS,
            "event_type",
            "region",
            "version",
        ),
        _g("gameday_sse_connections", "Open SSE streams.", "region", "version"),
        _c("gameday_sse_disconnects_total", "SSE streams closed, by why.", "region", "reason"),
        _c("gameday_sse_frames_total", "Update frames written to fans (one per fan).", "region"),
        _c("gameday_sse_heartbeats_total", "Heartbeat rounds sent to every open stream.", "region"),
        _c(
            "gameday_sse_replayed_total",
            "Frames sent to reconnecting fans from Last-Event-ID.",
            "region",
            "source",
        ),
        _c(
            "gameday_edge_updates_total",
            "Updates the edge read from Redis, by outcome.",
            "region",
            "outcome",
        ),
        _c(
            "gameday_edge_gap_repairs_total",
            "Missing updates fetched from a match stream.",
            "region",
        ),
        _c(
            "gameday_edge_redis_reconnects_total",
            "Times an edge reconnected to Redis; master_changed when it followed a failover.",
            "region",
            "master_changed",
        ),
        _c(
            "gameday_snapshot_requests_total",
            "Snapshot requests, by how they were answered.",
            "region",
            "result",
        ),
        _c(
            "gameday_http_requests_total",
            "HTTP requests to an edge by route and status.",
            "region",
            "version",
            "route",
            "status",
        ),
        _c(
            "gameday_edge_rejected_total",
            "Requests and connections an edge refused, by reason (pipeline/edge.py "
            "REJECTIONS: malformed, header_timeout, per_address_cap, bad_last_event_id, ...).",
            "region",
            "reason",
        ),
        # --- what fans' browsers report (POST /v1/telemetry on an edge) -----------------
        _h(
            "gameday_client_update_delay_seconds",
            "Source occurred_at to the browser applying the update (the browser's clock).",
            LATENCY_BUCKETS,
            "region",
        ),
        _h(
            "gameday_client_staleness_seconds",
            "Age of the newest update a page shows, as the page reports it every few seconds.",
            STALENESS_BUCKETS,
            "region",
            "visible",
        ),
        _h(
            "gameday_client_page_load_seconds",
            "Navigation to the page's load event.",
            LATENCY_BUCKETS,
            "region",
        ),
        _c(
            "gameday_client_reports_total",
            "Telemetry reports from pages, by result.",
            "region",
            "result",
        ),
        # --- ingest ---------------------------------------------------------------------
        _c("gameday_ingest_packets_total", "Vendor packets read, by outcome.", "feed", "outcome"),
        _c("gameday_ingest_rejected_total", "Packets rejected as invalid, by reason.", "reason"),
        _c(
            "gameday_ingest_duplicates_dropped_total",
            "Valid events dropped because their event_id was already ingested.",
            "feed",
        ),
        _h("gameday_kafka_produce_seconds", "Produce to acknowledgement (acks=all).", FAST_BUCKETS),
        _g("gameday_feed_mode", "1 while fans are served from the fallback vendor."),
        _c("gameday_feed_mode_changes_total", "Switches between primary and fallback.", "to"),
        _g("gameday_feed_primary_connected", "1 while ingest holds the primary stream open."),
        _g(
            "gameday_feed_last_packet_age_seconds",
            "Seconds since the primary vendor last sent anything (heartbeats included).",
        ),
        _c("gameday_fallback_polls_total", "Polls of the secondary vendor, by result.", "result"),
        # --- scorekeeper ----------------------------------------------------------------
        _g("gameday_kafka_consumer_lag", "Messages in Kafka not yet consumed.", "partition"),
        _c("gameday_scorekeeper_applied_total", "Events applied to Redis.", "event_type"),
        _c("gameday_scorekeeper_rejected_total", "Events not applied, by why.", "reason"),
        _c(
            "gameday_scorekeeper_gap_fills_total",
            "Events fetched from the vendor's replay to fill a gap.",
            "result",
        ),
        _h(
            "gameday_scorekeeper_apply_seconds",
            "Redis apply plus WAIT for the replica, per event.",
            FAST_BUCKETS,
        ),
        _c(
            "gameday_scorekeeper_redis_retries_total",
            "Applies retried after a Redis error or a failed WAIT, or (no_replica) written "
            "without waiting for a replica because none was online.",
            "reason",
        ),
        _c("gameday_reconcile_runs_total", "Reconciler passes.", "result"),
        _c(
            "gameday_reconcile_corrections_total", "Drift the reconciler repaired, by kind.", "kind"
        ),
        _c(
            "gameday_redis_failovers_followed_total",
            "Master changes a service followed.",
            "service",
        ),
        # --- the drill runner (chaos/, scraped while `gameday drill` runs) ---------------
        _g(
            "gameday_fault_active",
            "1 while a drill's fault is injected, by fault and kind (dashboard annotations).",
            "fault",
            "kind",
        ),
        # --- rollout (pipeline/control.py) ------------------------------------------------
        _g("gameday_rollout_canary_share", "Share of new fans sent to the canary edge (0-1)."),
        _c(
            "gameday_rollout_decisions_total",
            "Rollout decisions (rollback, switch to fallback, promote), by the alert behind.",
            "decision",
            "reason",
        ),
        # --- corrections (pipeline/corrections/) ------------------------------------------------
        _c(
            "gameday_corrections_requests_total",
            "Calls to the corrections service by method and outcome: ok, or why refused "
            "(unauthenticated, permission_denied, bad_match_id, bad_field, unknown_match, "
            "stale, duplicate, unknown_ref, refused_by_scorekeeper, kafka_unavailable).",
            "method",
            "outcome",
        ),
        _h(
            "gameday_corrections_apply_seconds",
            "A correction produced to Kafka until the scorekeeper applied it (audit trail).",
            LATENCY_BUCKETS,
        ),
    )
}


class Metrics:
    """The catalog's metrics in one registry, created on first use."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._made: dict[str, Counter | Gauge | Histogram] = {}
        self._lock = threading.Lock()

    def _get(self, name: str, kind: Kind) -> Counter | Gauge | Histogram:
        spec = CATALOG.get(name)
        if spec is None:
            raise KeyError(f"{name} is not in the metrics catalog (pipeline/telemetry.py)")
        if spec.kind != kind:
            raise TypeError(f"{name} is a {spec.kind}, not a {kind}")
        with self._lock:
            metric = self._made.get(name)
            if metric is None:
                metric = _build(spec, self.registry)
                self._made[name] = metric
        return metric

    def counter(self, name: str) -> Counter:
        metric = self._get(name, "counter")
        assert isinstance(metric, Counter)
        return metric

    def gauge(self, name: str) -> Gauge:
        metric = self._get(name, "gauge")
        assert isinstance(metric, Gauge)
        return metric

    def histogram(self, name: str) -> Histogram:
        metric = self._get(name, "histogram")
        assert isinstance(metric, Histogram)
        return metric


def _build(spec: MetricSpec, registry: CollectorRegistry) -> Counter | Gauge | Histogram:
    if spec.kind == "counter":
        # prometheus_client appends _total itself.
        return Counter(spec.name.removesuffix("_total"), spec.help, spec.labels, registry=registry)
    if spec.kind == "gauge":
        return Gauge(spec.name, spec.help, spec.labels, registry=registry)
    return Histogram(
        spec.name,
        spec.help,
        spec.labels,
        registry=registry,
        buckets=spec.buckets or Histogram.DEFAULT_BUCKETS,
    )


# --- tracing -------------------------------------------------------------------------------


class JsonLinesSpanExporter(SpanExporter):
    """Writes finished spans as JSON lines, one file per process, for `gameday trace`."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [span.to_json(indent=None) + "\n" for span in spans]
        with self._lock:
            self._file.writelines(lines)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._file.close()


def setup_tracing(service: str, *, trace_dir: Path | None) -> TracerProvider:
    """Export by OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, else to TRACE_DIR/SERVICE.jsonl."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if not env.tracing_enabled():
        return provider  # not installed: the API's no-op tracer is used everywhere
    exporter: SpanExporter | None = None
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    elif trace_dir is not None:
        exporter = JsonLinesSpanExporter(trace_dir / f"{service}.jsonl")
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    return provider


def le_label(bound: float) -> str:
    """A histogram bucket's `le` label value exactly as the client library writes it."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


def dumps(value: object) -> bytes:
    """Compact JSON as UTF-8, the one encoding used on every hop."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
