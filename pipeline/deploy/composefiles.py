"""What the compose target gives its containers: fixed ports, addresses and config files.

Inside the compose network every service listens on its own fixed port (`CONTAINER_PORTS`,
all distinct), so the pipeline's configs are the local stack's (`PipelineLayout`) with
each `127.0.0.1:PORT` replaced by `SERVICE:PORT`, and Sentinel's answers ("redis-b:6380")
name a node by its port as they do locally. The host reaches the services through ports
published on 127.0.0.1, chosen free at `gameday up` and handed to `docker compose` in
`RUN/compose.env` as `HOST_PORT_<NAME>` (each has a default in compose.yaml).

Pure functions of their arguments, so tests can read what a container is given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from pipeline.deploy import configs
from pipeline.deploy.components import Link
from pipeline.deploy.services import PORTS as PIPELINE_PORTS
from pipeline.deploy.services import PipelineLayout, link_port_names
from pipeline.deploy.services import links as all_links
from pipeline.topology import REDIS_MASTER_NAME, REDIS_NODES, SENTINELS

RUN_MOUNT: Final = Path("/gameday")
"""Where every container sees the run directory (its config, traces and audit files)."""
IMAGE_WEB_DIR: Final = "/app/pipeline/web"
"""The fans' page inside the pipeline image (Dockerfile copies the repo to /app)."""
TOKEN_IN_CONTAINER: Final = Path("/run/secrets/admin-token")
SECRET_FIELDS: Final = {
    "admin_token_file": TOKEN_IN_CONTAINER,
    "tokens_file": Path("/run/secrets/corrections-tokens"),
}
"""Config fields that name a secret file: compose mounts those as secrets, not with the
run directory."""

_INFRA_PORTS: Final = {
    "kafka": 9092,
    "kafka-controller": 9095,
    "kafka-external": 9094,
    "kafka-metrics": 9404,
    "redis-a": 6379,
    "redis-b": 6380,
    "sentinel-1": 26379,
    "sentinel-2": 26380,
    "sentinel-3": 26381,
    "toxiproxy": 8474,
    "prometheus": 9090,
    "alertmanager": 9093,
    "grafana": 3000,
    "jaeger": 16686,
}
_PIPELINE_PORTS: Final = {
    "feed-control": 8000,
    "feed-primary": 8001,
    "feed-secondary": 8002,
    "ingest-metrics": 8010,
    "ingest-control": 8011,
    "scorekeeper-metrics": 8020,
    "control": 8030,
    "corrections": 8040,
    "corrections-metrics": 8041,
    "edge-us-east": 8101,
    "edge-eu-west": 8102,
    "edge-ap-southeast": 8103,
    "edge-canary": 8104,
}
LINK_PORT_BASE: Final = 21000
"""Toxiproxy's proxies listen on LINK_PORT_BASE + 1, + 2, ... in link_port_names() order."""


def container_ports() -> dict[str, int]:
    """Every port inside the compose network, by the local stack's port names."""
    missing = [name for name in PIPELINE_PORTS if name not in _PIPELINE_PORTS]
    if missing:
        raise ValueError(
            f"pipeline port(s) {', '.join(missing)} have no container port in "
            "pipeline/deploy/composefiles.py (and no service in compose.yaml)"
        )
    ports = {**_INFRA_PORTS, **{name: _PIPELINE_PORTS[name] for name in PIPELINE_PORTS}}
    ports |= {name: LINK_PORT_BASE + i for i, name in enumerate(link_port_names(), 1)}
    return ports


def pipeline_layout(
    *, time_scale: float = 1.0, settings: Mapping[str, Any] | None = None
) -> PipelineLayout:
    """The local stack's pipeline layout on the container ports (addresses still local)."""
    return PipelineLayout(container_ports(), RUN_MOUNT, time_scale, dict(settings or {}))


