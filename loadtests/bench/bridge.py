"""Feeds a peer SSE server the updates the edges get: Redis update stream -> publish API.

    python -m loadtests.bench.bridge --redis HOST:PORT --publish URL --kind nchan|pushpin

`--publish` may hold `{match}`, replaced by each update's match id. Each update is
published once, in stream order, over one kept-alive connection.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import httpx
import redis.asyncio as aioredis

from pipeline.scorestore import UPDATES


def body(kind: str, match_id: str, seq: bytes, payload: bytes) -> tuple[bytes, dict[str, str]]:
    """What the peer's publish API takes for one update, and its content type."""
    if kind == "centrifugo":
        publish = b'{"channel":"%s","data":%s}' % (match_id.encode(), payload)
        return publish, {"Content-Type": "application/json", "X-API-Key": "gameday-bench"}
    if kind == "pushpin":
        frame = b"id: %s\nevent: score\ndata: %s\n\n" % (seq, payload)
        item = {"channel": match_id, "formats": {"http-stream": {"content": frame.decode()}}}
        return json.dumps({"items": [item]}).encode(), {"Content-Type": "application/json"}
    return payload, {"Content-Type": "text/plain"}


async def bridge(redis_address: str, publish: str, kind: str) -> None:
    host, port = redis_address.rsplit(":", 1)
    client = aioredis.Redis(host=host, port=int(port))
    newest: Any = await client.xrevrange(UPDATES, count=1)
    position = newest[0][0] if newest else b"0-0"
    async with httpx.AsyncClient(timeout=10) as http:
        while True:
            answer: Any = await client.xread({UPDATES: position}, count=1000, block=1000)
            for _stream, entries in answer or []:
                for entry_id, fields in entries:
                    position = entry_id
                    match_id = fields.get(b"m", b"*").decode()
                    if match_id == "*":
                        continue
                    content, headers = body(kind, match_id, fields[b"s"], fields[b"d"])
                    await http.post(
                        publish.format(match=match_id), content=content, headers=headers
                    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.bridge")
    parser.add_argument("--redis", required=True, metavar="HOST:PORT")
    parser.add_argument("--publish", required=True, metavar="URL")
    parser.add_argument("--kind", choices=["nchan", "pushpin", "centrifugo"], required=True)
    args = parser.parse_args()
    import uvloop

    uvloop.run(bridge(args.redis, args.publish, args.kind))


if __name__ == "__main__":
    main()
