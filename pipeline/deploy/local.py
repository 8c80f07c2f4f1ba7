"""The local target: every component is a real process on this machine, bound to 127.0.0.1.

`LocalDeployment` starts Kafka (KRaft), Redis with a replica and three Sentinels, the
Toxiproxy server with one proxy per link that chaos can cut, Prometheus and Alertmanager,
each in the run directory with its own config, data and log file. What it started is
written to `state.json` there, so `gameday down` in another process stops exactly those
processes, by PID.

- `up()` on a new or stopped run directory starts a fresh stack on free ports; on a
  running one it restarts only what has died, with the same ports, restarts the
  pipeline services whose settings (`gameday up --set`) changed, and then waits
  until every component is healthy. When a component fails, everything it started is
  stopped again (unless `keep_on_failure`) and `ComponentFailed` names it.
- `down()` stops every recorded process group, crashed or not, and keeps the logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import env
from pipeline.corrections.auth import make_tokens_file
from pipeline.deploy import configs, health, rundir
from pipeline.deploy.base import ServiceStatus, StackStatus
from pipeline.deploy.components import Component, Link, bind, write_file
from pipeline.deploy.errors import ComponentFailed, DeployError, StackNotRunning
from pipeline.deploy.ports import free_ports
from pipeline.deploy.process import (
    ProcessRef,
    exit_code,
    kill_group,
    log_tail,
    signal_group,
    spawn,
    stop_all,
)
from pipeline.deploy.prometheus import load_rules
from pipeline.deploy.services import CORRECTIONS_TOKENS, PipelineLayout, link_port_names
from pipeline.deploy.services import PORTS as PIPELINE_PORTS
from pipeline.deploy.services import links as all_links
from pipeline.deploy.tools import Tools
from pipeline.deploy.toxiproxy import Toxiproxy, missing_proxies
from pipeline.model import format_time
from pipeline.topology import (
    FEED_TOPIC,
    REDIS_MASTER_NAME,
    REDIS_NODES,
    SCORE_TOPIC,
    SCORE_TOPIC_PARTITIONS,
    SENTINELS,
)

SENTINEL_DOWN_AFTER_MS = 1000
SENTINEL_FAILOVER_TIMEOUT_MS = 4000

Progress = Callable[[str, str], None]
"""Called with (component, what happened), e.g. ("kafka", "healthy in 3.1s")."""


def _now() -> str:
    return format_time(datetime.now(UTC))


class LocalDeployment:
    target = "local"

    def __init__(
        self,
        *,
        run_dir: Path | None = None,
        tools: Tools | None = None,
        startup_timeout_s: float | None = None,
        keep_on_failure: bool = False,
        time_scale: float = 1.0,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        if not time_scale > 0:
            raise ValueError(f"time scale must be positive, got {time_scale}")
        self.settings = None if settings is None else dict(settings)
        """What the next `up` converges the pipeline to; None keeps the stack's own."""
        if self.settings:
            PipelineLayout.check_settings(self.settings)
        self.run_dir = (run_dir or env.run_dir()).resolve()
        self._tools = tools
        self.startup_timeout_s = startup_timeout_s or env.startup_timeout_s()
        self.keep_on_failure = keep_on_failure
        self.time_scale = time_scale
        """Used by the next fresh `up`; a running stack keeps the scale it started with."""
        self._state: dict[str, Any] = self._read_state()
        self._kafka_probe: health.KafkaProbe | None = None

    # --- state --------------------------------------------------------------------------

    @property
    def tools(self) -> Tools:
        if self._tools is None:
            self._tools = Tools.load()
        return self._tools

    @property
    def state_path(self) -> Path:
        return self.run_dir / "state.json"

    def _read_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise DeployError(
                f"{self.state_path} is corrupt ({exc}); stop the stack by hand and remove it"
            ) from None
        return state

    def _write_state(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=2))
        tmp.replace(self.state_path)

    @property
    def ports(self) -> dict[str, int]:
        ports: dict[str, int] = self._state.get("ports", {})
        return ports

    def _refs(self) -> dict[str, ProcessRef]:
        return {
            name: ProcessRef(p["pid"], p["start_ticks"])
            for name, p in self._state.get("processes", {}).items()
        }

    def running(self) -> dict[str, ProcessRef]:
        return {name: ref for name, ref in self._refs().items() if ref.alive()}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with rundir.locked(self.run_dir):
            self._state = self._read_state()
            yield

    # --- layout -------------------------------------------------------------------------

    def links(self) -> list[Link]:
        """Every link through Toxiproxy (vendors to their readers, edges to Redis)."""
        return all_links(self.ports)

    @property
    def pipeline(self) -> PipelineLayout:
        return PipelineLayout(
            self.ports,
            self.run_dir,
            float(self._state.get("time_scale", self.time_scale)),
            self._state.get("settings", {}),
        )

    def _fresh_layout(self) -> None:
        """Empty the run directory and choose ports, a cluster id and an admin token."""
        rundir.empty(self.run_dir)
        (self.run_dir / "logs").mkdir()
        names = [
            "kafka",
            "kafka-controller",
            "kafka-metrics",
            *REDIS_NODES,
            *SENTINELS,
            "toxiproxy",
            "prometheus",
            "alertmanager",
            "drill-metrics",
            *PIPELINE_PORTS,
            *link_port_names(),
        ]
        self._state = {
            "target": self.target,
            "created_at": _now(),
            "kafka_cluster_id": configs.kafka_cluster_id(),
            "time_scale": self.time_scale,
            "settings": self.settings or {},
            "ports": free_ports(names),
            "processes": {},
        }
        token = self.run_dir / "admin-token"
        fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        make_tokens_file(self.run_dir / CORRECTIONS_TOKENS)
        self._write_configs()
        self._write_state()

    def _write_configs(self) -> None:
        p, rd = self.ports, self.run_dir

        def write(relative: str, text: str) -> None:
            write_file(rd, relative, text)

        write(
            "kafka/server.properties",
            configs.kafka_properties(
                broker_port=p["kafka"],
                controller_port=p["kafka-controller"],
                data_dir=rd / "kafka/data",
            ),
        )
        write("kafka/log4j2.properties", configs.KAFKA_LOG4J2)
        write("kafka/jmx-exporter.yml", configs.JMX_EXPORTER)
        primary = REDIS_NODES[0]
        for node in REDIS_NODES:
            write(
                f"{node}/redis.conf",
                configs.redis_conf(
                    port=p[node],
                    data_dir=rd / node,
                    replica_of=None if node == primary else p[primary],
                ),
            )
        for name in SENTINELS:
            write(
                f"{name}/sentinel.conf",
                configs.sentinel_conf(
                    port=p[name],
                    data_dir=rd / name,
                    master_port=p[primary],
                    down_after_ms=SENTINEL_DOWN_AFTER_MS,
                    failover_timeout_ms=SENTINEL_FAILOVER_TIMEOUT_MS,
                ),
            )
        write(
            "prometheus/prometheus.yml",
            configs.prometheus_yml(
                scrape_targets={name: [target] for name, target in self.scrape_targets().items()},
                alertmanager=f"127.0.0.1:{p['alertmanager']}",
                rules_glob=str(rd / "prometheus/rules/*.yml"),
            ),
        )
        (rd / "prometheus/rules").mkdir(parents=True, exist_ok=True)
        write(
            "alertmanager/alertmanager.yml",
            configs.alertmanager_yml(
                webhook_urls=[self.pipeline.endpoints()["rollout_control"] + "/v1/alerts"],
                credentials_file=rd / "admin-token",
            ),
        )
        self.pipeline.write_configs()

    def scrape_targets(self) -> dict[str, str]:
        """Prometheus job name -> 'host:port' serving /metrics. `gameday-drill` is up only
        while `gameday drill` runs (its faults, for the dashboards' annotations)."""
        targets = {c.name: c.metrics for c in self.components() if c.metrics is not None}
        return {**targets, "gameday-drill": f"127.0.0.1:{self.ports['drill-metrics']}"}

    def components(self) -> list[Component]:
        """Everything the stack runs: its infrastructure, then the pipeline."""
        return self.infrastructure() + self.pipeline.components()

    def infrastructure(self) -> list[Component]:
        t, p, rd = self.tools, self.ports, self.run_dir
        kafka_dir = rd / "kafka"
        if self._kafka_probe is None:
            self._kafka_probe = health.KafkaProbe(
                f"127.0.0.1:{p['kafka']}", {SCORE_TOPIC: SCORE_TOPIC_PARTITIONS, FEED_TOPIC: 1}
            )
        kafka = self._kafka_probe
        out = [
            Component(
                name="kafka",
                argv=(
                    str(t.java),
                    "-Xms256m",
                    "-Xmx768m",
                    "-XX:+UseG1GC",
                    "-XX:MaxGCPauseMillis=20",
                    "-Djava.awt.headless=true",
                    f"-Dlog4j2.configurationFile={kafka_dir / 'log4j2.properties'}",
                    f"-javaagent:{t.jmx_agent}=127.0.0.1:{p['kafka-metrics']}:"
                    f"{kafka_dir / 'jmx-exporter.yml'}",
                    "-cp",
                    f"{t.kafka_libs}/*",
                    "kafka.Kafka",
                    str(kafka_dir / "server.properties"),
                ),
                url=f"kafka://127.0.0.1:{p['kafka']}",
                check=kafka.check,
                ensure=kafka.ensure,
                prepare=self._format_kafka,
                metrics=f"127.0.0.1:{p['kafka-metrics']}",
            ),
        ]
        for node in REDIS_NODES:
            out.append(
                Component(
                    name=node,
                    argv=(str(t.redis_server), str(rd / node / "redis.conf")),
                    url=f"redis://127.0.0.1:{p[node]}",
                    check=bind(health.redis_node, p[node]),
                    prepare=functools.partial(self._rejoin_as_replica, node),
                )
            )
        for name in SENTINELS:
            out.append(
                Component(
                    name=name,
                    argv=(str(t.redis_sentinel), str(rd / name / "sentinel.conf")),
                    url=f"redis://127.0.0.1:{p[name]}",
                    check=bind(
                        health.sentinel,
                        p[name],
                        sentinels=len(SENTINELS),
                        replicas=len(REDIS_NODES) - 1,
                    ),
                )
            )
        toxiproxy_url = f"http://127.0.0.1:{p['toxiproxy']}"
        out.append(
            Component(
                name="toxiproxy",
                argv=(
                    str(t.toxiproxy_server),
                    "-host",
                    "127.0.0.1",
                    "-port",
                    str(p["toxiproxy"]),
                    "-proxy-metrics",
                    "-runtime-metrics",
                ),
                url=toxiproxy_url,
                check=self._check_links,
                ensure=self._ensure_links,
                metrics=f"127.0.0.1:{p['toxiproxy']}",
            )
        )
        prom = f"http://127.0.0.1:{p['prometheus']}"
        out.append(
            Component(
                name="prometheus",
                argv=(
                    str(t.prometheus),
                    f"--config.file={rd / 'prometheus/prometheus.yml'}",
                    f"--storage.tsdb.path={rd / 'prometheus/data'}",
                    f"--web.listen-address=127.0.0.1:{p['prometheus']}",
                    "--web.enable-lifecycle",
                    "--storage.tsdb.retention.time=2d",
                ),
                url=prom,
                check=bind(health.http_ok, f"{prom}/-/ready"),
                metrics=f"127.0.0.1:{p['prometheus']}",
            )
        )
        am = f"http://127.0.0.1:{p['alertmanager']}"
        out.append(
            Component(
                name="alertmanager",
                argv=(
                    str(t.alertmanager),
                    f"--config.file={rd / 'alertmanager/alertmanager.yml'}",
                    f"--storage.path={rd / 'alertmanager/data'}",
                    f"--web.listen-address=127.0.0.1:{p['alertmanager']}",
                    "--cluster.listen-address=",
                ),
                url=am,
                check=bind(health.http_ok, f"{am}/-/ready"),
                metrics=f"127.0.0.1:{p['alertmanager']}",
            )
        )
        return out

    def _rejoin_as_replica(self, node: str, _log_path: Path) -> None:
        """A Redis server that comes back after a crash rejoins as a replica of whatever
        master Sentinel now names, as an orchestrator would start it: started as the
        master its stale config file says it was, it would take writes (split brain)."""
        master = health.sentinel_master_port([self.ports[s] for s in SENTINELS], REDIS_MASTER_NAME)
        if master is None or master == self.ports[node]:
            return
        write_file(
            self.run_dir,
            f"{node}/redis.conf",
            configs.redis_conf(
                port=self.ports[node], data_dir=self.run_dir / node, replica_of=master
            ),
        )

    def _format_kafka(self, log_path: Path) -> None:
        kafka_dir = self.run_dir / "kafka"
        if (kafka_dir / "data" / "meta.properties").exists():
            return
        with log_path.open("ab") as log:
            done = subprocess.run(
                [
                    str(self.tools.java),
                    "-cp",
                    f"{self.tools.kafka_libs}/*",
                    f"-Dlog4j2.configurationFile={kafka_dir / 'log4j2.properties'}",
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    self._state["kafka_cluster_id"],
                    "-c",
                    str(kafka_dir / "server.properties"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=60,
            )
        if done.returncode != 0:
            raise ComponentFailed(
                "kafka", f"storage format exited with {done.returncode}", log_tail(log_path)
            )

    async def _ensure_links(self) -> None:
        async with Toxiproxy(f"http://127.0.0.1:{self.ports['toxiproxy']}") as tp:
            for link in self.links():
                await tp.ensure_proxy(
                    link.name,
                    listen=f"127.0.0.1:{link.listen_port}",
                    upstream=f"127.0.0.1:{link.upstream_port}",
                )

    async def _check_links(self) -> str | None:
        url = f"http://127.0.0.1:{self.ports['toxiproxy']}"
        return await missing_proxies(url, [link.name for link in self.links()])

    # --- lifecycle ----------------------------------------------------------------------

    async def up(self, progress: Progress | None = None) -> StackStatus:
        report = progress or (lambda _name, _what: None)
        with self._locked():
            if not self.running():
                self._fresh_layout()
                report("stack", f"fresh start in {self.run_dir}")
            elif self.stack_time_scale != self.time_scale:
                report(
                    "stack",
                    f"already running at time scale {self.stack_time_scale:g}; "
                    f"`gameday down` first to start it at {self.time_scale:g}",
                )
            if self.settings is not None and self.settings != self._state.get("settings", {}):
                await self._settle(self.settings, report)
            alive = self.running()
            try:
                # Infrastructure first, then the pipeline on top of it, as a real
                # deployment orders them (compose's depends_on: service_healthy).
                for layer in (self.infrastructure(), self.pipeline.components()):
                    for c in layer:
                        if c.name in alive:
                            report(c.name, f"already running (pid {alive[c.name].pid})")
                    await _all(self._start(c, report) for c in layer if c.name not in alive)
                    # Components that were already running may still be converging.
                    await _all(
                        self._wait_healthy(c, None, report) for c in layer if c.name in alive
                    )
            except BaseException:
                if not self.keep_on_failure:
                    report("stack", "stopping what was started")
                    self._stop_recorded()
                raise
        return await self._settled_status()

    async def _settled_status(self, grace_s: float = 5.0) -> StackStatus:
        """The status once every component was seen healthy. A check that fails once (a
        reply over its 1 s timeout on a loaded machine) is asked again for up to `grace_s`
        before `up` calls the stack unhealthy; a dead process stays unhealthy."""
        deadline = time.monotonic() + grace_s
        status = await self.status()
        while not status.healthy and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            status = await self.status()
        return status

    async def _settle(self, new: Mapping[str, Any], report: Progress) -> list[str]:
        """Make the running pipeline run with settings `new`: rewrite every config and
        restart (by PID) the services whose config changed. Returns their names."""
        before = self.pipeline.configs()
        after = replace(self.pipeline, settings=dict(new)).configs()  # SettingError: no change
        self._state["settings"] = dict(new)
        self._write_state()
        self.pipeline.write_configs()
        changed = [name for name, config in after.items() if config != before.get(name)]
        components = {c.name: c for c in self.pipeline.components()}
        refs = self._refs()
        for name in changed:
            if name in refs:
                await asyncio.to_thread(stop_all, [refs[name]])
            report(name, "restarting with the new settings")
            await self._start(components[name], report)
        return changed

    async def configure(self, changes: Mapping[str, Any]) -> list[str]:
        """Change some settings of the running stack (a value of None removes one) and
        restart what they touch; returns the restarted services. A drill's bad canary is
        this: `{"edge-canary.defect_error_ratio": 0.5}`, and None to put it back."""
        with self._locked():
            if not self.running():
                raise StackNotRunning(f"no stack running in {self.run_dir}")
            merged = {**self._state.get("settings", {}), **changes}
            merged = {k: v for k, v in merged.items() if v is not None}
            return await self._settle(merged, lambda _n, _w: None)

    async def _start(self, c: Component, report: Progress) -> None:
        log_path = self.run_dir / "logs" / f"{c.name}.log"
        started = time.monotonic()
        if c.prepare is not None:
            await asyncio.to_thread(c.prepare, log_path)
        ref = spawn(c.argv, log_path=log_path, cwd=self.run_dir)
        self._state.setdefault("processes", {})[c.name] = {
            "pid": ref.pid,
            "start_ticks": ref.start_ticks,
            "log": str(log_path),
            "argv": list(c.argv),
            "started_at": _now(),
        }
        self._write_state()
        report(c.name, f"started (pid {ref.pid})")
        await self._wait_healthy(c, ref, report, started)

    async def _wait_healthy(
        self,
        c: Component,
        ref: ProcessRef | None,
        report: Progress,
        started: float | None = None,
    ) -> None:
        started = started or time.monotonic()
        deadline = started + self.startup_timeout_s
        log_path = self.run_dir / "logs" / f"{c.name}.log"
        while True:
            if ref is not None and (code := exit_code(ref)) is not None:
                raise ComponentFailed(
                    c.name, f"exited with code {code} while starting", log_tail(log_path)
                )
            if c.ensure is not None:
                with contextlib.suppress(Exception):  # not ready yet: the check says why
                    await c.ensure()
            reason = await c.check()
            if reason is None:
                report(c.name, f"healthy in {time.monotonic() - started:.1f}s")
                return
            if time.monotonic() > deadline:
                raise ComponentFailed(
                    c.name,
                    f"not healthy after {self.startup_timeout_s:.0f}s: {reason}",
                    log_tail(log_path),
                )
            await asyncio.sleep(0.1)

    def _stop_recorded(self) -> list[str]:
        refs = self._refs()
        killed = stop_all(list(refs.values()))
        self._state["processes"] = {}
        self._state["stopped_at"] = _now()
        if self.state_path.parent.exists():
            self._write_state()
        return [name for name, ref in refs.items() if ref in killed]

    async def down(self) -> list[str]:
        """Stop every process `up` started. Returns the names that ignored SIGTERM."""
        with self._locked():
            if not self._state.get("processes"):
                return []
            return await asyncio.to_thread(self._stop_recorded)

    async def status(self) -> StackStatus:
        if not self._state.get("ports"):
            return StackStatus(target=self.target, healthy=False)
        refs = self._refs()
        components = self.components()

        async def one(c: Component) -> ServiceStatus:
            ref = refs.get(c.name)
            if ref is None:
                return ServiceStatus(False, None, c.url, "not started")
            if not ref.alive():
                return ServiceStatus(False, ref.pid, c.url, "process has exited")
            reason = await c.check()
            return ServiceStatus(reason is None, ref.pid, c.url, reason)

        results = await asyncio.gather(*(one(c) for c in components))
        services = {c.name: s for c, s in zip(components, results, strict=True)}
        return StackStatus(
            target=self.target,
            healthy=all(s.healthy for s in services.values()),
            services=services,
            endpoints=self.endpoints(),
        )

    def endpoints(self) -> dict[str, Any]:
        p = self.ports
        if not p:
            raise StackNotRunning(f"no stack in {self.run_dir}: run `gameday up`")
        return {
            "kafka_bootstrap": f"127.0.0.1:{p['kafka']}",
            "kafka_topic": SCORE_TOPIC,
            "redis_sentinels": [f"127.0.0.1:{p[name]}" for name in SENTINELS],
            "redis_master_name": REDIS_MASTER_NAME,
            "toxiproxy_api": f"http://127.0.0.1:{p['toxiproxy']}",
            "prometheus": f"http://127.0.0.1:{p['prometheus']}",
            "alertmanager": f"http://127.0.0.1:{p['alertmanager']}",
            "admin_token_file": str(self.run_dir / "admin-token"),
            "drill_metrics": f"127.0.0.1:{p['drill-metrics']}",
            **self.pipeline.endpoints(),
            "links": {
                link.name: {
                    "listen": f"127.0.0.1:{link.listen_port}",
                    "upstream": f"127.0.0.1:{link.upstream_port}",
                }
                for link in self.links()
            },
        }

    @property
    def stack_time_scale(self) -> float:
        """The time scale the running stack was started with."""
        return float(self._state.get("time_scale", self.time_scale))

    async def load_rules(self, files: Mapping[str, str]) -> list[str]:
        """Give Prometheus these rule files (name -> YAML) and reload it; returns the
        rule groups Prometheus then has. A file of the same name is replaced."""
        rules_dir = self.run_dir / "prometheus" / "rules"
        return await load_rules(rules_dir, self.endpoints()["prometheus"], files)

    # --- process faults -----------------------------------------------------------------

    def _ref(self, service: str) -> ProcessRef:
        ref = self._refs().get(service)
        if ref is None:
            known = ", ".join(sorted(self._refs())) or "none"
            raise DeployError(f"no service {service!r} in this stack (running: {known})")
        return ref

    async def kill(self, service: str) -> None:
        await asyncio.to_thread(kill_group, self._ref(service))

    async def pause(self, service: str) -> None:
        signal_group(self._ref(service), signal.SIGSTOP)

    async def resume(self, service: str) -> None:
        signal_group(self._ref(service), signal.SIGCONT)

    async def start(self, service: str) -> None:
        components = {c.name: c for c in self.components()}
        if service not in components:
            raise DeployError(f"no service {service!r}; known: {', '.join(sorted(components))}")
        with self._locked():
            ref = self._refs().get(service)
            if ref is not None and ref.alive():
                return
            await self._start(components[service], lambda _n, _w: None)


async def _all(coros: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run concurrently; on the first failure cancel the rest and raise that failure."""
    try:
        async with asyncio.TaskGroup() as group:
            for coro in coros:
                group.create_task(coro)
    except BaseExceptionGroup as grouped:
        raise grouped.exceptions[0] from None