def owners() -> dict[int, str]:
    """Container port -> the compose service that listens on it."""
    ports = container_ports()
    services = [c.name for c in pipeline_layout().components()]
    out: dict[int, str] = {}
    for name, port in ports.items():
        if name.startswith("link:"):
            out[port] = "toxiproxy"
        elif name in _PIPELINE_PORTS:
            out[port] = max((s for s in services if name == s or name.startswith(f"{s}-")), key=len)
        else:
            out[port] = "kafka" if name.startswith("kafka") else name
    return out


_LOCAL_ADDRESS = re.compile(r"127\.0\.0\.1:(\d+)")


def in_network(value: Any, hosts: Mapping[int, str]) -> Any:
    """`value` (JSON) with every `127.0.0.1:PORT`, in keys too, made `SERVICE:PORT`."""

    def address(match: re.Match[str]) -> str:
        port = int(match.group(1))
        if port not in hosts:
            raise ValueError(f"no compose service listens on port {port}")
        return f"{hosts[port]}:{port}"

    if isinstance(value, str):
        return _LOCAL_ADDRESS.sub(address, value)
    if isinstance(value, list):
        return [in_network(v, hosts) for v in value]
    if isinstance(value, dict):
        return {in_network(k, hosts): in_network(v, hosts) for k, v in value.items()}
    return value


NETWORK_SUBNET: Final = "10.203.47.0/24"
NETWORK_GATEWAY: Final = "10.203.47.1"
"""compose.yaml's network. Fans on the host reach an edge through the published port, so
the edge sees them coming from this gateway: it is exempt from the per-address connection
cap, as 127.0.0.1 is on the local stack."""

CONTAINER_SETTINGS: Final = {
    "edge.host": "0.0.0.0",  # noqa: S104 - inside its container; published on 127.0.0.1
    "edge.web_dir": IMAGE_WEB_DIR,
    "edge.connection_cap_exempt": ["127.0.0.1", "::1", NETWORK_GATEWAY],
    "control.host": "0.0.0.0",  # noqa: S104
    "corrections.host": "0.0.0.0",  # noqa: S104
    "ingest.host": "0.0.0.0",  # noqa: S104 - its metrics and control API
    "scorekeeper.host": "0.0.0.0",  # noqa: S104 - its metrics
}


