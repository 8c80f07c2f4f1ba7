"""The floor: the least a server can do to push each update to every fan.

It reads the same Redis update stream as the edges (through the same kind of Toxiproxy
link), and for each update writes one pre-encoded SSE frame to every socket watching
that match: no replay, no heartbeats, no metrics, no tracing, no slow-client policing.
It serves the same fans as the edge in the benchmark, so the table shows how far the
edge is from the limit of this machine.

    python -m loadtests.bench.floor --port P --redis HOST:PORT
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
from typing import Any, cast

import redis.asyncio as aioredis

from pipeline.scorestore import UPDATES

HEADERS = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
    b"Connection: keep-alive\r\n\r\n"
)


class Floor:
    def __init__(self) -> None:
        self.fans: dict[bytes, set[asyncio.Transport]] = {}

    def write(self, match_id: bytes, seq: bytes, payload: bytes) -> None:
        frame = b"id: %s\nevent: score\ndata: %s\n\n" % (seq, payload)
        for transport in self.fans.get(match_id, ()):
            transport.write(frame)


class FloorProtocol(asyncio.Protocol):
    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.match: bytes | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )

    def data_received(self, data: bytes) -> None:
        if self.match is not None or self.transport is None:
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        path = self.buffer.split(b" ", 2)[1]  # GET /v1/matches/ID/stream HTTP/1.1
        parts = path.split(b"/")
        if len(parts) != 5 or parts[4] != b"stream":
            self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()
            return
        self.match = parts[3]
        self.floor.fans.setdefault(self.match, set()).add(self.transport)
        self.transport.write(HEADERS)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.match is not None and self.transport is not None:
            self.floor.fans.get(self.match, set()).discard(self.transport)


async def follow(floor: Floor, redis_address: str) -> None:
    host, port = redis_address.rsplit(":", 1)
    client = aioredis.Redis(host=host, port=int(port))
    newest: Any = await client.xrevrange(UPDATES, count=1)
    position = newest[0][0] if newest else b"0-0"
    while True:
        answer: Any = await client.xread({UPDATES: position}, count=1000, block=1000)
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                position = entry_id
                if fields.get(b"m", b"*") != b"*":
                    floor.write(fields[b"m"], fields[b"s"], fields[b"d"])


async def serve(port: int, redis_address: str) -> None:
    floor = Floor()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FloorProtocol(floor), "127.0.0.1", port, backlog=4096)
    try:
        await follow(floor, redis_address)
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.floor")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True, metavar="HOST:PORT")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import uvloop

    uvloop.run(serve(args.port, args.redis))


if __name__ == "__main__":
    main()
