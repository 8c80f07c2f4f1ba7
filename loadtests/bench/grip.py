"""The origin behind Pushpin in the fan-out benchmark: it answers each fan's stream
request with GRIP hold headers, so Pushpin keeps the connection and streams to it what
is published on the match's channel.

    python -m loadtests.bench.grip --port P
"""

from __future__ import annotations

import argparse

from aiohttp import web


async def stream(request: web.Request) -> web.Response:
    return web.Response(
        text=":\n\n",
        headers={
            "Content-Type": "text/event-stream",
            "Grip-Hold": "stream",
            "Grip-Channel": request.match_info["match_id"],
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.grip")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/v1/matches/{match_id}/stream", stream)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None, backlog=4096)


if __name__ == "__main__":
    main()
