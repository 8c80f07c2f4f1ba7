"""Config files for the third-party servers of the local stack, rendered from its ports.

Pure functions: each returns the file's text, so tests can read what a server is given.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from pipeline.topology import REDIS_MASTER_NAME


def kafka_cluster_id() -> str:
    """A new KRaft cluster id: a UUID in URL-safe base64 without padding, as Kafka writes it.

    Like Kafka's own Uuid.randomUuid(), never one starting with '-', which the storage
    tool's command line would take for an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def kafka_properties(*, broker_port: int, controller_port: int, data_dir: Path) -> str:
    """One node in KRaft combined mode (broker and controller), sized for a laptop."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "auto.create.topics.enable": "false",
        "num.partitions": "3",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.flush.interval.ms": "1000",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


KAFKA_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""

JMX_EXPORTER = """\
# Broker metrics for Prometheus; the rest of the JMX tree is left out to keep scrapes cheap.
lowercaseOutputName: true
includeObjectNames:
  - "kafka.server:type=BrokerTopicMetrics,*"
  - "kafka.server:type=ReplicaManager,*"
  - "kafka.server:type=KafkaRequestHandlerPool,*"
  - "kafka.controller:*"
  - "kafka.network:type=RequestMetrics,name=TotalTimeMs,*"
  - "kafka.log:type=LogFlushStats,*"
  - "java.lang:type=Memory"
  - "java.lang:type=GarbageCollector,*"
rules:
  - pattern: ".*"
"""


def redis_conf(
    *,
    port: int,
    data_dir: Path,
    replica_of: int | None,
    replica_host: str = "127.0.0.1",
    bind: str = "127.0.0.1",
    extra: Sequence[str] = (),
) -> str:
    """A Redis server (a replica of `replica_host`:`replica_of` when that is given);
    `extra` lines go at the end (a container's: how it announces itself)."""
    lines = [
        f"bind {bind}",
        f"port {port}",
        "daemonize no",
        'logfile ""',
        f"dir {data_dir}",
        'save ""',
        "appendonly yes",
        "appendfsync everysec",
        "repl-diskless-sync yes",
        "repl-diskless-sync-delay 0",
        "repl-timeout 10",
        *extra,
    ]
    if replica_of is not None:
        lines.append(f"replicaof {replica_host} {replica_of}")
    return "\n".join(lines) + "\n"


def sentinel_conf(
    *, port: int, data_dir: Path, master_port: int, down_after_ms: int, failover_timeout_ms: int
) -> str:
    """Quorum 2 of 3. Sentinel rewrites this file as it learns, so each gets its own copy."""
    name = REDIS_MASTER_NAME
    return (
        "\n".join(
            [
                "bind 127.0.0.1",
                f"port {port}",
                "daemonize no",
                'logfile ""',
                f"dir {data_dir}",
                f"sentinel monitor {name} 127.0.0.1 {master_port} 2",
                f"sentinel down-after-milliseconds {name} {down_after_ms}",
                f"sentinel failover-timeout {name} {failover_timeout_ms}",
                f"sentinel parallel-syncs {name} 1",
            ]
        )
        + "\n"
    )


def prometheus_yml(
    *,
    scrape_targets: Mapping[str, Sequence[str]],
    alertmanager: str,
    rules_glob: str,
    interval_s: float = 1.0,
) -> str:
    """`scrape_targets` maps a job name to its 'host:port' targets (all served at /metrics)."""
    interval = f"{int(interval_s * 1000)}ms"
    config = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
            "external_labels": {"stack": "gameday-local"},
        },
        "rule_files": [rules_glob],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(targets)}]}
            for job, targets in scrape_targets.items()
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def alertmanager_yml(
    *, webhook_urls: Sequence[str] = (), credentials_file: Path | None = None
) -> str:
    """Group fast (drills run at a time scale); send every alert to the given webhooks,
    with the bearer token in `credentials_file` (the rollout controller's)."""
    receiver: dict[str, object] = {"name": "gameday"}
    if webhook_urls:
        hook: dict[str, object] = {"send_resolved": True, "max_alerts": 0}
        if credentials_file is not None:
            hook["http_config"] = {
                "authorization": {"type": "Bearer", "credentials_file": str(credentials_file)}
            }
        receiver["webhook_configs"] = [{"url": url, **hook} for url in webhook_urls]
    config = {
        "route": {
            "receiver": "gameday",
            "group_by": ["alertname", "service", "region"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [receiver],
    }
    return yaml.safe_dump(config, sort_keys=False)
