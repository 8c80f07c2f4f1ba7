"""The compose target: the same stack as containers, from compose.yaml in the repo root.

`ComposeDeployment` offers what `LocalDeployment` offers (the `Deployment` protocol plus
`load_rules`, `ports`, `run_dir`), so drills run unchanged on either target.

- `up()` on a stopped run directory writes every config, the admin token and Grafana's
  admin password (files of mode 0600 that compose.yaml mounts as secrets), picks free
  host ports and runs `docker compose up --wait` with them in `RUN/compose.env`; on a
  running project it restarts the pipeline services whose settings changed, and
  `compose up --wait` starts again whatever was killed.
- `down()` is `docker compose down --volumes`: the next `up` is a fresh stack, as locally.
- Process faults go to the service's container through the Docker Engine API
  (`engine.Engine`): kill (SIGKILL), pause (cgroup freezer), unpause, start.

Inside the compose network each service listens on a fixed port (`composefiles`), and
`ports` are those, so that a port Sentinel names maps to its Redis node as locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from pipeline import env
from pipeline.corrections.auth import make_tokens_file
from pipeline.deploy import composefiles, configs, health, rundir
from pipeline.deploy.base import ServiceStatus, StackStatus
from pipeline.deploy.components import write_file
from pipeline.deploy.engine import ContainerState, Engine
from pipeline.deploy.errors import ComponentFailed, DeployError, StackNotRunning, ToolMissing
from pipeline.deploy.ports import free_ports
from pipeline.deploy.process import log_tail
from pipeline.deploy.prometheus import load_rules
from pipeline.deploy.services import CORRECTIONS_TOKENS, PipelineLayout
from pipeline.deploy.toxiproxy import Toxiproxy, missing_proxies
from pipeline.model import format_time
from pipeline.topology import REDIS_MASTER_NAME, REDIS_NODES, SCORE_TOPIC, SENTINELS

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
COMPOSE_FILE: Final = REPO_ROOT / "compose.yaml"
SENTINEL_DOWN_AFTER_MS: Final = 1000
SENTINEL_FAILOVER_TIMEOUT_MS: Final = 4000
SECRETS: Final = ("admin-token", "grafana-admin-password")
"""Made at a fresh `up`, mode 0600, with the corrections service's tokens file;
compose.yaml mounts them as secrets."""
INFRASTRUCTURE: Final = (
    "kafka",
    *REDIS_NODES,
    *SENTINELS,
    "toxiproxy",
    "prometheus",
    "alertmanager",
)
"""The same components as the local stack's infrastructure."""
EXTRAS: Final = ("grafana", "jaeger")
"""Only compose runs these (Grafana cannot be installed on the local stack's machines)."""
ONE_SHOT: Final = ("kafka-init",)
"""Containers that do their job and exit 0 (creating the topics)."""
BIND_DIRS: Final = (
    "logs",
    "pipeline",
    "traces",
    "audit",
    *REDIS_NODES,
    *SENTINELS,
    "kafka",
    "prometheus/rules",
    "prometheus/data",
    "alertmanager/data",
    "grafana/dashboards",
    "grafana/data",
)
"""Run-directory folders compose.yaml mounts; made before `up` so that Docker does not
make them (as root)."""

Progress = Callable[[str, str], None]
ComposeRunner = Callable[[Sequence[str], Path], Awaitable[int]]
"""Runs a `docker compose` command line, its output appended to the log path; returns the
exit code."""


def _now() -> str:
    return format_time(datetime.now(UTC))


def project_name(run_dir: Path) -> str:
    """One compose project per run directory: 'gameday-' and a digest of its path."""
    return "gameday-" + hashlib.sha256(str(run_dir).encode()).hexdigest()[:8]


