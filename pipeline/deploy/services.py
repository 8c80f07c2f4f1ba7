"""The pipeline's own processes in the local stack: feed, ingest, scorekeeper, the edges
(one stable edge per region, and the canary edge in CANARY_REGION), the rollout
controller and the corrections service.

Each runs as `python -m pipeline.MODULE --config RUN/pipeline/SERVICE.json`, reaching the
vendors and Redis through its own Toxiproxy links, so chaos can cut any of them alone.
The stack's settings (`gameday up --set`) are applied to the configs here.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import to_json
from pipeline.control import ControlConfig
from pipeline.corrections import CorrectionsConfig, ready
from pipeline.deploy import health, settings
from pipeline.deploy.components import Component, Link, bind, write_file
from pipeline.edge import EdgeConfig
from pipeline.ingest import IngestConfig
from pipeline.scorekeeper import ScorekeeperConfig
from pipeline.topology import (
    CANARY_REGION,
    FEED_TOPIC,
    REDIS_CLIENTS,
    REDIS_MASTER_NAME,
    REDIS_NODES,
    REGIONS,
    SCORE_TOPIC,
    SENTINELS,
    VENDOR_LINKS,
    redis_link,
    redis_links,
)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
EDGES = (*(f"edge-{region}" for region in REGIONS), "edge-canary")
PORTS = (
    "feed-control",
    "feed-primary",
    "feed-secondary",
    "ingest-metrics",
    "ingest-control",
    "scorekeeper-metrics",
    "control",
    "corrections",
    "corrections-metrics",
    *EDGES,
)
CORRECTIONS_TOKENS = "corrections-tokens.json"
"""The viewer's and editor's tokens for the corrections service (`gameday up`, 0600)."""


def links(ports: dict[str, int]) -> list[Link]:
    """Every Toxiproxy link: vendors to their readers; the scorekeeper and each region's
    edges to each Redis server."""
    out = [
        Link(name=name, listen_port=ports[f"link:{name}"], upstream_port=ports[target])
        for name, target in VENDOR_LINKS.items()
    ]
    out += [
        Link(
            name=redis_link(region, node),
            listen_port=ports[f"link:{redis_link(region, node)}"],
            upstream_port=ports[node],
        )
        for region in REDIS_CLIENTS
        for node in REDIS_NODES
    ]
    return out


def link_port_names() -> list[str]:
    return [f"link:{name}" for name in (*VENDOR_LINKS, *redis_links())]


FALLBACK_POLL_INTERVAL_S = 15.0
FORCED_FALLBACK_HOLD_S = 30.0
RECONCILE_INTERVAL_S = 10.0
SILENCE_THRESHOLD_S = 3.0
SECONDARY_DELAY_S = 3.0


@dataclass(frozen=True)
class PipelineLayout:
    ports: dict[str, int]
    run_dir: Path
    time_scale: float = 1.0
    """Declared durations (fallback polling, reconciling, the feed watchdog, the secondary
    vendor's lag) are divided by this, as in a drill at `--time-scale`."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """`gameday up --set` overrides, checked against each config's fields."""

    @staticmethod
    def check_settings(values: Mapping[str, Any]) -> None:
        """Raise SettingError for a setting no config accepts, before anything starts."""
        PipelineLayout(defaultdict(lambda: 1), Path("/"), settings=values).configs()

    def scaled(self, seconds: float, *, floor: float = 0.0) -> float:
        return max(floor, seconds / self.time_scale)

    @property
    def silence_threshold_s(self) -> float:
        """Never under 2 s: the vendor's heartbeat is 1 s, and a loaded machine stutters."""
        return self.scaled(SILENCE_THRESHOLD_S, floor=2.0)

    @property
    def reconcile_interval_s(self) -> float:
        """Kept well behind the watchdog, as in production (10 s vs 3 s): when the floor
        holds the watchdog up, the reconciler must not overtake the fallback vendor."""
        return self.scaled(RECONCILE_INTERVAL_S, floor=2 * self.silence_threshold_s)

    def _local(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def _link(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[f'link:{name}']}"

    def _address_map(self, client: str) -> dict[str, str]:
        """Redis addresses as Sentinel names them -> `client`'s Toxiproxy links to them."""
        return {
            self._local(node): self._local(f"link:{redis_link(client, node)}")
            for node in REDIS_NODES
        }

    def configs(self) -> dict[str, dict[str, Any]]:
        """Every service's config file content, by service name, settings applied."""
        rd, sentinels = self.run_dir, tuple(self._local(s) for s in SENTINELS)
        token = rd / "admin-token"
        feed = {
            "control_port": self.ports["feed-control"],
            "primary_port": self.ports["feed-primary"],
            "secondary_port": self.ports["feed-secondary"],
            "admin_token_file": str(token),
            "secondary_delay_s": self.scaled(SECONDARY_DELAY_S, floor=0.5),
            "heartbeat_s": 1.0,
            "host": "127.0.0.1",
        }
        ingest = IngestConfig(
            primary_url=self._link("ingest.vendor-primary"),
            secondary_url=self._link("ingest.vendor-secondary"),
            kafka_bootstrap=self._local("kafka"),
            topic=SCORE_TOPIC,
            feed_topic=FEED_TOPIC,
            metrics_port=self.ports["ingest-metrics"],
            trace_dir=rd / "traces",
            fallback_poll_interval_s=self.scaled(FALLBACK_POLL_INTERVAL_S),
            silence_threshold_s=self.silence_threshold_s,
            control_port=self.ports["ingest-control"],
            admin_token_file=token,
            forced_fallback_hold_s=self.scaled(FORCED_FALLBACK_HOLD_S, floor=2.0),
        )
        keeper = ScorekeeperConfig(
            kafka_bootstrap=self._local("kafka"),
            topic=SCORE_TOPIC,
            feed_topic=FEED_TOPIC,
            sentinels=sentinels,
            master_name=REDIS_MASTER_NAME,
            replay_url=self._link("scorekeeper.vendor-primary"),
            audit_dir=rd / "audit",
            metrics_port=self.ports["scorekeeper-metrics"],
            trace_dir=rd / "traces",
            reconcile_interval_s=self.reconcile_interval_s,
            address_map=self._address_map("scorekeeper"),
        )
        typed: dict[str, object] = {"ingest": ingest, "scorekeeper": keeper}
        for name, region, version in (
            *((f"edge-{r}", r, "stable") for r in REGIONS),
            ("edge-canary", CANARY_REGION, "canary"),
        ):
            typed[name] = EdgeConfig(
                region=region,
                version=version,
                port=self.ports[name],
                sentinels=sentinels,
                master_name=REDIS_MASTER_NAME,
                web_dir=WEB_DIR,
                address_map=self._address_map(region),
                trace_dir=rd / "traces",
                admin_token_file=token,
            )
        typed["control"] = ControlConfig(
            port=self.ports["control"],
            admin_token_file=token,
            edges={r: f"http://{self._local(f'edge-{r}')}" for r in REGIONS},
            canary_region=CANARY_REGION,
            canary_url=f"http://{self._local('edge-canary')}",
            ingest_control_url=f"http://{self._local('ingest-control')}",
        )
        typed["corrections"] = CorrectionsConfig(
            port=self.ports["corrections"],
            metrics_port=self.ports["corrections-metrics"],
            kafka_bootstrap=self._local("kafka"),
            topic=SCORE_TOPIC,
            audit_dir=rd / "audit",
            admin_token_file=token,
            tokens_file=rd / CORRECTIONS_TOKENS,
            trace_dir=rd / "traces",
        )
        typed = settings.apply(typed, self.settings)
        return {"feed": feed, **{name: to_json(config) for name, config in typed.items()}}

    def write_configs(self) -> None:
        for name, config in self.configs().items():
            write_file(self.run_dir, f"pipeline/{name}.json", json.dumps(config, indent=2))

    def components(self) -> list[Component]:
        def argv(module: str, name: str) -> tuple[str, ...]:
            return (
                sys.executable,
                "-m",
                f"pipeline.{module}",
                "--config",
                str(self.run_dir / "pipeline" / f"{name}.json"),
            )

        feed_control = f"http://{self._local('feed-control')}"
        ingest_metrics = self._local("ingest-metrics")
        keeper_metrics = self._local("scorekeeper-metrics")
        out = [
            Component(
                name="feed",
                argv=argv("feed", "feed"),
                url=feed_control,
                check=bind(health.http_ok, f"{feed_control}/healthz"),
                metrics=self._local("feed-control"),
            ),
            Component(
                name="ingest",
                argv=argv("ingest", "ingest"),
                url=f"http://{ingest_metrics}",
                check=bind(
                    health.metric,
                    f"http://{ingest_metrics}/metrics",
                    "gameday_feed_primary_connected",
                    want=1.0,
                ),
                metrics=ingest_metrics,
            ),
            Component(
                name="scorekeeper",
                argv=argv("scorekeeper", "scorekeeper"),
                url=f"http://{keeper_metrics}",
                check=bind(health.http_ok, f"http://{keeper_metrics}/metrics"),
                metrics=keeper_metrics,
            ),
        ]
        for name in EDGES:
            edge = self._local(name)
            out.append(
                Component(
                    name=name,
                    argv=argv("edge", name),
                    url=f"http://{edge}",
                    check=bind(health.http_ok, f"http://{edge}/healthz"),
                    metrics=edge,
                )
            )
        control = self._local("control")
        out.append(
            Component(
                name="control",
                argv=argv("control", "control"),
                url=f"http://{control}",
                check=bind(health.http_ok, f"http://{control}/healthz"),
                metrics=control,
            )
        )
        corrections = self._local("corrections")
        out.append(
            Component(
                name="corrections",
                argv=argv("corrections", "corrections"),
                url=f"grpc://{corrections}",
                check=bind(ready, corrections),
                metrics=self._local("corrections-metrics"),
            )
        )
        return out

    def endpoints(self) -> dict[str, Any]:
        return {
            "feed_control": f"http://{self._local('feed-control')}",
            "feed_primary": f"http://{self._local('feed-primary')}",
            "feed_secondary": f"http://{self._local('feed-secondary')}",
            "edges": {region: f"http://{self._local(f'edge-{region}')}" for region in REGIONS},
            "canary_edge": f"http://{self._local('edge-canary')}",
            "rollout_control": f"http://{self._local('control')}",
            "ingest_control": f"http://{self._local('ingest-control')}",
            "corrections": self._local("corrections"),
            "corrections_tokens_file": str(self.run_dir / CORRECTIONS_TOKENS),
        }
