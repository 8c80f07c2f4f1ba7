"""`python -m pipeline.feed --config FILE`: run the simulated vendors until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from pipeline.feed.config import FeedConfig
from pipeline.feed.server import SERVERS, FeedServer

log = logging.getLogger("pipeline.feed")


async def serve(config: FeedConfig) -> None:
    """Start the three servers, log where they listen, and stop cleanly on a signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with FeedServer(config) as server:
        for name in SERVERS:
            log.info("feed: %s on %s:%d", name, config.host, server.ports[name])
        await stop.wait()
        log.info("feed: stopping")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.feed", description=__doc__)
    parser.add_argument("--config", required=True, type=Path, help="feed config (JSON)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = FeedConfig.load(args.config)
    except ValueError as exc:
        print(f"feed: {exc}", file=sys.stderr)
        return 2
    try:
        _run(serve(config))
    except (OSError, ValueError) as exc:
        print(f"feed: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed, else on the standard event loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


if __name__ == "__main__":
    sys.exit(main())
