"""What every deployment target offers the harness: the `Deployment` protocol and its status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ServiceStatus:
    healthy: bool
    pid: int | None
    url: str
    detail: str | None = None
    """Why the service is not healthy; None when it is."""


@dataclass(frozen=True)
class StackStatus:
    target: str
    healthy: bool
    services: dict[str, ServiceStatus] = field(default_factory=dict)
    endpoints: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The shape `gameday status --json` prints (DESIGN.md)."""
        return asdict(self)


class Deployment(Protocol):
    """A running copy of the pipeline and its infrastructure, seen from the outside."""

    target: str

    async def up(self) -> StackStatus: ...

    async def down(self) -> list[str]:
        """Stop everything; returns the services that had to be killed."""

    async def status(self) -> StackStatus: ...

    def endpoints(self) -> dict[str, Any]: ...

    async def kill(self, service: str) -> None:
        """Kill the service at once (SIGKILL or the target's equivalent); it stays down."""

    async def pause(self, service: str) -> None:
        """Freeze the service (it keeps its connections but answers nothing)."""

    async def resume(self, service: str) -> None: ...

    async def start(self, service: str) -> None:
        """Start a stopped service again and wait until it is healthy."""

    async def configure(self, changes: Mapping[str, Any]) -> list[str]:
        """Change pipeline settings (`SERVICE.FIELD` -> value; None puts the default back)
        and redeploy the services they touch; returns those services."""
