"""A scripted SSE edge for browser tests: the real page files, frames pushed on demand.

It serves pipeline/web/ with the edge's route layout and the fan-facing contract
(DESIGN.md "What a fan receives"), but nothing reaches it from a pipeline: the
test decides every frame, can cut the streams and refuse new ones.

    GET /, /matches/{id}              -> index.html
    GET /app.js, /style.css, /sw.js   -> the real files, read on every request
    GET /v1/matches/{id}              -> the latest published state (ETag, max-age=1), 404 JSON
    GET /v1/matches/{id}/stream       -> retry: 2000, then score/feed frames; ": hb" comments;
                                         `Last-Event-ID` (or ?last_event_id=) replays newer frames,
                                         otherwise the current state is sent first

The server runs on its own event loop in a background thread; every public method
is called from the test's thread and returns once the loop has done the work.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeVar
from urllib.parse import urlencode

from aiohttp import web

WEB_DIR: Final = Path(__file__).resolve().parents[2] / "pipeline" / "web"
STATIC: Final = {
    "/app.js": ("app.js", "text/javascript"),
    "/style.css": ("style.css", "text/css"),
    "/sw.js": ("sw.js", "text/javascript"),
}
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "worker-src 'self'; img-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'"
)
State = dict[str, Any]
T = TypeVar("T")


def score_frame(state: State) -> bytes:
    data = json.dumps(state, separators=(",", ":"), ensure_ascii=False)
    return f"id: {state['seq']}\nevent: score\ndata: {data}\n\n".encode()


def feed_frame(*, feed: str, delayed: bool) -> bytes:
    data = json.dumps({"feed": feed, "delayed": delayed})
    return f"event: feed\ndata: {data}\n\n".encode()


@dataclass(eq=False)
class _Stream:
    match_id: str
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)


@dataclass
class _Match:
    state: State | None = None
    history: list[tuple[int, bytes]] = field(default_factory=list)


@dataclass
class Counters:
    """What the page asked for, so tests can tell polling from streaming."""

    stream_requests: int = 0
    refused_streams: int = 0
    snapshot_requests: int = 0
    last_event_ids: list[str | None] = field(default_factory=list)


class ScriptedEdge:
    """An SSE edge whose frames come from the test. Use as a context manager."""

    def __init__(self, *, web_dir: Path = WEB_DIR, heartbeat_s: float = 5.0) -> None:
        self.web_dir = web_dir
        self.heartbeat_s = heartbeat_s
        self.counters = Counters()
        self.url = ""
        self._matches: dict[str, _Match] = {}
        self._streams: set[_Stream] = set()
        self._refusing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="scripted-edge")
        self._runner: web.AppRunner | None = None
        self._sock: socket.socket | None = None

    # ---- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        try:
            self._call(self._start())
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Idempotent: ends every stream, stops the server and the loop thread."""
        if not self._thread.is_alive():
            return
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- what the test does ------------------------------------------------

    def page_url(self, match_id: str, **query: str | int | float) -> str:
        suffix = f"?{urlencode(query)}" if query else ""
        return f"{self.url}/matches/{match_id}{suffix}"

    def publish(self, state: State) -> None:
        """Make `state` the snapshot and send it as a score frame to every open stream."""
        self._call(self._publish(state))

    def set_snapshot(self, state: State) -> None:
        """Change the snapshot only: the streams do not hear of it (a stuck or cut stream)."""
        self._call(self._set_snapshot(state))

    def send_score(self, state: State) -> None:
        """Send a score frame as given (an older or repeated seq) without touching the snapshot."""
        self._call(self._broadcast(state["match_id"], score_frame(state)))

    def send_feed(self, match_id: str, *, feed: str, delayed: bool) -> None:
        """An `event: feed` frame (no id): the pipeline switched vendors."""
        self._call(self._broadcast(match_id, feed_frame(feed=feed, delayed=delayed)))

    def cut_streams(self, *, refuse: bool = True) -> None:
        """End every open stream; while `refuse`, new stream requests get 503."""
        self._call(self._cut(refuse=refuse))

    def allow_streams(self) -> None:
        self._call(self._allow())

    def open_streams(self, match_id: str | None = None) -> int:
        return self._call(self._count(match_id))

    # ---- inside the loop ---------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/matches/{match_id}", self._page)
        for path in STATIC:
            app.router.add_get(path, self._static)
        app.router.add_get("/v1/matches/{match_id}", self._snapshot)
        app.router.add_get("/v1/matches/{match_id}/stream", self._stream)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        await web.SockSite(self._runner, self._sock).start()
        host, port = self._sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"

    async def _stop(self) -> None:
        await self._cut(refuse=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._sock is not None:
            self._sock.close()
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _publish(self, state: State) -> None:
        await self._set_snapshot(state)
        frame = score_frame(state)
        self._matches[state["match_id"]].history.append((state["seq"], frame))
        await self._broadcast(state["match_id"], frame)

    async def _set_snapshot(self, state: State) -> None:
        self._matches.setdefault(state["match_id"], _Match()).state = state

    async def _broadcast(self, match_id: str, frame: bytes) -> None:
        for stream in self._streams:
            if stream.match_id == match_id:
                stream.queue.put_nowait(frame)

    async def _cut(self, *, refuse: bool) -> None:
        self._refusing = refuse
        for stream in self._streams:
            stream.queue.put_nowait(None)

    async def _allow(self) -> None:
        self._refusing = False

    async def _count(self, match_id: str | None) -> int:
        return sum(1 for s in self._streams if match_id in (None, s.match_id))

    # ---- handlers ----------------------------------------------------------

    def _file(self, name: str, content_type: str) -> web.Response:
        return web.Response(
            body=(self.web_dir / name).read_bytes(),
            content_type=content_type,
            charset="utf-8",
            headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP},
        )

    async def _page(self, request: web.Request) -> web.Response:
        return self._file("index.html", "text/html")

    async def _static(self, request: web.Request) -> web.Response:
        name, content_type = STATIC[request.path]
        return self._file(name, content_type)

    async def _snapshot(self, request: web.Request) -> web.Response:
        self.counters.snapshot_requests += 1
        match = self._matches.get(request.match_info["match_id"])
        if match is None or match.state is None:
            return web.json_response({"error": "unknown match"}, status=404)
        body = json.dumps(match.state, separators=(",", ":")).encode()
        etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
        headers = {"ETag": etag, "Cache-Control": "max-age=1"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type="application/json", headers=headers)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        self.counters.stream_requests += 1
        last_id = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
        self.counters.last_event_ids.append(last_id)
        if self._refusing:
            self.counters.refused_streams += 1
            return web.json_response({"error": "stream refused by the test"}, status=503)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        stream = _Stream(request.match_info["match_id"])
        self._streams.add(stream)
        try:
            await response.write(b"retry: 2000\n\n")
            for replayed in self._catch_up(stream.match_id, last_id):
                await response.write(replayed)
            while (frame := await self._next(stream)) is not None:
                await response.write(frame)
        except ConnectionError:
            pass
        finally:
            self._streams.discard(stream)
        return response

    async def _next(self, stream: _Stream) -> bytes | None:
        try:
            return await asyncio.wait_for(stream.queue.get(), self.heartbeat_s)
        except TimeoutError:
            return b": hb\n\n"

    def _catch_up(self, match_id: str, last_id: str | None) -> list[bytes]:
        match = self._matches.get(match_id)
        if match is None or match.state is None:
            return []
        if last_id is None or not last_id.isdigit():
            return [score_frame(match.state)]
        return [frame for seq, frame in match.history if seq > int(last_id)]
