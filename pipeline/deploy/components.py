"""What the local target is made of: components (processes with health checks) and links."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Link:
    """A connection chaos can degrade: a Toxiproxy proxy from `listen` to `upstream`."""

    name: str
    listen_port: int
    upstream_port: int


@dataclass(frozen=True, kw_only=True)
class Component:
    name: str
    argv: tuple[str, ...]
    url: str
    check: Callable[[], Awaitable[str | None]]
    ensure: Callable[[], Awaitable[None]] | None = None
    """Idempotent provisioning run while waiting for health (a topic, proxies)."""
    prepare: Callable[[Path], None] | None = None
    """A blocking step before the first start, given the component's log path."""
    metrics: str | None = None
    """'host:port' serving Prometheus metrics at /metrics, if any."""


def bind(
    probe: Callable[..., Awaitable[str | None]], *args: Any, **kwargs: Any
) -> Callable[[], Awaitable[str | None]]:
    """A zero-argument check from a probe and its arguments."""

    async def check() -> str | None:
        return await probe(*args, **kwargs)

    return check


def write_file(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
