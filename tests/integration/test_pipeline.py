"""A live match from the feed to every fan on the real stack: once, in order, none skipped."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis
from support import metric_sum, post, token, until

from chaos.delivery import check_delivery
from chaos.fans import Fan, FanHistory, watch
from pipeline.feed.script import load_script, play
from pipeline.model import MatchEvent, fold

SPEED = 3000.0  # the whole scripted match in about two seconds


def new_match() -> str:
    return f"gha-pan-{uuid.uuid4().hex[:10]}"


def script_events(match_id: str) -> list[MatchEvent]:
    script = replace(load_script("gha-pan"), match_id=match_id)
    return script.to_events(datetime.now(UTC), uuid.uuid4().hex[:6], speed=SPEED)


async def watched(
    endpoints: dict[str, Any],
    match_id: str,
    inject: Callable[[], Awaitable[list[MatchEvent]]],
    *,
    per_region: int = 2,
    timeout_s: float = 30,
) -> tuple[list[FanHistory], list[MatchEvent]]:
    """Fans on every region watch `match_id` while `inject` makes it happen."""
    fans = [
        Fan(url, match_id, region=region, fan_id=f"{region}-{i}")
        for region, url in endpoints["edges"].items()
        for i in range(per_region)
    ]
    stop = asyncio.Event()
    watching = asyncio.create_task(watch(fans, stop))
    await until(lambda: all(f.connected.is_set() for f in fans), 10, "every fan to connect")
    source = await inject()
    last = max(e.seq for e in source)
    try:
        await until(
            lambda: all(f.history.last_seq == last for f in fans),
            timeout_s,
            f"every fan to reach seq {last}",
        )
    finally:
        stop.set()
        histories = await watching
    return histories, source


def test_a_played_match_reaches_every_fan_in_every_region_once_and_in_order(
    endpoints: dict[str, Any],
) -> None:
    match_id = new_match()

    async def inject() -> list[MatchEvent]:
        script = replace(load_script("gha-pan"), match_id=match_id)
        return await play(
            script, control_url=endpoints["feed_control"], token=token(endpoints), speed=SPEED
        )

    histories, source = asyncio.run(watched(endpoints, match_id, inject))

    report = check_delivery(histories, source)
    assert report.to_json() == {
        "clients": 6,
        "events": len(source),
        "lost": 0,
        "duplicated": 0,
        "out_of_order": 0,
        "final_mismatches": 0,
    }
    assert {h.region for h in histories} == set(endpoints["edges"])
    final = histories[0].receipts[-1].data
    assert final["score"] == fold(source, match_id).score == {"GHA": 2, "PAN": 2}
    assert final["status"] == "full_time"
    assert final["traceparent"].startswith("00-")


def test_duplicated_and_swapped_packets_at_the_source_change_nothing_fans_see(
    endpoints: dict[str, Any],
) -> None:
    match_id = new_match()
    rng = random.Random(7)
    events = script_events(match_id)
    packets = [e.to_json() for e in events]
    # 3% duplicates (at least one), re-sent a little later than the original.
    for i in sorted(
        rng.sample(range(len(packets)), max(1, round(0.03 * len(packets)))), reverse=True
    ):
        packets.insert(min(len(packets), i + 3), dict(packets[i]))
    # 3% adjacent swaps (at least one): the vendor sends seq n+1 before n.
    for i in rng.sample(range(len(packets) - 1), max(1, round(0.03 * len(packets)))):
        packets[i], packets[i + 1] = packets[i + 1], packets[i]

    async def inject() -> list[MatchEvent]:
        for start in range(0, len(packets), 4):
            await post(endpoints, match_id, json.dumps(packets[start : start + 4]).encode())
            await asyncio.sleep(0.05)
        return events

    histories, source = asyncio.run(watched(endpoints, match_id, inject))

    report = check_delivery(histories, source)
    assert len(packets) > len(events)
    assert (report.lost, report.duplicated, report.out_of_order, report.final_mismatches) == (
        0,
        0,
        0,
        0,
    ), report.failures


def test_a_reconnect_with_last_event_id_gets_exactly_what_it_missed(
    endpoints: dict[str, Any],
) -> None:
    match_id = new_match()
    events = script_events(match_id)
    edge = endpoints["edges"]["eu-west"]

    async def scenario() -> tuple[FanHistory, FanHistory]:
        first = Fan(edge, match_id, fan_id="before")
        stop_first = asyncio.Event()
        task = asyncio.create_task(first.run(stop_first))
        await until(first.connected.is_set, 10, "the fan to connect")
        await post(endpoints, match_id, json.dumps([e.to_json() for e in events[:10]]).encode())
        await until(lambda: first.history.last_seq == 10, 15, "seq 10")
        stop_first.set()
        before = await task
        await post(endpoints, match_id, json.dumps([e.to_json() for e in events[10:20]]).encode())
        await asyncio.sleep(1.0)  # the missed updates are out before the fan comes back
        second = Fan(edge, match_id, fan_id="after", last_event_id=before.last_seq)
        stop_second = asyncio.Event()
        task = asyncio.create_task(second.run(stop_second))
        await until(second.connected.is_set, 10, "the fan to reconnect")
        await post(endpoints, match_id, json.dumps([e.to_json() for e in events[20:]]).encode())
        await until(lambda: second.history.last_seq == len(events), 15, "the last seq")
        stop_second.set()
        return before, await task

    before, after = asyncio.run(scenario())

    assert [r.seq for r in before.receipts] == list(range(1, 11))
    assert [r.seq for r in after.receipts] == list(range(11, len(events) + 1))
    assert after.resumed_with_last_event_id == 1


def test_malformed_packets_are_rejected_with_a_reason_and_counted_while_valid_ones_flow(
    endpoints: dict[str, Any],
    status: dict[str, Any],
) -> None:
    match_id = new_match()
    events = script_events(match_id)[:8]
    metrics_url = status["services"]["ingest"]["url"] + "/metrics"
    bad = {
        "not_json": b"{this is not json",
        "bad_utf8": b'{"event_id": "\xff\xfe"}',
        "unknown_type": json.dumps(
            {**events[0].to_json(), "event_id": "x", "type": "corner"}
        ).encode(),
        "bad_seq": json.dumps({**events[0].to_json(), "event_id": "y", "seq": "three"}).encode(),
    }
    before = httpx.get(metrics_url, timeout=5).text
    lines = []
    for i, event in enumerate(events):
        lines.append(event.encode())
        if i < len(bad):
            lines.append(list(bad.values())[i])

    async def inject() -> list[MatchEvent]:
        await post(endpoints, match_id, b"\n".join(lines) + b"\n", "application/x-ndjson")
        return events

    histories, source = asyncio.run(watched(endpoints, match_id, inject, per_region=1))

    after = httpx.get(metrics_url, timeout=5).text
    for reason in bad:
        rejected = metric_sum(after, "gameday_ingest_rejected_total", reason=reason) - metric_sum(
            before, "gameday_ingest_rejected_total", reason=reason
        )
        assert rejected == 1, reason
    assert check_delivery(histories, source).ok


def test_the_snapshot_carries_an_etag_and_a_one_second_cache(endpoints: dict[str, Any]) -> None:
    match_id = new_match()
    events = script_events(match_id)[:3]
    asyncio.run(post(endpoints, match_id, json.dumps([e.to_json() for e in events]).encode()))
    url = f"{endpoints['edges']['ap-southeast']}/v1/matches/{match_id}"
    deadline = time.monotonic() + 10
    response = httpx.get(url, timeout=5)
    while response.status_code != 200 or response.json()["seq"] != 3:
        assert time.monotonic() < deadline, response.text
        time.sleep(0.1)
        response = httpx.get(url, timeout=5)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "max-age=1"
    etag = response.headers["etag"]
    assert httpx.get(url, headers={"If-None-Match": etag}, timeout=5).status_code == 304
    assert httpx.get(f"{url}-never", timeout=5).status_code == 404
    stream = httpx.get(f"{url}/stream", headers={"Last-Event-ID": "abc"}, timeout=5)
    assert stream.status_code == 400
    assert "Last-Event-ID" in stream.json()["error"]


@pytest.mark.timeout(90)
def test_a_silent_primary_switches_fans_to_the_delayed_fallback_and_back_without_duplicates(
    endpoints: dict[str, Any],
) -> None:
    match_id = new_match()
    events = script_events(match_id)
    control = endpoints["feed_control"]
    auth = {"Authorization": f"Bearer {token(endpoints)}"}

    async def mode(value: str) -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.post(
                f"{control}/v1/feed/primary", json={"mode": value}, headers=auth
            )
        assert answer.status_code == 200, answer.text

    async def inject() -> list[MatchEvent]:
        await post(endpoints, match_id, json.dumps([e.to_json() for e in events[:5]]).encode())
        await mode("silent")
        try:
            await asyncio.sleep(0.5)
            await post(
                endpoints, match_id, json.dumps([e.to_json() for e in events[5:12]]).encode()
            )
            await asyncio.sleep(12)  # silence noticed, the fallback polled, updates delivered
        finally:
            await mode("normal")
        await asyncio.sleep(3)
        await post(endpoints, match_id, json.dumps([e.to_json() for e in events[12:]]).encode())
        return events

    histories, source = asyncio.run(
        watched(endpoints, match_id, inject, per_region=1, timeout_s=40)
    )

    report = check_delivery(histories, source)
    assert report.ok, report.failures
    for history in histories:
        modes = [f["feed"] for f in history.feed_events]
        assert "fallback" in modes, history.feed_events
        assert modes[-1] == "primary"
        delayed = {r.seq for r in history.receipts if r.data["delayed"]}
        assert delayed, "no update came from the fallback vendor"
        assert delayed <= set(range(6, 13)), delayed
        assert not history.receipts[-1].data["delayed"]


def test_an_event_the_stream_never_delivered_is_filled_from_the_vendors_replay(
    endpoints: dict[str, Any],
    status: dict[str, Any],
) -> None:
    match_id = new_match()
    events = script_events(match_id)[:10]
    control = endpoints["feed_control"]
    auth = {"Authorization": f"Bearer {token(endpoints)}"}
    keeper = status["services"]["scorekeeper"]["url"] + "/metrics"
    before = httpx.get(keeper, timeout=5).text

    async def mode(client: httpx.AsyncClient, value: str) -> None:
        answer = await client.post(f"{control}/v1/feed/primary", json={"mode": value}, headers=auth)
        assert answer.status_code == 200

    async def inject() -> list[MatchEvent]:
        await post(endpoints, match_id, json.dumps([e.to_json() for e in events[:4]]).encode())
        async with httpx.AsyncClient(timeout=5) as client:
            await mode(client, "silent")  # seq 5 is recorded but never pushed
            await post(endpoints, match_id, json.dumps([events[4].to_json()]).encode())
            await mode(client, "normal")  # well before the watchdog would notice
        await post(endpoints, match_id, json.dumps([e.to_json() for e in events[5:]]).encode())
        return events

    histories, source = asyncio.run(watched(endpoints, match_id, inject, per_region=1))

    assert check_delivery(histories, source).ok
    after = httpx.get(keeper, timeout=5).text
    filled = metric_sum(after, "gameday_scorekeeper_gap_fills_total", result="gap") - metric_sum(
        before, "gameday_scorekeeper_gap_fills_total", result="gap"
    )
    assert filled >= 1
    assert all(not r.data["delayed"] for h in histories for r in h.receipts)


def test_the_reconciler_repairs_a_score_state_that_drifted_in_redis(
    endpoints: dict[str, Any],
    status: dict[str, Any],
) -> None:
    match_id = new_match()
    events = script_events(match_id)[:6]
    asyncio.run(post(endpoints, match_id, json.dumps([e.to_json() for e in events]).encode()))
    host, port = endpoints["redis_sentinels"][0].rsplit(":", 1)
    with redis.Redis(host=host, port=int(port)) as sentinel:
        master_host, master_port = sentinel.sentinel_get_master_addr_by_name("scores")
    key = f"gameday:match:{match_id}:state"
    with redis.Redis(host=master_host, port=int(master_port)) as client:
        deadline = time.monotonic() + 10
        while (client.get(f"gameday:match:{match_id}:seq") or b"0") != b"6":
            assert time.monotonic() < deadline, "the events never reached Redis"
            time.sleep(0.05)
        good = client.get(key)
        client.set(key, b'{"score": "tampered"}')
        deadline = time.monotonic() + 15  # the reconciler runs every 4 s at time scale 10
        while client.get(key) != good:
            assert time.monotonic() < deadline, "the drift was never repaired"
            time.sleep(0.1)
    keeper = status["services"]["scorekeeper"]["url"] + "/metrics"
    text = httpx.get(keeper, timeout=5).text
    assert metric_sum(text, "gameday_reconcile_corrections_total", kind="state_drift") >= 1
