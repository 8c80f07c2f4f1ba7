"""The edge's fan-out with in-memory transports: one frame to every fan, each seq once,
and a fan that does not read is cut off and counted instead of growing memory."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pipeline import wsframe
from pipeline.edge import Edge, EdgeConfig, MatchFeed
from pipeline.telemetry import Metrics

WEB = Path(__file__).resolve().parents[2] / "pipeline" / "web"


class FakeTransport:
    """Records writes; `stuck` pretends the socket never drains."""

    def __init__(self, *, stuck: bool = False) -> None:
        self.written: list[bytes] = []
        self.stuck = stuck
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self.written)) if self.stuck else 0

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


def edge(limit: int = 4096) -> Edge:
    config = EdgeConfig(
        region="eu-west",
        port=0,
        sentinels=("127.0.0.1:1",),
        master_name="scores",
        web_dir=WEB,
        max_client_buffer_bytes=limit,
    )
    return Edge(config, metrics=Metrics())


def payload(seq: int) -> bytes:
    return b'{"seq":%d,"occurred_at":"2026-12-04T15:00:00.000Z","event":{"type":"goal"}}' % seq


def value(e: Edge, name: str, **labels: str) -> float:
    return e.metrics.registry.get_sample_value(name, labels) or 0.0


def test_each_update_is_written_once_to_every_fan_and_never_again() -> None:
    e = edge()
    match = e.match("gha-pan")
    assert isinstance(match, MatchFeed)
    fans = [FakeTransport() for _ in range(3)]
    for transport in fans:
        asyncio.run(e.subscribe(transport, match, None))  # type: ignore[arg-type]
    for seq in (1, 2, 2, 3):
        asyncio.run(e.on_update(match, seq, payload(seq)))
    for transport in fans:
        ids = [w for w in transport.written if w.startswith(b"id: ")]
        assert [w.split(b"\n")[0] for w in ids] == [b"id: 1", b"id: 2", b"id: 3"]
    assert value(e, "gameday_sse_frames_total", region="eu-west") == 9
    assert value(e, "gameday_edge_updates_total", region="eu-west", outcome="duplicate") == 1


def test_a_fan_that_does_not_read_is_disconnected_and_counted() -> None:
    e = edge(limit=1000)
    match = e.match("gha-pan")
    assert match is not None
    slow, fine = FakeTransport(stuck=True), FakeTransport()
    asyncio.run(e.subscribe(slow, match, None))  # type: ignore[arg-type]
    asyncio.run(e.subscribe(fine, match, None))  # type: ignore[arg-type]
    for seq in range(1, 30):
        asyncio.run(e.on_update(match, seq, payload(seq)))
    assert slow.aborted
    assert len(match.fans) == 1
    assert sum(map(len, slow.written)) < 1000 + 200  # it stopped growing at the limit
    assert len([w for w in fine.written if w.startswith(b"id: ")]) == 29
    assert value(e, "gameday_sse_disconnects_total", region="eu-west", reason="slow_client") == 1
    assert value(e, "gameday_sse_connections", region="eu-west", version="stable") == 1


def test_a_reconnecting_fan_gets_only_what_it_missed_from_the_replay_buffer() -> None:
    e = edge()
    match = e.match("gha-pan")
    assert match is not None
    for seq in range(1, 11):
        asyncio.run(e.on_update(match, seq, payload(seq)))
    back = FakeTransport()
    asyncio.run(e.subscribe(back, match, 7))  # type: ignore[arg-type]
    ids = [w.split(b"\n")[0] for w in back.written if w.startswith(b"id: ")]
    assert ids == [b"id: 8", b"id: 9", b"id: 10"]


def test_websocket_fans_get_the_same_json_in_one_frame_per_update() -> None:
    e = edge()
    match = e.match("gha-pan")
    assert match is not None
    sse, ws, late = FakeTransport(), FakeTransport(), FakeTransport()
    asyncio.run(e.subscribe(sse, match, None))  # type: ignore[arg-type]
    asyncio.run(e.subscribe(ws, match, None, ws=True))  # type: ignore[arg-type]
    for seq in (1, 2, 3):
        asyncio.run(e.on_update(match, seq, payload(seq)))
    asyncio.run(e.subscribe(late, match, 1, ws=True))  # type: ignore[arg-type]

    data = [w.split(b"data: ")[1][:-2] for w in sse.written if w.startswith(b"id: ")]
    assert ws.written == [wsframe.frame(d) for d in data]
    assert late.written == [wsframe.frame(d) for d in data[1:]]  # replayed after seq 1
    e.heartbeat()
    assert ws.written[-1] == wsframe.PING_FRAME
    assert sse.written[-1] == b": hb\n\n"
