"""Hostile clients against a real edge socket: slowloris, too many connections from one
address, malformed Last-Event-ID, oversized heads, unknown paths, bad methods. Each is
refused with its 4xx and counted; none gets a 5xx; a fan watching the match all along
receives every update exactly once.

The edge runs in-process on 127.0.0.1 with its real protocol (no Redis: updates are
handed to it as the Redis reader would). Capped clients connect from 127.0.0.2, which
is loopback too but not exempt from the per-address cap.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.edge import RETRY_AFTER_S, Edge, EdgeConfig, EdgeProtocol
from pipeline.httpwire import MAX_BODY, MAX_HEAD, MAX_REQUEST_LINE, BadRequest, parse_head
from pipeline.telemetry import Metrics

WEB = Path(__file__).resolve().parents[2] / "pipeline" / "web"
MATCH = "gha-pan"
CAP = 3
OTHER = "127.0.0.2"
WAIT_S = 10.0
"""How long a client waits for an answer before the test fails (never a timing goal)."""


def payload(seq: int) -> bytes:
    return b'{"match_id":"gha-pan","seq":%d,"occurred_at":"2026-12-04T15:00:00.000Z"}' % seq


@dataclass
class Running:
    edge: Edge
    port: int

    def rejected(self, reason: str) -> float:
        labels = {"region": "eu-west", "reason": reason}
        return (
            self.edge.metrics.registry.get_sample_value("gameday_edge_rejected_total", labels) or 0
        )

    def statuses(self) -> dict[str, float]:
        """Every status the edge answered, summed over routes."""
        out: dict[str, float] = {}
        for metric in self.edge.metrics.registry.collect():
            for sample in metric.samples:
                if sample.name == "gameday_http_requests_total" and sample.value:
                    status = sample.labels["status"]
                    out[status] = out.get(status, 0) + sample.value
        return out


@asynccontextmanager
async def edge_server(tmp_path: Path, **changes: Any) -> AsyncIterator[Running]:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    settings: dict[str, Any] = {
        "region": "eu-west",
        "port": 0,
        "sentinels": ("127.0.0.1:1",),
        "master_name": "scores",
        "web_dir": WEB,
        "header_timeout_s": 0.5,
        "max_connections_per_address": CAP,
        "admin_token_file": token,
        **changes,
    }
    edge = Edge(EdgeConfig(**settings), metrics=Metrics())
    edge.last_read_ok = float("inf")  # healthy: no Redis here
    match = edge.match(MATCH)
    assert match is not None
    await edge.on_update(match, 1, payload(1))
    server = await asyncio.get_running_loop().create_server(
        lambda: EdgeProtocol(edge), "127.0.0.1", 0
    )
    try:
        yield Running(edge, server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for feed in edge.matches.values():
            for fan in list(feed.fans):
                edge.drop(fan, "shutdown")
        await server.wait_closed()


async def connect(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, Any]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def exchange(port: int, request: bytes, *, source: str = "127.0.0.1") -> tuple[int, bytes]:
    """Send `request`, read until the edge closes: (status, whole answer)."""
    reader, writer = await connect(port, source)
    writer.write(request)
    answer = await asyncio.wait_for(reader.read(), WAIT_S)
    writer.close()
    return status_of(answer), answer


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:80]
    return int(answer[9:12])


def error_of(answer: bytes) -> str:
    body = answer.split(b"\r\n\r\n", 1)[1]
    message: str = json.loads(body)["error"]
    return message


class Fan:
    """A real SSE client on the match: collects every seq it is sent."""

    def __init__(self, reader: asyncio.StreamReader, writer: Any) -> None:
        self.reader, self.writer = reader, writer
        self.seqs: list[int] = []

    @classmethod
    async def open(cls, port: int) -> Fan:
        reader, writer = await connect(port)
        writer.write(b"GET /v1/matches/gha-pan/stream HTTP/1.1\r\nHost: edge\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
        assert status_of(head) == 200
        return cls(reader, writer)

    async def read_until(self, seq: int) -> list[int]:
        while not self.seqs or self.seqs[-1] < seq:
            line = await asyncio.wait_for(self.reader.readline(), WAIT_S)
            assert line, "the edge closed a valid fan's stream"
            if line.startswith(b"id: "):
                self.seqs.append(int(line[4:]))
        return self.seqs

    def close(self) -> None:
        self.writer.close()


async def while_a_fan_watches(
    tmp_path: Path, attack: Callable[[Running], Awaitable[None]], **changes: Any
) -> Running:
    """Run `attack` while updates 2..10 are published to a fan; the fan must get 1..10."""
    async with edge_server(tmp_path, **changes) as running:
        fan = await Fan.open(running.port)
        match = running.edge.matches[MATCH]

        async def publish() -> None:
            for seq in range(2, 11):
                await asyncio.sleep(0.02)
                await running.edge.on_update(match, seq, payload(seq))

        await asyncio.gather(attack(running), publish())
        assert await fan.read_until(10) == list(range(1, 11))  # every one, exactly once
        fan.close()
        assert not any(status.startswith("5") for status in running.statuses())
        return running


# --- slowloris -----------------------------------------------------------------------------


def test_a_head_sent_a_byte_at_a_time_gets_408_after_the_header_timeout(tmp_path: Path) -> None:
    answers: list[bytes] = []

    async def slowloris(running: Running) -> None:
        reader, writer = await connect(running.port)
        head = b"GET /v1/matches/gha-pan/stream HTTP/1.1\r\nHost: edge\r\nX-Slow: "
        answer = asyncio.ensure_future(reader.read())
        for index in range(int(WAIT_S / 0.02)):  # never finishes its head on its own
            if answer.done():
                break
            writer.write(head[index : index + 1] or b"a")
            await asyncio.sleep(0.02)
        answers.append(await asyncio.wait_for(answer, WAIT_S))
        writer.close()

    async def slow_body(running: Running) -> None:
        request = b"POST /v1/telemetry HTTP/1.1\r\nContent-Length: 500\r\n\r\n{"
        answers.append((await exchange(running.port, request))[1])

    async def both(running: Running) -> None:
        await asyncio.gather(slowloris(running), slow_body(running))

    running = asyncio.run(while_a_fan_watches(tmp_path, both))
    assert [status_of(a) for a in answers] == [408, 408]
    assert all("in time" in error_of(a) for a in answers)
    assert running.rejected("header_timeout") == 2


# --- too many connections from one address -------------------------------------------------


def test_connections_over_the_per_address_cap_get_429_and_the_exempt_address_does_not(
    tmp_path: Path,
) -> None:
    async def flood(running: Running) -> None:
        held = [await connect(running.port, OTHER) for _ in range(CAP)]
        request = b"GET /v1/matches/gha-pan HTTP/1.1\r\nHost: edge\r\n\r\n"
        status, answer = await exchange(running.port, request, source=OTHER)
        assert status == 429
        assert f"Retry-After: {RETRY_AFTER_S}".encode() in answer
        assert "too many connections" in error_of(answer)
        # The harness's own address is exempt: more than CAP at once from 127.0.0.1.
        exempt = [await connect(running.port) for _ in range(CAP + 2)]
        for reader, writer in exempt:
            writer.write(request)
            assert status_of(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)) == 200
            writer.close()
        # One of the address's connections closes: its next one is served again.
        held[0][1].close()
        await asyncio.sleep(0.1)
        status, _ = await exchange(running.port, request, source=OTHER)
        assert status == 200
        for _reader, writer in held[1:]:
            writer.close()

    running = asyncio.run(while_a_fan_watches(tmp_path, flood))
    assert running.rejected("per_address_cap") == 1
    assert running.edge._per_address.get(OTHER, 0) <= CAP


def test_a_connection_over_the_cap_that_sends_nothing_is_closed(tmp_path: Path) -> None:
    async def idle(running: Running) -> None:
        held = [await connect(running.port, OTHER) for _ in range(CAP)]
        reader, writer = await connect(running.port, OTHER)
        assert await asyncio.wait_for(reader.read(), WAIT_S) == b""  # closed, nothing owed
        for _reader, other in [*held, (reader, writer)]:
            other.close()

    running = asyncio.run(while_a_fan_watches(tmp_path, idle, header_timeout_s=30.0))
    assert running.rejected("per_address_cap") == 1


def test_a_cap_of_zero_turns_the_cap_off() -> None:
    edge = Edge(
        EdgeConfig(
            region="eu-west",
            port=0,
            sentinels=("127.0.0.1:1",),
            master_name="scores",
            web_dir=WEB,
            max_connections_per_address=0,
        ),
        metrics=Metrics(),
    )
    assert all(edge.admit("203.0.113.7") for _ in range(10_000))


def test_a_negative_cap_is_refused_when_the_config_is_built() -> None:
    with pytest.raises(ValueError, match="max_connections_per_address must be >= 0"):
        EdgeConfig(
            region="eu-west",
            port=0,
            sentinels=(),
            master_name="scores",
            web_dir=WEB,
            max_connections_per_address=-1,
        )


# --- malformed requests --------------------------------------------------------------------

STREAM = "GET /v1/matches/gha-pan/stream HTTP/1.1\r\nHost: edge\r\nLast-Event-ID: {}\r\n\r\n"
BAD_REQUESTS: list[tuple[bytes, int, str, str]] = [
    *(
        (STREAM.format(raw).encode("latin-1"), 400, "bad_last_event_id", "is not a seq number")
        for raw in ("abc", "-1", "1" * 16, "\u00b2", "1e3", "0x10", "3.5")
    ),
    (
        b"GET /v1/matches/gha-pan/stream?last_event_id=-5 HTTP/1.1\r\n\r\n",
        400,
        "bad_last_event_id",
        "is not a seq number",
    ),
    (b"GET /" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1\r\n\r\n", 414, "request_line_too_long", ""),
    (b"GET /" + b"a" * (MAX_HEAD * 2), 414, "request_line_too_long", ""),  # no end in sight
    (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n", 431, "head_too_large", ""),
    (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 100 + b"\r\n", 431, "head_too_large", "header lines"),
    (b"GET /wp-admin.php HTTP/1.1\r\n\r\n", 404, "unknown_path", "no route"),
    (b"GET /v1/matches/gha-pan/stream/../../etc HTTP/1.1\r\n\r\n", 404, "unknown_path", ""),
    (b"DELETE /v1/matches/gha-pan HTTP/1.1\r\n\r\n", 405, "method_not_allowed", "not allowed"),
    (b"TRACE / HTTP/1.1\r\n\r\n", 405, "method_not_allowed", "not allowed"),
    (b"GARBAGE\r\n\r\n", 400, "malformed", "request line"),
    (b"GET http://evil/ HTTP/1.1\r\n\r\n", 400, "malformed", "absolute path"),
    (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400, "malformed", "header line"),
    (
        b"POST /v1/telemetry HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\n{}",
        400,
        "malformed",
        "given twice",
    ),
    (b"POST /v1/telemetry HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", 400, "malformed", "number"),
    (b"POST /v1/telemetry HTTP/1.1\r\n\r\n", 411, "malformed", "Content-Length"),
    (
        b"POST /v1/telemetry HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        411,
        "malformed",
        "chunked",
    ),
    (
        b"POST /v1/telemetry HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1),
        413,
        "body_too_large",
        "",
    ),
    (
        b"POST /v1/telemetry HTTP/1.1\r\nContent-Length: 9\r\n\r\n[[[[[[[[[",
        400,
        "bad_telemetry",
        "",
    ),
    (b"POST /v1/admin/drain HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 401, "unauthorized", "token"),
    (
        b"POST /v1/admin/drain HTTP/1.1\r\nAuthorization: Bearer guess\r\n"
        b"Content-Length: 0\r\n\r\n",
        401,
        "unauthorized",
        "token",
    ),
]


def test_each_malformed_request_gets_its_4xx_and_is_counted_while_fans_are_served(
    tmp_path: Path,
) -> None:
    answers: list[tuple[int, bytes]] = []

    async def barrage(running: Running) -> None:
        for request, _status, _reason, _text in BAD_REQUESTS:
            answers.append(await exchange(running.port, request))

    running = asyncio.run(while_a_fan_watches(tmp_path, barrage))
    for (request, status, _reason, text), (got, answer) in zip(BAD_REQUESTS, answers, strict=True):
        assert got == status, request[:60]
        assert text in error_of(answer), request[:60]
        assert answer.split(b"\r\n\r\n")[0].count(b"application/json") == 1
    expected: dict[str, int] = {}
    for _request, _status, reason, _text in BAD_REQUESTS:
        expected[reason] = expected.get(reason, 0) + 1
    for reason, count in expected.items():
        assert running.rejected(reason) == count, reason
    assert b"Allow: GET, HEAD" in answers[[r[1] for r in BAD_REQUESTS].index(405)][1]


def test_a_valid_last_event_id_still_replays_what_was_missed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with edge_server(tmp_path) as running:
            match = running.edge.matches[MATCH]
            for seq in range(2, 6):
                await running.edge.on_update(match, seq, payload(seq))
            reader, writer = await connect(running.port)
            writer.write(STREAM.format("3").encode())
            fan = Fan(reader, writer)
            assert await fan.read_until(5) == [4, 5]
            fan.close()

    asyncio.run(scenario())


# --- made-up match ids ---------------------------------------------------------------------


def test_made_up_match_ids_cannot_lock_a_real_match_out(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with edge_server(tmp_path, max_matches=5) as running:
            for index in range(50):
                running.edge.match(f"aa-bb-x{index}")
            real = running.edge.match("bra-arg")
            assert real is not None
            await running.edge.on_update(real, 1, payload(1))
            assert running.edge.match("gha-pan") is not None  # a match with state stays
            assert len(running.edge.matches) <= 5

    asyncio.run(scenario())


# --- the head parser, fuzzed -----------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(
    head=st.binary(max_size=600)
    | st.builds(
        lambda method, target, headers: b"%s %s HTTP/1.1\r\n%s" % (method, target, headers),
        st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT"]),
        st.binary(max_size=80).map(lambda t: b"/" + t.replace(b" ", b"")),
        st.binary(max_size=300),
    )
)
def test_any_request_head_parses_or_is_refused_with_a_4xx(head: bytes) -> None:
    try:
        request = parse_head(head)
        length = request.body_length()
    except BadRequest as error:
        status, message, length = error.status, error.message, 0
    else:
        status, message = 200, "parsed"
    assert 0 <= length <= MAX_BODY
    assert status == 200 or 400 <= status < 500
    assert message


def test_a_flood_of_refusals_is_counted_in_full_but_logged_once_per_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    edge = Edge(
        EdgeConfig(region="eu-west", port=0, sentinels=(), master_name="scores", web_dir=WEB),
        metrics=Metrics(),
    )
    with caplog.at_level("WARNING", logger="edge"):
        for index in range(1000):
            edge.rejected("unknown_path", f"GET '/probe-{index}'")
        edge.rejected("malformed", "400 malformed request line")
    labels = {"region": "eu-west", "reason": "unknown_path"}
    assert edge.metrics.registry.get_sample_value("gameday_edge_rejected_total", labels) == 1000
    logged = [record.getMessage() for record in caplog.records]
    assert logged == [
        "refused (unknown_path): GET '/probe-0'",
        "refused (malformed): 400 malformed request line",
    ]
