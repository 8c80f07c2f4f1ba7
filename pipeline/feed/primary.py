"""The primary vendor: a live NDJSON stream of everything posted, and a replay of valid events.

Routes:
- `GET /v1/stream`: chunked `application/x-ndjson`, one packet per line exactly as posted,
  from the moment of connection on (no history); a bare newline every `heartbeat_s` as a
  keepalive while the vendor is in normal mode. A silent vendor sends nothing at all.
- `GET /v1/matches/{match_id}/events?after=SEQ`: JSON list of the valid events with
  seq > SEQ, in seq order, each seq once (for gap fill).
- `GET /healthz`.
"""

from __future__ import annotations

from aiohttp import web

from pipeline.auth import error
from pipeline.feed.control import healthz
from pipeline.feed.vendor import Subscription, Vendor
from pipeline.model import MATCH_ID

HEARTBEAT = b"\n"


class PrimaryApp:
    """Handlers of the primary vendor, bound to the shared vendor record."""

    def __init__(self, vendor: Vendor, *, heartbeat_s: float) -> None:
        self.vendor = vendor
        self.heartbeat_s = heartbeat_s

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/stream", self.stream)
        app.router.add_get("/v1/matches/{match_id}/events", self.replay)
        app.router.add_get("/healthz", healthz)
        app.on_shutdown.append(self._end_streams)
        return app

    async def _end_streams(self, _app: web.Application) -> None:
        """At shutdown (after the port is closed) end every stream so no handler lingers."""
        self.vendor.close_subscribers()

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Subscribe before answering, so that nothing posted after the headers is missed."""
        subscription = self.vendor.subscribe()
        subscription.on_drop = lambda: _abort(request)
        response = web.StreamResponse(
            headers={"Content-Type": "application/x-ndjson", "Cache-Control": "no-store"}
        )
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            await self._pump(request, subscription, response)
        except (ConnectionError, EOFError):
            pass
        finally:
            self.vendor.unsubscribe(subscription)
        return response

    async def _pump(
        self, request: web.Request, subscription: Subscription, response: web.StreamResponse
    ) -> None:
        """Write packets as they come, and a heartbeat after each quiet `heartbeat_s`.

        A silent vendor writes nothing, so a client that went away is noticed by looking at
        the connection on every quiet tick rather than by a failed write.
        """
        while True:
            packet = await subscription.next(self.heartbeat_s)
            if packet is not None:
                await response.write(packet + b"\n")
                continue
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            if self.vendor.mode == "normal":
                await response.write(HEARTBEAT)

    async def replay(self, request: web.Request) -> web.Response:
        match_id = request.match_info["match_id"]
        if MATCH_ID.match(match_id) is None:
            return error(400, f"match id {match_id!r} is not HOME-AWAY team codes")
        raw = request.query.get("after", "0")
        if not raw.isdigit() or not raw.isascii() or len(raw) > 16:
            return error(400, f"after must be a non-negative integer seq, got {raw!r}")
        events = self.vendor.events(match_id, after=int(raw))
        return web.json_response([event.to_json() for event in events])


def _abort(request: web.Request) -> None:
    """Drop a slow client's connection; its pending write fails and the handler ends."""
    transport = request.transport
    if transport is not None:
        transport.abort()
