"""`FeedServer`: the control, primary and secondary apps on their three ports, in one process.

Explicit lifecycle: `await start()`, idempotent `await stop()`, or `async with`. Stopping
ends every open stream first, so that shutdown never waits on a client that keeps reading.
"""

from __future__ import annotations

from types import TracebackType
from typing import Final

from aiohttp import web

from pipeline.auth import read_token
from pipeline.feed.config import FeedConfig
from pipeline.feed.control import ControlApp
from pipeline.feed.primary import PrimaryApp
from pipeline.feed.secondary import SecondaryApp
from pipeline.feed.vendor import Vendor

SERVERS: Final = ("control", "primary", "secondary")
SHUTDOWN_TIMEOUT_S: Final = 2.0


class FeedServer:
    """The three simulated-vendor servers sharing one `Vendor` record."""

    def __init__(self, config: FeedConfig, *, vendor: Vendor | None = None) -> None:
        self.config = config
        self.vendor = vendor if vendor is not None else Vendor()
        self._runners: dict[str, web.AppRunner] = {}
        self.ports: dict[str, int] = {}
        """The port each server bound, by name (known after `start()`; useful with port 0)."""

    def apps(self) -> dict[str, web.Application]:
        token = read_token(self.config.admin_token_file)
        return {
            "control": ControlApp(self.vendor, token).build(),
            "primary": PrimaryApp(self.vendor, heartbeat_s=self.config.heartbeat_s).build(),
            "secondary": SecondaryApp(self.vendor, delay_s=self.config.secondary_delay_s).build(),
        }

    def url(self, name: str) -> str:
        """`http://host:port` of a started server: 'control', 'primary' or 'secondary'."""
        return f"http://{self.config.host}:{self.ports[name]}"

    async def start(self) -> None:
        """Bind all three servers; if one cannot bind, the others are stopped again."""
        if self._runners:
            return
        wanted = {
            "control": self.config.control_port,
            "primary": self.config.primary_port,
            "secondary": self.config.secondary_port,
        }
        try:
            for name, app in self.apps().items():
                runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
                await runner.setup()
                self._runners[name] = runner
                await web.TCPSite(runner, self.config.host, wanted[name]).start()
                self.ports[name] = int(runner.addresses[0][1])
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """End open streams, then stop the servers. Safe to call twice."""
        self.vendor.close_subscribers()
        runners, self._runners = self._runners, {}
        for runner in runners.values():
            await runner.cleanup()
        self.ports = {}

    async def __aenter__(self) -> FeedServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