def pipeline_configs(
    *, time_scale: float, settings: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each pipeline service's config file as its container reads it."""
    layout = pipeline_layout(time_scale=time_scale, settings={**settings, **CONTAINER_SETTINGS})
    rendered = in_network(layout.configs(), owners())
    rendered["feed"]["host"] = "0.0.0.0"  # noqa: S104
    for config in rendered.values():
        for key in SECRET_FIELDS.keys() & config.keys():
            config[key] = str(SECRET_FIELDS[key])
    return dict(rendered)


def proxies() -> list[dict[str, Any]]:
    """Toxiproxy's `-config` document: the local stack's links, in the compose network."""
    hosts = owners()
    return [
        {
            "name": link.name,
            "listen": f"0.0.0.0:{link.listen_port}",
            "upstream": f"{hosts[link.upstream_port]}:{link.upstream_port}",
            "enabled": True,
        }
        for link in links()
    ]


def links() -> list[Link]:
    return all_links(container_ports())


def redis_conf(node: str, *, replica_of: str | None) -> str:
    """A Redis server in its container; it announces itself by its service name, so that
    Sentinel hands out `NODE:PORT`, which the pipeline maps to its Toxiproxy link."""
    port = container_ports()[node]
    return configs.redis_conf(
        port=port,
        data_dir=RUN_MOUNT / node,
        replica_of=None if replica_of is None else container_ports()[replica_of],
        replica_host=replica_of or "",
        bind="0.0.0.0",  # noqa: S104 - inside its container; not published
        extra=["protected-mode no", f"replica-announce-ip {node}", f"replica-announce-port {port}"],
    )


def sentinel_conf(name: str, *, down_after_ms: int, failover_timeout_ms: int) -> str:
    """Quorum 2 of 3, by hostnames. Sentinel rewrites the file, so each has its own."""
    ports, master = container_ports(), REDIS_NODES[0]
    m = REDIS_MASTER_NAME
    lines = [
        "bind 0.0.0.0",
        "protected-mode no",
        f"port {ports[name]}",
        "daemonize no",
        'logfile ""',
        f"dir {RUN_MOUNT / name}",
        "sentinel resolve-hostnames yes",
        "sentinel announce-hostnames yes",
        f"sentinel announce-ip {name}",
        f"sentinel announce-port {ports[name]}",
        f"sentinel monitor {m} {master} {ports[master]} 2",
        f"sentinel down-after-milliseconds {m} {down_after_ms}",
        f"sentinel failover-timeout {m} {failover_timeout_ms}",
        f"sentinel parallel-syncs {m} 1",
    ]
    return "\n".join(lines) + "\n"


def scrape_targets(drill_metrics_host_port: int) -> dict[str, str]:
    """Prometheus job -> target, the same jobs as the local stack's. The drill's own
    metrics are served on the host; containers reach it as host.docker.internal."""
    ports, hosts = container_ports(), owners()
    targets = {
        "kafka": f"kafka:{ports['kafka-metrics']}",
        "toxiproxy": f"toxiproxy:{ports['toxiproxy']}",
        "prometheus": f"prometheus:{ports['prometheus']}",
        "alertmanager": f"alertmanager:{ports['alertmanager']}",
    }
    for c in pipeline_layout().components():
        if c.metrics is not None:
            targets[c.name] = in_network(c.metrics, hosts)
    targets["gameday-drill"] = f"host.docker.internal:{drill_metrics_host_port}"
    return targets


RULES_DIR: Final = RUN_MOUNT / "prometheus" / "rules"


def prometheus_yml(drill_metrics_host_port: int) -> str:
    text = configs.prometheus_yml(
        scrape_targets={k: [v] for k, v in scrape_targets(drill_metrics_host_port).items()},
        alertmanager=f"alertmanager:{container_ports()['alertmanager']}",
        rules_glob=str(RULES_DIR / "*.yml"),
    )
    document = yaml.safe_load(text)
    document["global"]["external_labels"] = {"stack": "gameday-compose"}
    return yaml.safe_dump(document, sort_keys=False)


def alertmanager_yml() -> str:
    control = pipeline_configs(time_scale=1.0, settings={})["control"]
    return configs.alertmanager_yml(
        webhook_urls=[f"http://control:{control['port']}/v1/alerts"],
        credentials_file=TOKEN_IN_CONTAINER,
    )


HOST_PORT_NAMES: Final = (
    "kafka",
    *SENTINELS,
    "toxiproxy",
    "prometheus",
    "alertmanager",
    "grafana",
    "jaeger",
    *PIPELINE_PORTS,
)
"""What compose publishes on 127.0.0.1 (the drill's metrics port is the host's own)."""


def host_port_variable(name: str) -> str:
    """'edge-us-east' -> 'HOST_PORT_EDGE_US_EAST' (the variable compose.yaml publishes on)."""
    return "HOST_PORT_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def compose_env(
    *,
    run_dir: Path,
    host_ports: Mapping[str, int],
    kafka_cluster_id: str,
    uid: int,
    gid: int,
    tracing: str = "on",
    otlp_endpoint: str = "",
) -> str:
    """`RUN/compose.env`: what compose.yaml interpolates. Paths and ports, no secrets
    (those are files in the run directory that compose.yaml mounts)."""
    values = {
        "GAMEDAY_RUN_DIR": str(run_dir),
        "GAMEDAY_TRACING": tracing,
        "RUN_UID": str(uid),
        "RUN_GID": str(gid),
        "KAFKA_CLUSTER_ID": kafka_cluster_id,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
        **{host_port_variable(name): str(host_ports[name]) for name in HOST_PORT_NAMES},
    }
    for key, value in values.items():
        if "\n" in value or "'" in value:
            raise ValueError(f"{key}={value!r} cannot go in an env file")
    return "".join(f"{key}='{value}'\n" for key, value in values.items())


def toxiproxy_json() -> str:
    """infra/compose/toxiproxy.json, as committed."""
    return json.dumps(proxies(), indent=2) + "\n"
