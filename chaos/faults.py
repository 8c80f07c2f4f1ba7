"""Faults a drill injects, each through a public surface an SRE would use too.

A `Fault` has `inject()` and `revert()`; `injected()` wraps the pair so the revert runs
in `finally`, on errors and on Ctrl-C alike, and records when each happened:

- `Toxic`: a Toxiproxy toxic on one link (latency with jitter, timeout, reset_peer,
  bandwidth, slicer, limit_data); `LinkDown`: the link disabled;
- `RedisFailover`: `SENTINEL FAILOVER` (a planned switch), or the master killed;
- `FeedSilent`: the primary vendor keeps its connections but sends nothing;
- `FeedStutter`: the primary vendor re-sends and reorders what it sends;
- `ServiceDown`: a process of the stack killed (or frozen), started again on revert;
- `BadCanary`: a defective build deployed to the canary edge; the good one on revert.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
import redis.asyncio as aioredis

from pipeline.deploy import Deployment, Toxiproxy
from pipeline.deploy.toxiproxy import ToxicType
from pipeline.feed import Stutter
from pipeline.model import format_time


class Fault(Protocol):
    name: str
    kind: str

    async def inject(self) -> None: ...

    async def revert(self) -> None: ...


@dataclass
class FaultRecord:
    """What a report says of a fault (DESIGN.md: name, kind, injected_at, reverted_at)."""

    name: str
    kind: str
    injected_at: str | None = None
    reverted_at: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "injected_at": self.injected_at,
            "reverted_at": self.reverted_at,
            "error": self.error,
        }


def _now() -> str:
    return format_time(datetime.now(UTC))


@contextlib.asynccontextmanager
async def injected(
    fault: Fault,
    record: FaultRecord | None = None,
) -> AsyncIterator[FaultRecord]:
    """Inject on entry; revert on exit, whatever happened inside (cancellation included)."""
    record = record or FaultRecord(fault.name, fault.kind)
    try:
        try:
            await fault.inject()
        except Exception as exc:  # a fault that did not happen must not pass unnoticed
            record.error = f"inject failed: {exc.__class__.__name__}: {exc}"
            raise
        record.injected_at = _now()
        yield record
    finally:
        try:
            await asyncio.shield(fault.revert())
            record.reverted_at = _now()
        except Exception as exc:  # the report must say a revert failed, never hide it
            record.error = f"revert failed: {exc.__class__.__name__}: {exc}"
            raise


@dataclass
class Toxic:
    toxiproxy_api: str
    link: str
    type: ToxicType
    attributes: Mapping[str, float] = field(default_factory=dict)
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = 1.0
    name: str = ""
    kind: str = "toxic"

    def __post_init__(self) -> None:
        self.name = self.name or f"{self.type} on {self.link}"
        self._toxic = f"gameday-{self.type}-{self.stream}"

    async def inject(self) -> None:
        # Toxiproxy's attributes are integers (milliseconds, KB/s, bytes).
        attributes = {k: int(v) if float(v).is_integer() else v for k, v in self.attributes.items()}
        async with Toxiproxy(self.toxiproxy_api) as tp:
            await tp.add_toxic(
                self.link,
                self.type,
                name=self._toxic,
                stream=self.stream,
                toxicity=self.toxicity,
                **attributes,
            )

    async def revert(self) -> None:
        async with Toxiproxy(self.toxiproxy_api) as tp:
            proxy = await tp.proxy(self.link)
            if any(t.name == self._toxic for t in proxy.toxics):
                await tp.remove_toxic(self.link, self._toxic)


@dataclass
class LinkDown:
    toxiproxy_api: str
    link: str
    name: str = ""
    kind: str = "link_down"

    def __post_init__(self) -> None:
        self.name = self.name or f"{self.link} down"

    async def inject(self) -> None:
        async with Toxiproxy(self.toxiproxy_api) as tp:
            await tp.set_enabled(self.link, enabled=False)

    async def revert(self) -> None:
        async with Toxiproxy(self.toxiproxy_api) as tp:
            await tp.set_enabled(self.link, enabled=True)


async def master_address(sentinels: list[str], master_name: str) -> str:
    for address in sentinels:
        host, port = address.rsplit(":", 1)
        client = aioredis.Redis(
            host=host, port=int(port), socket_timeout=1.0, decode_responses=True
        )
        try:
            answer = await client.sentinel_get_master_addr_by_name(master_name)
        except (aioredis.RedisError, OSError):
            continue
        finally:
            await client.aclose()
        if isinstance(answer, tuple | list) and answer:
            host = answer[0].decode() if isinstance(answer[0], bytes) else str(answer[0])
            return f"{host}:{int(answer[1])}"
    raise RuntimeError(f"no Sentinel names a master for {master_name}")


@dataclass
class RedisFailover:
    """`SENTINEL FAILOVER`: the replica is promoted, the old master becomes its replica.

    `moved_to` is the new master once the switch is visible to every Sentinel.
    """

    sentinels: list[str]
    master_name: str = "scores"
    timeout_s: float = 15.0
    name: str = "redis failover"
    kind: str = "redis_failover"
    moved_from: str | None = None
    moved_to: str | None = None

    async def inject(self) -> None:
        self.moved_from = await master_address(self.sentinels, self.master_name)
        host, port = self.sentinels[0].rsplit(":", 1)
        client = aioredis.Redis(host=host, port=int(port), decode_responses=True)
        try:
            await client.execute_command("SENTINEL", "FAILOVER", self.master_name)  # type: ignore[no-untyped-call]
        finally:
            await client.aclose()
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        while True:
            answers = {await master_address([s], self.master_name) for s in self.sentinels}
            if len(answers) == 1 and self.moved_from not in answers:
                self.moved_to = answers.pop()
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(
                    f"Sentinels did not agree on a new master in "
                    f"{self.timeout_s:.0f}s: {sorted(answers)}"
                )
            await asyncio.sleep(0.1)

    async def revert(self) -> None:
        """Nothing to undo: the old master is a replica now, which is a healthy cluster."""


@dataclass
class FeedSilent:
    feed_control: str
    admin_token_file: Path
    name: str = "primary vendor silent"
    kind: str = "feed_silent"

    async def _mode(self, mode: str) -> None:
        token = self.admin_token_file.read_text().strip()
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.post(
                f"{self.feed_control}/v1/feed/primary",
                json={"mode": mode},
                headers={"Authorization": f"Bearer {token}"},
            )
        answer.raise_for_status()

    async def inject(self) -> None:
        await self._mode("silent")

    async def revert(self) -> None:
        await self._mode("normal")


@dataclass
class FeedStutter:
    """While injected, the match being played is re-sent and reordered by its vendor."""

    stutter: Stutter
    name: str = ""
    kind: str = "feed_duplicates"

    def __post_init__(self) -> None:
        self.name = self.name or (
            f"primary vendor re-sends {self.stutter.duplicate_ratio:.0%} "
            f"and reorders {self.stutter.swap_ratio:.0%}"
        )

    async def inject(self) -> None:
        self.stutter.active = True

    async def revert(self) -> None:
        self.stutter.active = False


@dataclass
class BadCanary:
    """A build that fails `error_ratio` of requests and cuts streams after `cut_after_s`,
    deployed to the canary edge (a restart, as a deploy is); the good build on revert."""

    deployment: Deployment
    error_ratio: float = 0.5
    cut_after_s: float = 3.0
    name: str = ""
    kind: str = "bad_canary"

    def __post_init__(self) -> None:
        self.name = self.name or f"bad canary build ({self.error_ratio:.0%} errors)"

    async def inject(self) -> None:
        await self.deployment.configure(
            {
                "edge-canary.defect_error_ratio": self.error_ratio,
                "edge-canary.defect_stream_cut_s": self.cut_after_s,
            }
        )

    async def revert(self) -> None:
        await self.deployment.configure(
            {"edge-canary.defect_error_ratio": None, "edge-canary.defect_stream_cut_s": None}
        )


@dataclass
class ServiceDown:
    """A process of the stack killed (or paused, frozen in place), started on revert."""

    deployment: Deployment
    service: str
    pause: bool = False
    name: str = ""
    kind: str = "service_down"

    def __post_init__(self) -> None:
        self.name = self.name or f"{self.service} {'paused' if self.pause else 'killed'}"

    async def inject(self) -> None:
        if self.pause:
            await self.deployment.pause(self.service)
        else:
            await self.deployment.kill(self.service)

    async def revert(self) -> None:
        if self.pause:
            await self.deployment.resume(self.service)
        else:
            await self.deployment.start(self.service)
