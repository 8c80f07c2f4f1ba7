"""Reading the pipeline's traces: where did the time go, hop by hop?

Every process writes its finished spans as JSON lines into the run directory's
`traces/` (pipeline.telemetry). One source event is one trace: vendor.receive ->
ingest.validate_dedupe -> kafka.produce -> kafka.consume / scorekeeper.apply ->
redis.handoff -> edge.fanout[REGION] (and fan.receive / browser.receive).

A hop is either a span's own time (its duration less its children's) or the wait
between a parent's end and a child's start in another process (the network, Kafka,
Redis, a Toxiproxy link): `redis.handoff -> edge.fanout[eu-west]` is eu-west's path from
Redis to its edge. The slowest hop of a slow trace is what an on-call engineer wants.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from chaos.stats import quantile


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    service: str
    start: float
    end: float
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The span's name, with the region for edge and fan spans (and the edge version
        when it is not the stable one: `edge.fanout[eu-west canary]`)."""
        region = self.attributes.get("region")
        version = self.attributes.get("version")
        where = f"{region} {version}" if region and version not in (None, "stable") else region
        return f"{self.name}[{where}]" if where else self.name

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Span:
        return cls(
            trace_id=raw["context"]["trace_id"],
            span_id=raw["context"]["span_id"],
            parent_id=raw.get("parent_id"),
            name=raw["name"],
            service=raw.get("resource", {}).get("attributes", {}).get("service.name", "?"),
            start=_seconds(raw["start_time"]),
            end=_seconds(raw["end_time"]),
            attributes=dict(raw.get("attributes") or {}),
        )


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Hop:
    name: str
    seconds: float


@dataclass
class Trace:
    trace_id: str
    spans: list[Span]

    @property
    def root(self) -> Span:
        ids = {s.span_id for s in self.spans}
        roots = [s for s in self.spans if s.parent_id is None or s.parent_id not in ids]
        return min(roots or self.spans, key=lambda s: s.start)

    @property
    def end_to_end_s(self) -> float:
        return max(s.end for s in self.spans) - self.root.start

    @property
    def services(self) -> set[str]:
        return {s.service for s in self.spans}

    def children(self, span: Span) -> list[Span]:
        return [s for s in self.spans if s.parent_id == span.span_id]

    def hops(self) -> list[Hop]:
        out = []
        for span in self.spans:
            kids = self.children(span)
            inside = sum(max(0.0, min(k.end, span.end) - max(k.start, span.start)) for k in kids)
            out.append(Hop(span.label, max(0.0, span.end - span.start - inside)))
            out.extend(
                Hop(f"{span.label} -> {k.label}", k.start - span.end)
                for k in kids
                if k.service != span.service and k.start > span.end
            )
        return out

    def slowest_hop(self) -> Hop:
        return max(self.hops(), key=lambda h: h.seconds)

    def describe(self) -> str:
        a = self.root.attributes
        return f"{a.get('match_id', '?')} seq {a.get('seq', '?')} {a.get('event_type', '')}".strip()


def load_spans(trace_dir: Path) -> list[Span]:
    spans = []
    for path in sorted(trace_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    spans.append(Span.from_json(json.loads(line)))
                except (ValueError, KeyError):
                    continue  # a line cut by a crash mid-write: skip it, keep the rest
    return spans


def traces(spans: Iterable[Span]) -> list[Trace]:
    grouped: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        grouped[span.trace_id].append(span)
    return [Trace(trace_id, sorted(s, key=lambda x: x.start)) for trace_id, s in grouped.items()]


def _quantile(values: list[float], q: float) -> float:
    found = quantile(values, q)
    assert found is not None, "a hop has at least one sample"
    return found


@dataclass
class Summary:
    traces: int
    hops: dict[str, dict[str, float]]
    """Hop name -> count, p50_ms, p99_ms, max_ms."""
    slowest: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"traces": self.traces, "hops": self.hops, "slowest": self.slowest}

    def render(self) -> str:
        width = max((len(n) for n in self.hops), default=10)
        lines = [
            f"{self.traces} traces",
            "",
            f"{'hop':<{width}}  {'count':>6}  {'p50 ms':>8}  {'p99 ms':>8}  {'max ms':>8}",
        ]
        for name, h in sorted(self.hops.items(), key=lambda kv: -kv[1]["p99_ms"]):
            lines.append(
                f"{name:<{width}}  {h['count']:>6.0f}  {h['p50_ms']:>8.1f}  "
                f"{h['p99_ms']:>8.1f}  {h['max_ms']:>8.1f}"
            )
        lines += ["", "slowest traces (end to end, and the hop that took the time):"]
        for t in self.slowest:
            lines.append(
                f"  {t['end_to_end_ms']:>8.1f} ms  {t['event']:<32}  slowest hop: "
                f"{t['slowest_hop']} ({t['slowest_hop_ms']:.1f} ms)  [{t['trace_id']}]"
            )
        return "\n".join(lines)


def summarize(all_traces: list[Trace], *, slowest: int = 5, min_spans: int = 2) -> Summary:
    complete = [t for t in all_traces if len(t.spans) >= min_spans]
    by_hop: dict[str, list[float]] = defaultdict(list)
    for t in complete:
        for hop in t.hops():
            by_hop[hop.name].append(hop.seconds)
    hops = {
        name: {
            "count": float(len(v)),
            "p50_ms": _quantile(v, 0.5) * 1000,
            "p99_ms": _quantile(v, 0.99) * 1000,
            "max_ms": max(v) * 1000,
        }
        for name, v in by_hop.items()
    }
    worst = sorted(complete, key=lambda t: t.end_to_end_s, reverse=True)[:slowest]
    return Summary(
        len(complete),
        hops,
        [
            {
                "trace_id": t.trace_id,
                "event": t.describe(),
                "end_to_end_ms": t.end_to_end_s * 1000,
                "slowest_hop": t.slowest_hop().name,
                "slowest_hop_ms": t.slowest_hop().seconds * 1000,
                "services": sorted(t.services),
            }
            for t in worst
        ],
    )