async def run_command(argv: Sequence[str], log_path: Path) -> int:
    """Run `argv`, its output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise ToolMissing(
                f"{argv[0]} is not installed: the compose target needs Docker"
            ) from None
        return await process.wait()


def published_ports() -> dict[str, tuple[str, int]]:
    """Host port name -> (compose service, container port) for every port compose.yaml
    publishes on 127.0.0.1 (Kafka's is its external listener)."""
    ports, owners = composefiles.container_ports(), composefiles.owners()
    out: dict[str, tuple[str, int]] = {}
    for name in composefiles.HOST_PORT_NAMES:
        port = ports["kafka-external" if name == "kafka" else name]
        out[name] = (owners[port], port)
    return out


class ComposeDeployment:
    target = "compose"

    def __init__(
        self,
        *,
        run_dir: Path | None = None,
        project: str | None = None,
        compose_file: Path = COMPOSE_FILE,
        engine: Engine | None = None,
        runner: ComposeRunner = run_command,
        docker: str = "docker",
        startup_timeout_s: float | None = None,
        keep_on_failure: bool = False,
        time_scale: float = 1.0,
        settings: Mapping[str, Any] | None = None,
        poll_s: float = 0.5,
    ) -> None:
        if not time_scale > 0:
            raise ValueError(f"time scale must be positive, got {time_scale}")
        self.settings = None if settings is None else dict(settings)
        if self.settings:
            PipelineLayout.check_settings(self.settings)
        self.run_dir = (run_dir or env.run_dir()).resolve()
        self._state: dict[str, Any] = self._read_state()
        self.project: str = (
            project
            or (engine.project if engine is not None else None)
            or self._state.get("project")
            or project_name(self.run_dir)
        )
        """The compose project: the state's, or one per run directory."""
        self.compose_file = compose_file
        self.engine = engine or Engine(self.project)
        self._runner = runner
        self._docker = docker
        self.startup_timeout_s = startup_timeout_s or env.startup_timeout_s()
        self.keep_on_failure = keep_on_failure
        self.time_scale = time_scale
        self.poll_s = poll_s

    # --- state --------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.run_dir / "state.json"

    @property
    def env_file(self) -> Path:
        return self.run_dir / "compose.env"

    @property
    def dashboards_dir(self) -> Path:
        """Where Grafana's file provider reads dashboards (`gameday up` builds them there)."""
        return self.run_dir / "grafana" / "dashboards"

    def _read_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise DeployError(f"{self.state_path} is corrupt ({exc}); remove it") from None
        return state if state.get("target") == self.target else {}

    def _write_state(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=2))
        tmp.replace(self.state_path)

    @property
    def host_ports(self) -> dict[str, int]:
        """Ports published on 127.0.0.1, by the local stack's port names."""
        ports: dict[str, int] = self._state.get("host_ports", {})
        return ports

    @property
    def ports(self) -> dict[str, int]:
        """Ports inside the compose network (each service its own): what Sentinel and the
        pipeline's configs name. The host's are in `endpoints()`."""
        return composefiles.container_ports()

    @property
    def stack_time_scale(self) -> float:
        return float(self._state.get("time_scale", self.time_scale))

    @property
    def stack_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = self._state.get("settings", {})
        return settings

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with rundir.locked(self.run_dir):
            self._state = self._read_state()
            yield

    # --- files --------------------------------------------------------------------------

    def _fresh_layout(self) -> None:
        """Empty the run directory; choose host ports; write secrets and configs."""
        rundir.empty(self.run_dir)
        for relative in BIND_DIRS:
            (self.run_dir / relative).mkdir(parents=True, exist_ok=True)
        self._state = {
            "target": self.target,
            "project": self.project,
            "compose_file": str(self.compose_file),
            "created_at": _now(),
            "kafka_cluster_id": configs.kafka_cluster_id(),
            "time_scale": self.time_scale,
            "settings": self.settings or {},
            "host_ports": free_ports([*composefiles.HOST_PORT_NAMES, "drill-metrics"]),
        }
        for name in SECRETS:
            fd = os.open(self.run_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
        make_tokens_file(self.run_dir / CORRECTIONS_TOKENS)
        self._write_configs()
        self._write_state()

    def _write_configs(self) -> None:
        def write(relative: str, text: str) -> None:
            write_file(self.run_dir, relative, text)

        self._write_pipeline_configs(self.stack_settings)
        primary = REDIS_NODES[0]
        for node in REDIS_NODES:
            replica_of = None if node == primary else primary
            write(f"{node}/redis.conf", composefiles.redis_conf(node, replica_of=replica_of))
        for name in SENTINELS:
            conf = composefiles.sentinel_conf(
                name,
                down_after_ms=SENTINEL_DOWN_AFTER_MS,
                failover_timeout_ms=SENTINEL_FAILOVER_TIMEOUT_MS,
            )
            write(f"{name}/sentinel.conf", conf)
        write("kafka/jmx-exporter.yml", configs.JMX_EXPORTER)
        drill_port = self.host_ports["drill-metrics"]
        write("prometheus/prometheus.yml", composefiles.prometheus_yml(drill_port))
        write("alertmanager/alertmanager.yml", composefiles.alertmanager_yml())
        write(
            "compose.env",
            composefiles.compose_env(
                run_dir=self.run_dir,
                host_ports=self.host_ports,
                kafka_cluster_id=self._state["kafka_cluster_id"],
                uid=os.getuid(),
                gid=os.getgid(),
                tracing="on" if env.tracing_enabled() else "off",
                otlp_endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
            ),
        )

    def _pipeline_configs(self, settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        return composefiles.pipeline_configs(time_scale=self.stack_time_scale, settings=settings)

    def _write_pipeline_configs(self, settings: Mapping[str, Any]) -> None:
        for name, config in self._pipeline_configs(settings).items():
            write_file(self.run_dir, f"pipeline/{name}.json", json.dumps(config, indent=2))

    # --- docker compose -----------------------------------------------------------------

    def compose_argv(self, *args: str) -> list[str]:
        return [
            self._docker,
            "compose",
            "--project-name",
            self.project,
            "--project-directory",
            str(self.compose_file.parent),
            "--file",
            str(self.compose_file),
            "--env-file",
            str(self.env_file),
            *args,
        ]

    async def _compose(self, *args: str) -> tuple[int, Path]:
        log_path = self.run_dir / "logs" / f"compose-{args[0]}.log"
        code = await self._runner(self.compose_argv(*args), log_path)
        return code, log_path

    async def _check_compose(self) -> None:
        code = await self._runner(
            [self._docker, "compose", "version"], self.run_dir / "logs" / "compose-version.log"
        )
        if code != 0:
            raise ToolMissing(
                "`docker compose` (the Compose v2 plugin) is not installed; see docs/docker.md"
            )

    # --- lifecycle ----------------------------------------------------------------------

    def services(self) -> list[str]:
        """Every long-running service of the stack: the local stack's components (the
        same names) and Grafana and Jaeger."""
        pipeline = [c.name for c in composefiles.pipeline_layout().components()]
        return [*INFRASTRUCTURE, *pipeline, *EXTRAS]

    def has_running_containers(self) -> bool:
        """Whether any container of the project runs (blocking: asks the engine)."""
        if not self._state.get("host_ports"):
            return False
        states = self.engine.states()
        return any(s.status in ("running", "paused", "restarting") for s in states.values())

    async def up(self, progress: Progress | None = None) -> StackStatus:
        report = progress or (lambda _name, _what: None)
        with self._locked():
            running = await asyncio.to_thread(self.has_running_containers)
            if not running:
                self._fresh_layout()
                try:
                    await self._check_compose()
                except ToolMissing:
                    self._mark_stopped()  # nothing started: `down` has nothing to do
                    raise
                report("stack", f"fresh start of compose project {self.project} in {self.run_dir}")
            elif self.stack_time_scale != self.time_scale:
                report(
                    "stack",
                    f"already running at time scale {self.stack_time_scale:g}; "
                    f"`gameday down` first to start it at {self.time_scale:g}",
                )
            if running and self.settings is not None and self.settings != self.stack_settings:
                await self._settle(self.settings, report)
            report("compose", "docker compose up --wait (builds the images on first use)")
            started = time.monotonic()
            timeout = str(int(self.startup_timeout_s))
            code, log_path = await self._compose(
                "up", "--detach", "--build", "--wait", "--wait-timeout", timeout
            )
            if code != 0:
                if not running and not self.keep_on_failure:
                    report("stack", "stopping what was started")
                    await self._compose("down", "--volumes", "--remove-orphans")
                    self._mark_stopped()
                raise ComponentFailed(
                    "docker compose", f"up exited with {code}", log_tail(log_path)
                )
            await self._ensure_links()
            report("compose", f"every service healthy in {time.monotonic() - started:.1f}s")
        return await self.status()

    async def down(self) -> list[str]:
        """Remove the project's containers, network and volumes; the run directory (logs,
        traces, audit) stays. Compose stops each container with SIGTERM, then SIGKILL."""
        with self._locked():
            if not self._state.get("host_ports") or self._state.get("stopped_at"):
                return []
            await self._check_compose()
            code, log_path = await self._compose(
                "down", "--volumes", "--remove-orphans", "--timeout", "10"
            )
            if code != 0:
                raise DeployError(f"docker compose down exited with {code}:\n{log_tail(log_path)}")
            self._mark_stopped()
        return []

    def _mark_stopped(self) -> None:
        self._state["stopped_at"] = _now()
        self._write_state()

    async def _settle(self, new: Mapping[str, Any], report: Progress) -> list[str]:
        before = self._pipeline_configs(self.stack_settings)
        after = self._pipeline_configs(new)  # SettingError: nothing changes
        self._state["settings"] = dict(new)
        self._write_state()
        self._write_pipeline_configs(new)
        changed = [name for name, config in after.items() if config != before.get(name)]
        for name in changed:
            report(name, "restarting with the new settings")
            await asyncio.to_thread(self.engine.restart, name)
        for name in changed:
            await self._wait_healthy(name)
        return changed

    async def configure(self, changes: Mapping[str, Any]) -> list[str]:
        """Change some settings of the running stack (None removes one); restart the
        containers they touch, wait until healthy; return those services."""
        with self._locked():
            if not self._state.get("host_ports") or self._state.get("stopped_at"):
                raise StackNotRunning(f"no compose stack running in {self.run_dir}")
            merged = {**self.stack_settings, **changes}
            merged = {k: v for k, v in merged.items() if v is not None}
            return await self._settle(merged, lambda _n, _w: None)

    async def _wait_healthy(self, service: str) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            state = await asyncio.to_thread(self.engine.state, service)
            if state.healthy:
                return
            if state.status in ("exited", "dead", "removed"):
                raise ComponentFailed(service, state.problem or state.status)
            if time.monotonic() > deadline:
                raise ComponentFailed(
                    service, f"not healthy after {self.startup_timeout_s:.0f}s: {state.problem}"
                )
            await asyncio.sleep(self.poll_s)

    # --- what is running ----------------------------------------------------------------

    def _service_urls(self) -> dict[str, str]:
        hp = self.host_ports
        urls = {
            "kafka": f"kafka://127.0.0.1:{hp['kafka']}",
            **{n: f"redis://{n}:{self.ports[n]} (compose network)" for n in REDIS_NODES},
            **{n: f"redis://127.0.0.1:{hp[n]}" for n in SENTINELS},
            **{
                n: f"http://127.0.0.1:{hp[n]}"
                for n in ("toxiproxy", "prometheus", "alertmanager", *EXTRAS)
            },
        }
        urls |= {c.name: c.url for c in PipelineLayout(hp, self.run_dir).components()}
        return urls

    async def status(self) -> StackStatus:
        if not self._state.get("host_ports"):
            return StackStatus(target=self.target, healthy=False)
        states = await asyncio.to_thread(self.engine.states)
        urls = self._service_urls()
        services = {
            name: self._service_status(name, states.get(name), urls[name])
            for name in self.services()
        }
        toxiproxy = services["toxiproxy"]
        if toxiproxy.healthy and (missing := await self._check_links()) is not None:
            services["toxiproxy"] = ServiceStatus(False, toxiproxy.pid, toxiproxy.url, missing)
        return StackStatus(
            target=self.target,
            healthy=all(s.healthy for s in services.values()),
            services=services,
            endpoints=self.endpoints(),
        )

    def _service_status(self, name: str, state: ContainerState | None, url: str) -> ServiceStatus:
        if state is None:
            return ServiceStatus(False, None, url, "no container (`gameday up --target compose`)")
        if not state.healthy:
            return ServiceStatus(False, state.pid, url, state.problem)
        wanted = {
            port: self.host_ports[port_name]
            for port_name, (service, port) in published_ports().items()
            if service == name
        }
        wrong = {p: h for p, h in wanted.items() if state.published.get(p) != h}
        if wrong:
            detail = ", ".join(f"{p} -> 127.0.0.1:{h}" for p, h in sorted(wrong.items()))
            return ServiceStatus(
                False, state.pid, url, f"not published as compose.env says: {detail}"
            )
        return ServiceStatus(True, state.pid, url)

    def endpoints(self) -> dict[str, Any]:
        hp = self.host_ports
        if not hp:
            raise StackNotRunning(f"no stack in {self.run_dir}: run `gameday up --target compose`")
        owners = composefiles.owners()
        return {
            "kafka_bootstrap": f"127.0.0.1:{hp['kafka']}",
            "kafka_topic": SCORE_TOPIC,
            "redis_sentinels": [f"127.0.0.1:{hp[name]}" for name in SENTINELS],
            "redis_master_name": REDIS_MASTER_NAME,
            "toxiproxy_api": f"http://127.0.0.1:{hp['toxiproxy']}",
            "prometheus": f"http://127.0.0.1:{hp['prometheus']}",
            "alertmanager": f"http://127.0.0.1:{hp['alertmanager']}",
            "admin_token_file": str(self.run_dir / "admin-token"),
            "drill_metrics": f"127.0.0.1:{hp['drill-metrics']}",
            **PipelineLayout(hp, self.run_dir).endpoints(),
            "grafana": f"http://127.0.0.1:{hp['grafana']}",
            "jaeger": f"http://127.0.0.1:{hp['jaeger']}",
            "links": {
                link.name: {
                    "listen": f"toxiproxy:{link.listen_port}",
                    "upstream": f"{owners[link.upstream_port]}:{link.upstream_port}",
                }
                for link in composefiles.links()
            },
        }

    async def _ensure_links(self) -> None:
        async with Toxiproxy(self.endpoints()["toxiproxy_api"]) as tp:
            for proxy in composefiles.proxies():
                await tp.ensure_proxy(
                    proxy["name"], listen=proxy["listen"], upstream=proxy["upstream"]
                )

    async def _check_links(self) -> str | None:
        url = self.endpoints()["toxiproxy_api"]
        return await missing_proxies(url, [link.name for link in composefiles.links()])

    async def load_rules(self, files: Mapping[str, str]) -> list[str]:
        """Give Prometheus these rule files (name -> YAML) and reload it; returns the rule
        groups Prometheus then has. compose.yaml mounts the folder they are written to."""
        rules_dir = self.run_dir / "prometheus" / "rules"
        return await load_rules(rules_dir, self.endpoints()["prometheus"], files)

    # --- process faults -----------------------------------------------------------------

    def _known(self, service: str) -> None:
        if service not in self.services():
            raise DeployError(
                f"no service {service!r}; known: {', '.join(sorted(self.services()))}"
            )

    async def kill(self, service: str) -> None:
        self._known(service)
        await asyncio.to_thread(self.engine.kill, service)

    async def pause(self, service: str) -> None:
        self._known(service)
        await asyncio.to_thread(self.engine.pause, service)

    async def resume(self, service: str) -> None:
        self._known(service)
        await asyncio.to_thread(self.engine.unpause, service)

    async def start(self, service: str) -> None:
        """Start the service's container again (a Redis server as a replica of the master
        Sentinel names, as locally) and wait until its healthcheck passes."""
        self._known(service)
        with self._locked():
            state = await asyncio.to_thread(self.engine.state, service)
            if state.status in ("running", "paused", "restarting"):
                return
            if service in REDIS_NODES:
                await asyncio.to_thread(self._rejoin_as_replica, service)
            await asyncio.to_thread(self.engine.start, service)
            await self._wait_healthy(service)
            if service == "toxiproxy":
                await self._ensure_links()

    def _rejoin_as_replica(self, node: str) -> None:
        sentinels = [self.host_ports[s] for s in SENTINELS]
        master_port = health.sentinel_master_port(sentinels, REDIS_MASTER_NAME)
        master = next((n for n in REDIS_NODES if self.ports[n] == master_port), None)
        if master is None or master == node:
            return
        write_file(
            self.run_dir, f"{node}/redis.conf", composefiles.redis_conf(node, replica_of=master)
        )
