"""Many fans in worker processes: the benchmarks' clients.

A fan here is as small as a client can be: one socket, the stream read in chunks, and
for each update its seq and its `"occurred_at"` found by byte search (no JSON parsing),
the arrival stamped with the wall clock. Latency is arrival minus occurred_at, as a
browser would see it. Fans speak SSE (`/stream`) or WebSocket (`/ws`).

`FanPool` starts `workers` processes (spawned, so no state leaks from the parent), each
holding its share of the fans on its own event loop; it waits until they are connected,
and on `collect()` stops them and gathers every fan's receipts. The per-process open
file limit (20,000 here) is why fans are spread over processes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import multiprocessing
import os
import resource
import struct
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

CONNECT_CONCURRENCY = 200
OCCURRED = b'"occurred_at":"'
SEQ = b'"seq":'


@dataclass
class FanReceipts:
    seqs: array[int] = field(default_factory=lambda: array("q"))
    latencies: array[float] = field(default_factory=lambda: array("d"))
    connected: bool = True
    """False for a fan whose stream never opened (its error is in FanPool.errors)."""


def _stamp(data: bytes, arrived: float) -> tuple[int, float] | None:
    """(seq, latency in s) of one update's JSON, found by byte search."""
    at, sq = data.find(OCCURRED), data.find(SEQ)
    if at < 0 or sq < 0:
        return None
    end = data.index(b",", sq)
    occurred = datetime.fromisoformat(data[at + 15 : at + 39].decode().replace("Z", "+00:00"))
    return int(data[sq + 6 : end]), arrived - occurred.timestamp()


class Dechunker:
    """Undoes `Transfer-Encoding: chunked` incrementally (Pushpin streams that way)."""

    def __init__(self) -> None:
        self.raw = b""
        self.data = 0  # bytes of the current chunk's data still to come
        self.crlf = 0  # bytes of the CRLF after it still to skip

    def feed(self, data: bytes) -> bytes:
        self.raw += data
        out = []
        while self.raw:
            if self.data:
                take = self.raw[: self.data]
                out.append(take)
                self.raw, self.data = self.raw[len(take) :], self.data - len(take)
            elif self.crlf:
                skip = min(self.crlf, len(self.raw))
                self.raw, self.crlf = self.raw[skip:], self.crlf - skip
            else:
                end = self.raw.find(b"\r\n")
                if end < 0:
                    break
                self.data = int(self.raw[:end].split(b";")[0] or b"0", 16)
                self.raw, self.crlf = self.raw[end + 2 :], 2
        return b"".join(out)


async def _open(url: str, match_id: str, ws: bool) -> tuple[asyncio.StreamReader, Any, bool]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    path = f"/v1/matches/{match_id}/{'ws' if ws else 'stream'}"
    if parts.path not in ("", "/"):  # a server of its own shape; {match} is this match
        path = (parts.path + (f"?{parts.query}" if parts.query else "")).replace(
            "{match}", match_id
        )
    head = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    if not ws:
        head.append("Accept: text/event-stream")  # as EventSource sends it (nchan wants it)
    if ws:
        key = base64.b64encode(os.urandom(16)).decode()
        head += ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}"]
        head += ["Sec-WebSocket-Version: 13"]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    status = await reader.readline()
    if b" 200 " not in status and b" 101 " not in status:
        raise ConnectionError(status.decode(errors="replace").strip())
    chunked = False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        chunked = chunked or line.lower().startswith(b"transfer-encoding: chunked")
    return reader, writer, chunked


async def _read_sse(reader: asyncio.StreamReader, out: FanReceipts, chunked: bool) -> None:
    buffer = b""
    dechunk = Dechunker() if chunked else None
    while chunk := await reader.read(65536):
        arrived = time.time()
        buffer += dechunk.feed(chunk) if dechunk else chunk
        *events, buffer = buffer.split(b"\n\n")
        for event in events:  # a score update; a feed frame or a comment has no stamp
            if b"data:" in event and (stamp := _stamp(event, arrived)) is not None:
                out.seqs.append(stamp[0])
                out.latencies.append(stamp[1])


async def _read_ws(reader: asyncio.StreamReader, out: FanReceipts) -> None:
    while True:
        head = await reader.readexactly(2)
        arrived = time.time()
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", await reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await reader.readexactly(8))[0]
        data = await reader.readexactly(length)
        if head[0] & 0x0F == 0x1 and (stamp := _stamp(data, arrived)) is not None:
            out.seqs.append(stamp[0])
            out.latencies.append(stamp[1])


