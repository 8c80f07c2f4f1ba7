"""Run a pipeline service in its container with its loopback-only ports reachable.

Ingest's control API and the metrics of ingest and the scorekeeper listen on 127.0.0.1
only (pipeline/service.py), which inside a container nobody else can reach. This wrapper
starts the service and relays each such port from the container's own address (the one
compose's DNS gives its service name) to 127.0.0.1 on the same port number:

    python -m pipeline.deploy.relay --port 8010 --port 8011 -- python -m pipeline.ingest ...

It forwards SIGTERM and SIGINT to the service and exits with its exit code; a relay that
cannot reach the service closes that one connection (the service is starting, or paused).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Sequence

CHUNK = 64 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def relay(listen_host: str, port: int, *, target_host: str = "127.0.0.1") -> asyncio.Server:
    """Serve `listen_host:port`, each connection piped to `target_host:port`."""

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(target_host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return await asyncio.start_server(one, listen_host, port)


def own_address() -> str:
    """The container's address on its network, as Docker writes it in /etc/hosts."""
    return socket.gethostbyname(socket.gethostname())


async def run(ports: Sequence[int], command: Sequence[str], *, listen_host: str) -> int:
    child = await asyncio.create_subprocess_exec(*command)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, child.send_signal, sig)
    servers = []
    try:
        for port in ports:
            servers.append(await relay(listen_host, port))
        return await child.wait()
    finally:
        for server in servers:
            server.close()
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
            await child.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.deploy.relay")
    parser.add_argument("--port", type=int, action="append", default=[], dest="ports")
    parser.add_argument("command", nargs="+", help="the service's command line (after --)")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.ports, args.command, listen_host=own_address()))


if __name__ == "__main__":
    sys.exit(main())
