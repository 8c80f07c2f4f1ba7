"""The control app (the "stadium"): where tests, drills and `gameday match play` inject packets.

Routes (POST routes need `Authorization: Bearer <token>`):
- `POST /v1/matches/{match_id}/events`: a JSON object (one packet) or a JSON list (one
  packet per element, re-serialized compactly); or, with Content-Type text/plain or
  application/x-ndjson, one raw packet per non-empty line, byte for byte (malformed packets).
  202 `{"accepted": N, "valid": K, "invalid": [{"index", "reason", "error"}]}`.
- `POST /v1/feed/primary` `{"mode": "normal"|"silent"}`: silence the primary or revive it.
- `GET /v1/feed`: the primary's mode and subscribers, and each match's last valid seq.
- `GET /healthz`, `GET /metrics`.
"""

from __future__ import annotations

import json
from typing import Any, Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipeline.auth import bearer_ok, error
from pipeline.feed.vendor import Vendor
from pipeline.model import InvalidEvent

MAX_BODY_BYTES: Final = 1024 * 1024
LINE_TYPES: Final = frozenset({"text/plain", "application/x-ndjson"})


def compact(value: Any) -> bytes:
    """One JSON value as one compact line; falls back to ASCII escapes for lone surrogates."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def packets_of(body: bytes, content_type: str) -> list[bytes]:
    """Split a request body into packets. Raises ValueError for a JSON body that is not JSON."""
    if content_type in LINE_TYPES:
        return [line for line in body.split(b"\n") if line]
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"body is not JSON ({exc}); send raw packets as text/plain") from None
    except RecursionError:
        raise ValueError("body nests too deeply; send raw packets as text/plain") from None
    if isinstance(value, list):
        return [compact(item) for item in value]
    if isinstance(value, dict):
        return [compact(value)]
    raise ValueError(f"body must be a JSON object or list, not a {type(value).__name__}")


class ControlApp:
    """Handlers of the control server, bound to one vendor and one admin token."""

    def __init__(self, vendor: Vendor, token: str) -> None:
        self.vendor = vendor
        self.token = token

    def build(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._auth])
        app.router.add_post("/v1/matches/{match_id}/events", self.post_events)
        app.router.add_post("/v1/feed/primary", self.set_primary)
        app.router.add_get("/v1/feed", self.feed)
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/metrics", self.metrics)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Every POST needs the bearer token; reads are open."""
        if request.method == "POST" and not bearer_ok(
            request.headers.get("Authorization"), self.token
        ):
            return error(401, "missing or wrong bearer token (see admin_token_file)")
        response: web.StreamResponse = await handler(request)
        return response

    async def post_events(self, request: web.Request) -> web.Response:
        match_id = request.match_info["match_id"]
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return error(413, f"body exceeds {MAX_BODY_BYTES} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return error(413, f"body exceeds {MAX_BODY_BYTES} bytes")
        try:
            packets = packets_of(body, request.content_type)
        except ValueError as exc:
            return error(400, str(exc))
        try:
            result = self.vendor.post(match_id, packets)
        except InvalidEvent as exc:
            return error(400, str(exc))
        return web.json_response(result.to_json(), status=202)

    async def set_primary(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
            mode = self.vendor.set_mode(body.get("mode") if isinstance(body, dict) else None)
        except (ValueError, RecursionError):
            return error(400, 'body must be {"mode": "normal"} or {"mode": "silent"}')
        return web.json_response({"mode": mode})

    async def feed(self, _request: web.Request) -> web.Response:
        primary = {"mode": self.vendor.mode, "subscribers": self.vendor.subscribers}
        return web.json_response({"primary": primary, "matches": self.vendor.matches()})

    async def metrics(self, _request: web.Request) -> web.Response:
        payload = generate_latest(self.vendor.metrics.registry)
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")
