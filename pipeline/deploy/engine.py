"""The compose project's containers, through the Docker Engine API (the docker SDK).

`docker compose` labels every container it makes with its project and service, so a
service's container is found by those labels, never by a container name. Blocking
calls: `ComposeDeployment` runs them in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import docker
import docker.errors
import requests.exceptions

from pipeline.deploy.errors import DeployError

UNREACHABLE: Final = (docker.errors.DockerException, requests.exceptions.ConnectionError)
"""What the SDK raises when there is no engine to talk to (the connection is made lazily)."""
API_VERSION: Final = "1.45"
"""Docker Engine 26 and later speak it; pinned so that no call asks the engine first."""
PROJECT_LABEL: Final = "com.docker.compose.project"
SERVICE_LABEL: Final = "com.docker.compose.service"
ONEOFF_LABEL: Final = "com.docker.compose.oneoff"


@dataclass(frozen=True)
class ContainerState:
    """What the engine says about one service's container."""

    service: str
    status: str
    """created, running, paused, restarting, removing, exited or dead."""
    health: str | None
    """starting, healthy or unhealthy; None without a healthcheck."""
    pid: int | None
    exit_code: int | None
    published: dict[int, int] = field(default_factory=dict)
    """Container port -> host port, for the TCP ports published on the host."""

    @property
    def healthy(self) -> bool:
        return self.status == "running" and self.health in (None, "healthy")

    @property
    def problem(self) -> str | None:
        """Why the service is not healthy; None when it is."""
        if self.status != "running":
            code = f" (exit code {self.exit_code})" if self.status == "exited" else ""
            return f"container is {self.status}{code}"
        if self.health not in (None, "healthy"):
            return f"healthcheck: {self.health}"
        return None


def state_of(service: str, inspected: dict[str, Any]) -> ContainerState:
    """A ContainerState from `GET /containers/{id}/json` (ContainerInspectResponse)."""
    state = inspected.get("State") or {}
    health = state.get("Health") or {}
    published: dict[int, int] = {}
    for key, bindings in ((inspected.get("NetworkSettings") or {}).get("Ports") or {}).items():
        port, _, proto = key.partition("/")
        if proto == "tcp" and bindings:
            published[int(port)] = int(bindings[0]["HostPort"])
    return ContainerState(
        service=service,
        status=str(state.get("Status", "unknown")),
        health=health.get("Status") or None,
        pid=state.get("Pid") or None,
        exit_code=state.get("ExitCode"),
        published=published,
    )


class Engine:
    """One compose project's containers. `client` defaults to the engine the environment
    names (DOCKER_HOST, else the local socket)."""

    def __init__(self, project: str, *, client: docker.DockerClient | None = None) -> None:
        self.project = project
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = docker.from_env(version=API_VERSION, timeout=30)
            except docker.errors.DockerException as exc:
                raise DeployError(
                    f"cannot reach a Docker engine ({exc}); start one, or set DOCKER_HOST"
                ) from None
        return self._client

    def containers(self) -> dict[str, str]:
        """Service name -> its container's id (one-off `compose run` containers left out)."""
        try:
            found = self.client.api.containers(
                all=True, filters={"label": [f"{PROJECT_LABEL}={self.project}"]}
            )
        except UNREACHABLE as exc:
            raise DeployError(
                f"cannot reach the Docker engine ({exc.__class__.__name__}: {exc}); "
                "start it, or set DOCKER_HOST"
            ) from None
        out: dict[str, str] = {}
        for summary in found:
            labels = summary.get("Labels") or {}
            if SERVICE_LABEL in labels and labels.get(ONEOFF_LABEL) != "True":
                out[labels[SERVICE_LABEL]] = str(summary["Id"])
        return out

    def container(self, service: str) -> str:
        """The id of `service`'s container."""
        containers = self.containers()
        if service not in containers:
            known = ", ".join(sorted(containers)) or "none"
            raise DeployError(
                f"no service {service!r} in compose project {self.project} (containers: {known})"
            )
        return containers[service]

    def state(self, service: str, container_id: str | None = None) -> ContainerState:
        container_id = container_id or self.container(service)
        try:
            inspected: dict[str, Any] = self.client.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return ContainerState(service, "removed", None, None, None)
        except UNREACHABLE as exc:
            raise DeployError(f"Docker engine: inspecting {service}: {exc}") from None
        return state_of(service, inspected)

    def states(self) -> dict[str, ContainerState]:
        return {name: self.state(name, cid) for name, cid in self.containers().items()}

    def _act(self, service: str, what: str, **kwargs: Any) -> None:
        container_id = self.container(service)
        try:
            getattr(self.client.api, what)(container_id, **kwargs)
        except docker.errors.APIError as exc:
            reason = exc.explanation or str(exc)
            raise DeployError(f"Docker engine: {what} {service}: {reason}") from None
        except UNREACHABLE as exc:
            raise DeployError(f"Docker engine: {what} {service}: {exc}") from None

    def kill(self, service: str) -> None:
        """SIGKILL the container's processes; it stays down (no restart policy)."""
        self._act(service, "kill")

    def pause(self, service: str) -> None:
        """Freeze every process of the container (cgroup freezer)."""
        self._act(service, "pause")

    def unpause(self, service: str) -> None:
        self._act(service, "unpause")

    def start(self, service: str) -> None:
        self._act(service, "start")

    def restart(self, service: str, *, timeout_s: int = 10) -> None:
        self._act(service, "restart", timeout=timeout_s)
