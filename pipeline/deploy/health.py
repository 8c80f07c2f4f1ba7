"""Health probes. Each returns None when healthy, or the reason it is not, and never raises."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import httpx
import redis
import redis.asyncio as aioredis
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from pipeline.topology import REDIS_MASTER_NAME

_quiet = logging.getLogger("gameday.deploy.kafka-admin")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


async def tcp_open(host: str, port: int, timeout_s: float = 1.0) -> str | None:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError) as exc:
        return f"{host}:{port} does not accept connections ({exc.__class__.__name__})"
    writer.close()
    return None


async def http_ok(url: str, timeout_s: float = 1.0) -> str | None:
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        return f"GET {url} failed: {exc.__class__.__name__}"
    if response.status_code != 200:
        return f"GET {url} -> {response.status_code}"
    return None


async def redis_node(port: int, timeout_s: float = 1.0) -> str | None:
    """Answers PING; a replica's link to its master is up."""
    client = aioredis.Redis(
        host="127.0.0.1", port=port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )
    try:
        await client.ping()
        info: Mapping[str, Any] = await client.info("replication")
    except (aioredis.RedisError, OSError) as exc:
        return f"redis on port {port}: {exc}"
    finally:
        await client.aclose()
    if info.get("role") == "slave" and info.get("master_link_status") != "up":
        return f"replica on port {port}: link to its master is {info.get('master_link_status')}"
    return None


async def sentinel(
    port: int, *, sentinels: int, replicas: int, timeout_s: float = 1.0
) -> str | None:
    """Knows the master, sees it up, and sees the other Sentinels and the replicas."""
    client = aioredis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        decode_responses=True,
    )
    try:
        state = await client.sentinel_master(REDIS_MASTER_NAME)
        if not isinstance(state, dict):
            return f"sentinel on port {port} does not monitor {REDIS_MASTER_NAME}"
    except (aioredis.RedisError, OSError) as exc:
        return f"sentinel on port {port}: {exc}"
    finally:
        await client.aclose()
    flags = str(state.get("flags", ""))
    if "s_down" in flags or "o_down" in flags:
        return f"sentinel on port {port} sees master {REDIS_MASTER_NAME} as down ({flags})"
    others = int(state.get("num-other-sentinels", 0))
    if others < sentinels - 1:
        return f"sentinel on port {port} sees {others} of {sentinels - 1} other sentinels"
    seen = int(state.get("num-slaves", 0))
    if seen < replicas:
        return f"sentinel on port {port} sees {seen} of {replicas} replicas"
    return None


class KafkaProbe:
    """Checks the broker answers metadata requests and holds `topics`; can create them."""

    def __init__(self, bootstrap: str, topics: dict[str, int]) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        """Topic name -> partitions."""
        self._admin: AdminClient | None = None

    def _client(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(
                {"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 2000},
                logger=_quiet,
            )
        return self._admin

    def _topics(self) -> set[str]:
        return set(self._client().list_topics(timeout=2).topics)

    async def check(self) -> str | None:
        host, port = self.bootstrap.rsplit(":", 1)
        if reason := await tcp_open(host, int(port)):
            return reason
        try:
            topics = await asyncio.to_thread(self._topics)
        except Exception as exc:  # confluent_kafka raises KafkaException with varied payloads
            return f"kafka metadata request failed: {exc}"
        missing = sorted(set(self.topics) - topics)
        if missing:
            return f"topic(s) {', '.join(missing)} do not exist"
        return None

    async def ensure(self) -> None:
        host, port = self.bootstrap.rsplit(":", 1)
        if await tcp_open(host, int(port)):
            return
        missing = set(self.topics) - await asyncio.to_thread(self._topics)
        if not missing:
            return
        new = [
            NewTopic(
                name,
                num_partitions=self.topics[name],
                replication_factor=1,
                config={"min.insync.replicas": "1"},
            )
            for name in sorted(missing)
        ]
        futures = self._client().create_topics(new, operation_timeout=5)
        for future in futures.values():
            try:
                await asyncio.to_thread(future.result, 10)
            except Exception as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise


async def metric(url: str, name: str, *, want: float, timeout_s: float = 1.0) -> str | None:
    """The unlabelled sample `name` on the Prometheus page at `url` equals `want`."""
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        return f"GET {url} failed: {exc.__class__.__name__}"
    for line in response.text.splitlines():
        if line.startswith(f"{name} "):
            value = float(line.split()[1])
            return None if value == want else f"{name} is {value:g}, not {want:g}"
    return f"{name} not reported at {url}"


def sentinel_master_port(ports: list[int], master_name: str) -> int | None:
    """The master's port as the first answering Sentinel names it; None if none answers.

    Blocking (used while preparing a process, in a thread)."""
    for port in ports:
        client = redis.Redis(
            host="127.0.0.1",
            port=port,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            decode_responses=True,
        )
        try:
            answer = client.sentinel_get_master_addr_by_name(master_name)
        except (redis.RedisError, OSError):
            continue
        finally:
            client.close()
        if isinstance(answer, tuple | list) and answer:
            return int(answer[1])
    return None
