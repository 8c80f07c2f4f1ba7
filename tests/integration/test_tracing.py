"""One trace per source event, from the stadium to the fan, across every process."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support import gameday, post, until

from chaos.fans import Fan, watch
from chaos.traces import Trace, load_spans, traces
from pipeline.feed.script import load_script


def _find(trace_dir: Path, match_id: str, seq: int, want_spans: int) -> Trace:
    deadline = time.monotonic() + 20  # spans are exported in batches every 0.5 s
    while True:
        for t in traces(load_spans(trace_dir)):
            root = t.root.attributes
            mine = root.get("match_id") == match_id and root.get("seq") == seq
            if mine and (len(t.spans) >= want_spans or time.monotonic() > deadline):
                return t
        assert time.monotonic() < deadline, f"no trace for {match_id} seq {seq}"
        time.sleep(0.2)


def test_one_goal_is_one_trace_through_every_hop_and_process(
    endpoints: dict[str, Any],
    stack_dir: Path,
) -> None:
    match_id = f"gha-pan-{uuid.uuid4().hex[:8]}"
    script = replace(load_script("gha-pan"), match_id=match_id)
    events = {e.type: e for e in reversed(script.to_events(datetime.now(UTC), "tr", speed=1e6))}
    kickoff, goal = events["kickoff"], replace(events["goal"], seq=2)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("gameday.fans")

    async def scenario() -> None:
        fans = [
            Fan(url, match_id, region=region, tracer=tracer)
            for region, url in endpoints["edges"].items()
        ]
        stop = asyncio.Event()
        watching = asyncio.create_task(watch(fans, stop))
        await until(lambda: all(f.connected.is_set() for f in fans), 10, "fans to connect")
        await post(endpoints, match_id, json.dumps([kickoff.to_json(), goal.to_json()]).encode())
        await until(lambda: all(f.history.last_seq == 2 for f in fans), 15, "the goal")
        stop.set()
        await watching

    asyncio.run(scenario())

    pipeline_spans = 6 + len(endpoints["edges"]) + 1  # and the canary edge's
    found = _find(stack_dir / "traces", match_id, 2, pipeline_spans)
    spans = {s.label: s for s in found.spans}
    by_id = {s.span_id: s for s in found.spans}
    parent = {
        label: by_id[s.parent_id].name if s.parent_id in by_id else None
        for label, s in spans.items()
    }
    assert parent == {
        "vendor.receive": None,
        "ingest.validate_dedupe": "vendor.receive",
        "kafka.produce": "vendor.receive",
        "kafka.consume": "kafka.produce",
        "scorekeeper.apply": "kafka.produce",
        "redis.handoff": "scorekeeper.apply",
        **{f"edge.fanout[{region}]": "redis.handoff" for region in endpoints["edges"]},
        "edge.fanout[eu-west canary]": "redis.handoff",
    }
    assert found.services >= {
        "ingest",
        "scorekeeper",
        "edge-us-east",
        "edge-eu-west",
        "edge-ap-southeast",
        "edge-canary",
    }
    fan_spans = [
        s for s in exporter.get_finished_spans() if f"{s.context.trace_id:#034x}" == found.trace_id
    ]
    assert len(fan_spans) == len(endpoints["edges"])
    handoff = spans["redis.handoff"]
    assert all(f"{s.parent.span_id:#018x}" == handoff.span_id for s in fan_spans if s.parent)
    assert found.end_to_end_s > 0

    summary = gameday("trace", "summary", "--json", run_dir=stack_dir)
    assert summary.returncode == 0, summary.stderr
    hops = json.loads(summary.stdout)["hops"]
    assert {"kafka.produce", "redis.handoff", "edge.fanout[eu-west]"} <= set(hops)