async def _worker_main(
    urls: list[str], match_id: str, ws: bool, concurrency: int, conn: Connection
) -> None:
    gate = asyncio.Semaphore(concurrency)
    receipts = [FanReceipts(connected=False) for _ in urls]
    writers: list[Any] = []
    errors: list[str] = []
    settled = asyncio.Event()

    def one_more() -> None:
        if len(writers) + len(errors) == len(urls):
            settled.set()

    async def fan(url: str, out: FanReceipts) -> None:
        try:
            async with gate:
                reader, writer, chunked = await _open(url, match_id, ws)
            out.connected = True
            writers.append(writer)
            one_more()
            await (_read_ws(reader, out) if ws else _read_sse(reader, out, chunked))
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors.append(f"{exc.__class__.__name__}: {exc}")
            one_more()

    tasks = [asyncio.create_task(fan(u, r)) for u, r in zip(urls, receipts, strict=True)]
    loop = asyncio.get_running_loop()
    stop = loop.run_in_executor(None, conn.recv)  # "stop", which may come before all connect
    connecting = asyncio.ensure_future(settled.wait())
    await asyncio.wait([stop, connecting], return_when=asyncio.FIRST_COMPLETED)
    if connecting.done():
        conn.send(("connected", len(writers), errors[:5]))
    else:
        connecting.cancel()
    await stop
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for writer in writers:
        writer.transport.abort()
    fans = [(r.seqs.tobytes(), r.latencies.tobytes(), r.connected) for r in receipts]
    conn.send(("done", fans, errors[:5]))


def _worker(urls: list[str], match_id: str, ws: bool, concurrency: int, conn: Connection) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        uvloop.run(_worker_main(urls, match_id, ws, concurrency, conn))
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        asyncio.run(_worker_main(urls, match_id, ws, concurrency, conn))


class FanPool:
    """`fans` fans of `match_id` spread round-robin over `urls`, in `workers` processes,
    each opening at most `connect_concurrency` connections at a time."""

    def __init__(
        self,
        urls: list[str],
        match_id: str,
        fans: int,
        *,
        workers: int = 2,
        ws: bool = False,
        connect_concurrency: int = CONNECT_CONCURRENCY,
    ) -> None:
        self.fans, self.ws = fans, ws
        context = multiprocessing.get_context("spawn")
        share = [[urls[i % len(urls)] for i in range(w, fans, workers)] for w in range(workers)]
        self._pipes: list[Connection] = []
        self._processes = []
        for part in share:
            parent, child = context.Pipe()
            process = context.Process(
                target=_worker, args=(part, match_id, ws, connect_concurrency, child)
            )
            process.start()
            self._pipes.append(parent)
            self._processes.append(process)
        self.errors: list[str] = []
        self._closed = False

    def wait_connected(self, timeout_s: float | None = None) -> int:
        """How many fans connected, once every worker has tried all of its fans; raises
        TimeoutError after `timeout_s` (default: 60 s plus 10 ms a fan), leaving the pool
        for `collect()` to stop."""
        deadline = time.monotonic() + (60.0 + self.fans / 100 if timeout_s is None else timeout_s)
        connected = 0
        for index, pipe in enumerate(self._pipes):
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(
                    f"{index} of {len(self._pipes)} fan workers connected their fans "
                    f"within the time allowed"
                )
            _, count, errors = pipe.recv()
            connected += count
            self.errors += errors
        return connected

    def collect(self, timeout_s: float = 60.0) -> list[FanReceipts]:
        """Stop every fan (also those still connecting); their receipts, one per fan that a
        worker reported within `timeout_s`."""
        out: list[FanReceipts] = []
        if self._closed:
            return out
        for pipe in self._pipes:
            with contextlib.suppress(OSError):  # a worker that died already
                pipe.send("stop")
        deadline = time.monotonic() + timeout_s
        for pipe in self._pipes:
            for message in self._messages(pipe, deadline):
                if message[0] != "done":
                    continue  # "connected", sent as the pool gave up waiting for it
                _, fans, errors = message
                self.errors += errors
                for seqs, latencies, connected in fans:
                    receipt = FanReceipts(connected=connected)
                    receipt.seqs.frombytes(seqs)
                    receipt.latencies.frombytes(latencies)
                    out.append(receipt)
                break
        self.close()
        return out

    @staticmethod
    def _messages(pipe: Connection, deadline: float) -> Iterator[tuple[Any, ...]]:
        try:
            while pipe.poll(max(0.0, deadline - time.monotonic())):
                yield pipe.recv()
        except (EOFError, OSError):
            return

    def close(self) -> None:
        """Stop the worker processes (by their handles, which hold their PIDs)."""
        if self._closed:
            return
        self._closed = True
        for process in self._processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.close()
