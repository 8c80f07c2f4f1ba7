"""Reaching the Redis master through Sentinel, and through this process's own network link.

Sentinel answers with the master's real address. A process that reaches Redis through a
Toxiproxy link (an edge in a region) maps that address to its link with `address_map`,
so a fault on the link applies before and after a failover alike. `static_master`
bypasses Sentinel (a drill switch that shows why Sentinel matters).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RedisTarget:
    sentinels: tuple[str, ...]
    master_name: str
    address_map: dict[str, str] = field(default_factory=dict)
    static_master: str | None = None
    socket_timeout_s: float = 5.0


def _split(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


class RedisClientConfig(Protocol):
    """The part of a service's config that says how it reaches Redis."""

    @property
    def sentinels(self) -> tuple[str, ...]: ...
    @property
    def master_name(self) -> str: ...
    @property
    def address_map(self) -> dict[str, str]: ...
    @property
    def static_master(self) -> str | None: ...


def target_of(config: RedisClientConfig) -> RedisTarget:
    return RedisTarget(
        sentinels=config.sentinels,
        master_name=config.master_name,
        address_map=config.address_map,
        static_master=config.static_master,
    )


class NoMaster(RedisError):
    """No Sentinel could name a master that answers as one."""


class MasterFollower:
    """Hands out a client for the current master; `invalidate()` after an error to follow it."""

    def __init__(self, target: RedisTarget) -> None:
        self.target = target
        self.master: str | None = None
        """The real address of the master currently connected to."""
        self.changes = 0
        self._client: aioredis.Redis | None = None
        self._lock = asyncio.Lock()

    async def discover(self) -> str:
        """The master's real address, as a Sentinel names it and the server confirms."""
        if self.target.static_master is not None:
            return self.target.static_master
        errors = []
        for address in self.target.sentinels:
            host, port = _split(address)
            sentinel = aioredis.Redis(
                host=host, port=port, socket_timeout=1.0, socket_connect_timeout=1.0
            )
            try:
                answer = await sentinel.sentinel_get_master_addr_by_name(self.target.master_name)
            except (RedisError, OSError) as exc:
                errors.append(f"{address}: {exc}")
                continue
            finally:
                await sentinel.aclose()
            if not isinstance(answer, tuple | list) or not answer:
                errors.append(f"{address}: does not know {self.target.master_name}")
                continue
            master_host = answer[0].decode() if isinstance(answer[0], bytes) else answer[0]
            candidate = f"{master_host}:{int(answer[1])}"
            if await self._is_master(candidate):
                return candidate
            errors.append(f"{address}: names {candidate}, which is not a master (yet)")
        raise NoMaster("; ".join(errors) or "no sentinels configured")

    def _connect(self, real: str) -> aioredis.Redis:
        """A client for one server, without redis-py's own retries: a failed command must
        reach the caller at once, so it asks Sentinel again instead of retrying (for
        seconds) a master that is gone, or that came back as a stale one."""
        host, port = _split(self.target.address_map.get(real, real))
        return aioredis.Redis(
            host=host,
            port=port,
            socket_timeout=self.target.socket_timeout_s,
            socket_connect_timeout=2.0,
            health_check_interval=0,
            retry=Retry(NoBackoff(), 0),
        )

    async def _is_master(self, real: str) -> bool:
        client = self._connect(real)
        try:
            role = await client.role()
        except (RedisError, OSError):
            return False
        finally:
            await client.aclose()
        return bool(role) and role[0] in (b"master", "master")

    async def client(self) -> aioredis.Redis:
        async with self._lock:
            if self._client is None:
                real = await self.discover()
                if self.master is not None and real != self.master:
                    self.changes += 1
                    log.warning("redis master moved from %s to %s", self.master, real)
                self.master = real
                self._client = self._connect(real)
            return self._client

    async def invalidate(self) -> None:
        """Drop the connection; the next `client()` asks Sentinel again."""
        async with self._lock:
            if self._client is not None:
                client, self._client = self._client, None
                await client.aclose()

    async def reconnect(self, *, after_s: float) -> bool | None:
        """After a failed command: drop the connection, wait `after_s`, ask Sentinel again.

        Returns whether the master moved, or None while no master answers (a failover in
        progress): the caller tries again later.
        """
        before = self.master
        await self.invalidate()
        await asyncio.sleep(after_s)
        try:
            await self.client()
        except (RedisError, OSError):
            return None
        return self.master != before

    async def aclose(self) -> None:
        await self.invalidate()


async def wait_for_master(follower: MasterFollower, *, timeout_s: float) -> aioredis.Redis:
    """A client for the master, retrying discovery (a failover in progress) until timeout."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            return await follower.client()
        except (RedisError, OSError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)
