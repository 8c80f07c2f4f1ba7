"""The control and the primary vendor over real HTTP, on free ports, as a client sees them."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from pipeline.feed import FeedConfig, FeedServer, Vendor

AUTH = {"Authorization": "Bearer s3cret-token"}
EVENTS = "/v1/matches/gha-pan/events"


OCCURRED = datetime.now(UTC) - timedelta(minutes=1)


def event(seq: int, **fields: Any) -> dict[str, Any]:
    moment = OCCURRED + timedelta(seconds=seq)
    document = {
        "event_id": f"ev-{seq}",
        "match_id": "gha-pan",
        "seq": seq,
        "type": "substitution",
        "team": "PAN",
        "player": "C. Waterman",
        "minute": 40 + seq,
        "occurred_at": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "ref_event_id": None,
    }
    return {**document, **fields}


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@asynccontextmanager
async def running(config: FeedConfig) -> AsyncIterator[tuple[FeedServer, aiohttp.ClientSession]]:
    async with FeedServer(config) as server, aiohttp.ClientSession() as session:
        yield server, session


async def next_packets(stream: aiohttp.ClientResponse, count: int) -> list[bytes]:
    """The next `count` packets on the stream, heartbeats (bare newlines) skipped."""
    packets: list[bytes] = []
    async with asyncio.timeout(3):
        while len(packets) < count:
            line = await stream.content.readline()
            assert line, "the stream ended"
            if line != b"\n":
                packets.append(line.removesuffix(b"\n"))
    return packets


def test_a_posted_list_goes_out_exactly_in_order_duplicates_and_garbage_included(
    make_config: Callable[..., FeedConfig],
) -> None:
    posted = [event(1), event(2), event(1), {**event(4), "seq": "x"}, event(3)]

    async def scenario() -> None:
        async with running(make_config()) as (server, http):
            primary, control = server.url("primary"), server.url("control")
            async with http.get(f"{primary}/v1/stream") as stream:
                assert stream.headers["Content-Type"] == "application/x-ndjson"
                reply = await http.post(f"{control}{EVENTS}", json=posted, headers=AUTH)
                assert reply.status == 202
                body = await reply.json()
                assert (body["accepted"], body["valid"]) == (5, 4)
                assert [(i["index"], i["reason"]) for i in body["invalid"]] == [(3, "bad_seq")]
                assert await next_packets(stream, 5) == [compact(p) for p in posted]
            replay = await http.get(f"{primary}{EVENTS}", params={"after": "0"})
            assert [e["seq"] for e in await replay.json()] == [1, 2, 3]
            after = await http.get(f"{primary}{EVENTS}?after=2")
            assert await after.json() == [event(3)]

    asyncio.run(scenario())


def test_raw_lines_go_out_byte_for_byte_even_invalid_utf8(
    make_config: Callable[..., FeedConfig],
) -> None:
    lines = [
        json.dumps(event(1), indent=None).encode(),  # with spaces: not re-serialized
        b"\xff\xfe not utf-8 \xc3",
        b'{"truncated": ',
        compact(event(2, player="Ïñaki Wíllïams")),
    ]

    async def scenario() -> None:
        async with running(make_config()) as (server, http):
            async with http.get(f"{server.url('primary')}/v1/stream") as stream:
                reply = await http.post(
                    f"{server.url('control')}{EVENTS}",
                    data=b"\n".join(lines) + b"\n\n",
                    headers={**AUTH, "Content-Type": "application/x-ndjson"},
                )
                body = await reply.json()
                assert reply.status == 202, body
                assert [i["reason"] for i in body["invalid"]] == ["bad_utf8", "not_json"]
                assert await next_packets(stream, 4) == lines
            replay = await http.get(f"{server.url('primary')}{EVENTS}")
            assert [e["player"] for e in await replay.json()] == ["C. Waterman", "Ïñaki Wíllïams"]

    asyncio.run(scenario())


def test_control_refuses_without_the_token_and_bad_bodies_emit_nothing(
    make_config: Callable[..., FeedConfig],
) -> None:
    async def scenario() -> None:
        async with running(make_config()) as (server, http):
            url = f"{server.url('control')}{EVENTS}"
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                reply = await http.post(url, json=[event(1)], headers=headers)
                assert reply.status == 401
                assert "token" in (await reply.json())["error"]
            bad = await http.post(
                url, data=b"[{not json", headers={**AUTH, "Content-Type": "application/json"}
            )
            assert bad.status == 400
            assert "not JSON" in (await bad.json())["error"]
            scalar = await http.post(url, json="just a string", headers=AUTH)
            assert scalar.status == 400
            huge_body = io.BytesIO(b"x" * (1024 * 1024 + 1))
            huge = await http.post(url, data=huge_body, headers=AUTH)
            assert huge.status == 413
            feed = await (await http.get(f"{server.url('control')}/v1/feed")).json()
            assert feed == {"primary": {"mode": "normal", "subscribers": 0}, "matches": {}}
            primary = server.url("primary")
            for after in ("abc", "-1", "1.5"):
                reply = await http.get(f"{primary}{EVENTS}", params={"after": after})
                assert reply.status == 400

    asyncio.run(scenario())


def test_idle_stream_gets_heartbeats(make_config: Callable[..., FeedConfig]) -> None:
    async def scenario() -> None:
        async with running(make_config(heartbeat_s=0.05)) as (server, http):
            url = f"{server.url('primary')}/v1/stream"
            async with http.get(url) as stream, asyncio.timeout(1):
                assert await stream.content.readline() == b"\n"

    asyncio.run(scenario())


async def _set_mode(http: aiohttp.ClientSession, server: FeedServer, mode: str) -> None:
    url = f"{server.url('control')}/v1/feed/primary"
    reply = await http.post(url, json={"mode": mode}, headers=AUTH)
    assert reply.status == 200
    assert await reply.json() == {"mode": mode}


def test_silent_primary_sends_nothing_then_resumes_with_new_packets_only(
    make_config: Callable[..., FeedConfig],
) -> None:
    async def scenario() -> None:
        async with running(make_config(heartbeat_s=0.05)) as (server, http):
            control = f"{server.url('control')}{EVENTS}"
            async with http.get(f"{server.url('primary')}/v1/stream") as stream:
                await http.post(control, json=[event(1)], headers=AUTH)
                assert await next_packets(stream, 1) == [compact(event(1))]
                await _set_mode(http, server, "silent")
                await asyncio.sleep(0.1)  # let what was on the wire before arrive
                stream.content.read_nowait()
                await http.post(control, json=[event(2)], headers=AUTH)
                await asyncio.sleep(0.4)  # eight heartbeat periods
                assert stream.content.read_nowait() == b""
                feed = await (await http.get(f"{server.url('control')}/v1/feed")).json()
                assert feed["primary"] == {"mode": "silent", "subscribers": 1}
                await _set_mode(http, server, "normal")
                await http.post(control, json=[event(3)], headers=AUTH)
                assert await next_packets(stream, 1) == [compact(event(3))]
            replay = await http.get(f"{server.url('primary')}{EVENTS}")
            assert [e["seq"] for e in await replay.json()] == [1, 2, 3]

    asyncio.run(scenario())


def test_a_bad_mode_is_refused(make_config: Callable[..., FeedConfig]) -> None:
    async def scenario() -> None:
        async with running(make_config()) as (server, http):
            url = f"{server.url('control')}/v1/feed/primary"
            assert (await http.post(url, json={"mode": "loud"}, headers=AUTH)).status == 400
            assert (await http.post(url, json={"mode": "silent"})).status == 401

    asyncio.run(scenario())


def test_health_and_metrics_report_what_happened(make_config: Callable[..., FeedConfig]) -> None:
    async def scenario() -> None:
        async with running(make_config()) as (server, http):
            for name in ("control", "primary", "secondary"):
                reply = await http.get(f"{server.url(name)}/healthz")
                assert (reply.status, await reply.text()) == (200, "ok")
            control = server.url("control")
            await http.post(f"{control}{EVENTS}", json=[event(1), {"seq": 2}], headers=AUTH)
            await _set_mode(http, server, "silent")
            text = await (await http.get(f"{control}/metrics")).text()
            assert 'gameday_feed_packets_posted_total{kind="valid"} 1.0' in text
            assert 'gameday_feed_packets_posted_total{kind="invalid"} 1.0' in text
            assert "gameday_feed_primary_silent 1.0" in text
            assert "gameday_feed_stream_subscribers 0.0" in text
            assert "gameday_feed_slow_subscribers_disconnected_total 0.0" in text

    asyncio.run(scenario())


def test_a_client_that_stops_reading_is_disconnected_and_counted(
    make_config: Callable[..., FeedConfig],
) -> None:
    """The stream never buffers without limit: a stalled reader is cut off, and the metric
    says so, while the vendor keeps serving everyone else."""
    vendor = Vendor(queue_packets=4)
    line = b"x" * (64 * 1024)

    async def scenario() -> None:
        async with FeedServer(make_config(), vendor=vendor) as server:
            stalled = socket.socket()
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.connect(("127.0.0.1", server.ports["primary"]))
            stalled.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: feed\r\n\r\n")
            try:
                async with aiohttp.ClientSession() as http:
                    await _flood_until_dropped(http, server, line)
                    feed = await (await http.get(f"{server.url('control')}/v1/feed")).json()
                    metrics = await (await http.get(f"{server.url('control')}/metrics")).text()
            finally:
                stalled.close()
        assert feed["primary"]["subscribers"] == 0
        assert "gameday_feed_slow_subscribers_disconnected_total 1.0" in metrics

    asyncio.run(scenario())


async def _flood_until_dropped(
    http: aiohttp.ClientSession, server: FeedServer, line: bytes
) -> None:
    async with asyncio.timeout(5):
        while server.vendor.subscribers == 0:  # noqa: ASYNC110 - polling what a client sees
            await asyncio.sleep(0.01)
        while server.vendor.subscribers:
            body = io.BytesIO(b"\n".join([line] * 15))
            headers = {**AUTH, "Content-Type": "text/plain"}
            reply = await http.post(f"{server.url('control')}{EVENTS}", data=body, headers=headers)
            assert reply.status == 202
            await asyncio.sleep(0.01)
