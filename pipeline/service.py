"""What every pipeline process shares: `--config`, logging, metrics endpoint, clean stop.

A service is an async function taking its config; `main()` runs it until SIGTERM or
SIGINT, then cancels it so its `finally` blocks close connections and flush telemetry.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, start_http_server

from pipeline.config import load_config
from pipeline.telemetry import setup_tracing

C = TypeVar("C")


def main(
    name: str,
    config_type: type[C],
    run: Callable[[C], Awaitable[None]],
    argv: Sequence[str] | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m pipeline.{name}")
    parser.add_argument("--config", type=Path, required=True, help="JSON config file")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load_config(config_type, args.config)
    except ValueError as exc:
        print(f"{name}: bad config: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop

        runner: Callable[..., None] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        runner = asyncio.run
    runner(_until_signalled(run(config)))
    logging.getLogger(name).info("stopped")
    return 0


async def run_all(*loops: Coroutine[Any, Any, None]) -> None:
    """Run a service's loops together until one fails (raised) or all are cancelled."""
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()


async def with_telemetry(
    name: str,
    *,
    trace_dir: Path | None,
    metrics_port: int,
    registry: CollectorRegistry,
    work: Awaitable[None],
    host: str = "127.0.0.1",
) -> None:
    """Tracing set up and /metrics served on `host`:`metrics_port` around `work`."""
    provider = setup_tracing(name, trace_dir=trace_dir)
    server, thread = start_http_server(metrics_port, addr=host, registry=registry)
    logging.getLogger(name).info("%s: metrics on %s:%d", name, host, metrics_port)
    try:
        await work
    finally:
        server.shutdown()
        thread.join(2)
        provider.shutdown()


async def _until_signalled(work: Awaitable[None]) -> None:
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
