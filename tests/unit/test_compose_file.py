"""compose.yaml: valid under the Compose Specification, and the same stack as the local one.

Every expectation is derived from the code that runs the local stack (the components of
`LocalDeployment` and `PipelineLayout`, `services.links()`, the rule and dashboard
generators, `pipeline/env.py`), so a service, link or setting added there fails here until
compose.yaml has it too.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dashboards import provisioning
from pipeline import env
from pipeline.config import from_mapping
from pipeline.control import ControlConfig
from pipeline.corrections import CorrectionsConfig
from pipeline.deploy import LocalDeployment, Tools, composefiles
from pipeline.deploy.compose import (
    EXTRAS,
    INFRASTRUCTURE,
    ONE_SHOT,
    ComposeDeployment,
    published_ports,
)
from pipeline.deploy.services import PORTS as PIPELINE_PORTS
from pipeline.deploy.services import links
from pipeline.edge import EdgeConfig
from pipeline.ingest import IngestConfig
from pipeline.scorekeeper import ScorekeeperConfig
from pipeline.topology import FEED_TOPIC, SCORE_TOPIC, SCORE_TOPIC_PARTITIONS
from slo.rules import rule_files
from slo.spec import default_specs, load

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "compose.yaml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
SCHEMA = json.loads((Path(__file__).parent / "data" / "compose-spec.json").read_text())
CONFIG_TYPES: dict[str, type] = {
    "ingest": IngestConfig,
    "scorekeeper": ScorekeeperConfig,
    "control": ControlConfig,
    "corrections": CorrectionsConfig,
}

_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}")


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
    $$ for a literal $. An unset variable with :? raises, as compose does."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        got = variables.get(name)
        if op in (":-", "-"):
            return got if got or (op == "-" and got is not None) else arg
        if op in (":?", "?") and not got:
            raise ValueError(f"{name}: {arg}")
        return got or ""

    if isinstance(value, str):
        return _VARIABLE.sub(one, value)
    if isinstance(value, list):
        return [interpolate(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, variables) for k, v in value.items()}
    return value


def _env(run_dir: Path) -> dict[str, str]:
    """What `gameday up --target compose` hands compose: RUN/compose.env, parsed."""
    host_ports = {name: 43000 + i for i, name in enumerate(composefiles.HOST_PORT_NAMES)}
    text = composefiles.compose_env(
        run_dir=run_dir,
        host_ports=host_ports,
        kafka_cluster_id="MkU3OEVBNTcwNTJENDM2Qk",
        uid=1000,
        gid=1000,
    )
    pairs = (line.split("=", 1) for line in text.splitlines())
    return {key: value.strip("'") for key, value in pairs}


def _fake_tools(root: Path) -> Tools:
    paths = {f: root / f for f in Tools.__dataclass_fields__ if not f.endswith("_version")}
    versions = {f: "0" for f in Tools.__dataclass_fields__ if f.endswith("_version")}
    return Tools(**paths, **versions)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> LocalDeployment:
    """The local stack's layout (configs written, nothing started)."""
    root = tmp_path_factory.mktemp("local")
    deployment = LocalDeployment(run_dir=root / "run", tools=_fake_tools(root))
    deployment._fresh_layout()
    return deployment


def _pipeline_services(local: LocalDeployment) -> list[str]:
    return [c.name for c in local.pipeline.components()]


def _published(service: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(host ip, host port text, container port) for each `ports` entry."""
    out = []
    for entry in service.get("ports", []):
        match = re.fullmatch(r"(?P<ip>[^:]+):(?P<host>\$\{[^}]+\}|\d+):(?P<port>\d+)", entry)
        assert match, f"{entry!r} is not HOST_IP:HOST_PORT:CONTAINER_PORT"
        out.append((match["ip"], match["host"], int(match["port"])))
    return out


# --- the Compose Specification ----------------------------------------------------------


def test_compose_yaml_is_valid_under_the_compose_specification(tmp_path: Path) -> None:
    validator = jsonschema.Draft7Validator(SCHEMA)
    document = interpolate(COMPOSE, _env(tmp_path))
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]
    assert not errors, errors
    assert not list(validator.iter_errors(COMPOSE))  # as written, before interpolation


def test_the_schema_refuses_what_compose_would_refuse() -> None:
    validator = jsonschema.Draft7Validator(SCHEMA)
    misspelt = {"services": {"feed": {"image": "x", "helthcheck": {"test": ["CMD", "true"]}}}}
    bad_condition = {
        "services": {"a": {"image": "x", "depends_on": {"b": {"condition": "service_up"}}}}
    }
    assert not validator.is_valid(misspelt)
    assert not validator.is_valid(bad_condition)


def test_compose_needs_the_run_directory_that_gameday_up_makes() -> None:
    with pytest.raises(ValueError, match="GAMEDAY_RUN_DIR: run `gameday up --target compose`"):
        interpolate(COMPOSE, {})


# --- the same stack as the local target -------------------------------------------------


def test_the_services_are_the_local_stacks_components(local: LocalDeployment) -> None:
    components = [c.name for c in local.components()]
    assert [c.name for c in local.infrastructure()] == list(INFRASTRUCTURE)
    missing = sorted(set(components) - set(SERVICES))
    assert not missing, f"compose.yaml lacks local components: {missing}"
    assert set(SERVICES) == {*components, *EXTRAS, *ONE_SHOT}
    compose = ComposeDeployment(run_dir=Path("/nonexistent-run"), project="x")
    assert compose.services() == [*components, *EXTRAS]


def test_every_pipeline_service_runs_the_local_command_on_its_config(
    local: LocalDeployment,
) -> None:
    for component in local.pipeline.components():
        command = SERVICES[component.name]["command"]
        module = component.argv[1:3]  # ("-m", "pipeline.X")
        config = f"/gameday/pipeline/{component.name}.json"
        assert command[-5:] == ["python", *module, "--config", config], component.name
        assert SERVICES[component.name]["image"] == "gameday/pipeline:dev"


def test_every_port_a_pipeline_config_names_is_a_service_listening_there() -> None:
    configs = composefiles.pipeline_configs(time_scale=1.0, settings={})
    ports, owners = composefiles.container_ports(), composefiles.owners()
    addresses = re.findall(r"([a-z0-9.-]+):(\d+)", json.dumps(configs))
    assert addresses
    for host, port in addresses:
        assert host in SERVICES, host
        assert owners[int(port)] == host, f"{host}:{port}"
    assert "127.0.0.1:" not in json.dumps(configs)  # no address left on the host's loopback
    assert set(ports.values()) == set(owners)  # every container port distinct
    for name, config_type in CONFIG_TYPES.items():
        from_mapping(config_type, configs[name], source=name)  # loads as the service does
    for name in (n for n in configs if n.startswith("edge-")):
        edge = from_mapping(EdgeConfig, configs[name], source=name)
        assert edge.host == "0.0.0.0"
        assert composefiles.NETWORK_GATEWAY in edge.connection_cap_exempt


def test_the_links_are_the_local_stacks(local: LocalDeployment) -> None:
    committed = json.loads((ROOT / "infra/compose/toxiproxy.json").read_text())
    assert committed == composefiles.proxies()
    local_ports = local.ports
    service_at = {port: name for name, port in local_ports.items()}
    expected = links(local_ports)
    assert [p["name"] for p in committed] == [link.name for link in expected]
    owners = composefiles.owners()
    for proxy, link in zip(committed, expected, strict=True):
        upstream_host, upstream_port = proxy["upstream"].rsplit(":", 1)
        # the same component at the other end, by its port name
        name = service_at[link.upstream_port]
        assert composefiles.container_ports()[name] == int(upstream_port), link.name
        assert owners[int(upstream_port)] == upstream_host
        assert proxy["enabled"] is True
    toxiproxy = SERVICES["toxiproxy"]
    assert "-config=/config/toxiproxy.json" in toxiproxy["command"]
    assert "./infra/compose/toxiproxy.json:/config/toxiproxy.json:ro" in toxiproxy["volumes"]
    assert toxiproxy["image"] == f"ghcr.io/shopify/toxiproxy:{_versions()['TOXIPROXY_VERSION']}"


def test_prometheus_scrapes_the_local_jobs_and_loads_the_generated_rules(
    local: LocalDeployment, tmp_path: Path
) -> None:
    rendered = yaml.safe_load(composefiles.prometheus_yml(45555))
    jobs = [s["job_name"] for s in rendered["scrape_configs"]]
    assert jobs == list(local.scrape_targets())
    (glob,) = rendered["rule_files"]
    mount = next(v for v in SERVICES["prometheus"]["volumes"] if v.endswith(":/gameday/prometheus"))
    assert mount == "${GAMEDAY_RUN_DIR}/prometheus:/gameday/prometheus"
    assert glob == "/gameday/prometheus/rules/*.yml"
    # load_rules writes into RUN/prometheus/rules (test_compose_target runs it), which is
    # /gameday/prometheus/rules in the container; every generated file matches the glob
    deployment = ComposeDeployment(run_dir=tmp_path, project="x")
    rules_dir = deployment.run_dir / "prometheus" / "rules"
    assert f"/gameday/{rules_dir.relative_to(deployment.run_dir)}/*.yml" == glob
    files = rule_files(load(default_specs()), time_scale=10)
    assert files
    assert all(name.endswith(".yml") and "/" not in name for name in files)


def test_grafana_is_provisioned_with_what_the_dashboard_generator_writes(tmp_path: Path) -> None:
    base = ROOT / "infra/compose/grafana/provisioning"
    assert (base / "datasources/prometheus.yaml").read_text() == provisioning.datasources_yaml()
    assert (base / "dashboards/gameday.yaml").read_text() == provisioning.dashboards_yaml()
    grafana = SERVICES["grafana"]
    assert "./infra/compose/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    dashboards = f"${{GAMEDAY_RUN_DIR}}/grafana/dashboards:{provisioning.DASHBOARDS_PATH}:ro"
    assert dashboards in grafana["volumes"]
    deployment = ComposeDeployment(run_dir=tmp_path, project="x")
    assert deployment.dashboards_dir == deployment.run_dir / "grafana" / "dashboards"
    # the datasource reaches compose's Prometheus by its service name and port
    url = provisioning.PROMETHEUS_URL.removeprefix("http://")
    assert url == f"prometheus:{composefiles.container_ports()['prometheus']}"


def test_environment_names_are_pipeline_envs(local: LocalDeployment) -> None:
    tree = ast.parse((ROOT / "pipeline/env.py").read_text())
    declared = {
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and str(node.value.value).startswith("GAMEDAY_")
    }
    used = set(re.findall(r"\bGAMEDAY_[A-Z0-9_]+", COMPOSE_TEXT))
    assert used, "compose.yaml names no GAMEDAY_* variable"
    assert used <= declared, f"not in pipeline/env.py: {sorted(used - declared)}"
    assert env.RUN_DIR in used
    for name in _pipeline_services(local):
        assert SERVICES[name]["environment"]["GAMEDAY_TRACING"] == "${GAMEDAY_TRACING:-on}"
    written = composefiles.compose_env(
        run_dir=Path("/r"),
        host_ports=dict.fromkeys(composefiles.HOST_PORT_NAMES, 1),
        kafka_cluster_id="k",
        uid=1,
        gid=1,
    )
    for key in re.findall(r"^([A-Z0-9_]+)=", written, re.MULTILINE):
        assert f"${{{key}" in COMPOSE_TEXT, f"compose.env sets {key}, compose.yaml never reads it"


# --- ports, secrets, health -------------------------------------------------------------


def test_every_port_is_published_on_loopback_at_the_port_compose_env_names() -> None:
    published = {
        (name, port) for name, service in SERVICES.items() for _, _, port in _published(service)
    }
    expected = {(service, port) for service, port in published_ports().values()}
    assert published == expected
    for name, service in SERVICES.items():
        for host_ip, host_port, _ in _published(service):
            assert host_ip == "127.0.0.1", name
            assert re.fullmatch(r"\$\{HOST_PORT_[A-Z0-9_]+:-\d+\}", host_port), host_port
    for port_name, (service, port) in published_ports().items():
        variable = composefiles.host_port_variable(port_name)
        entries = [e for e in _published(SERVICES[service]) if e[1].startswith(f"${{{variable}:-")]
        assert [e[2] for e in entries] == [port], port_name


def test_no_secret_value_is_committed_and_secrets_are_files_gameday_up_makes(
    local: LocalDeployment,
) -> None:
    secrets = COMPOSE["secrets"]
    assert set(secrets) == {"admin-token", "grafana-admin-password", "corrections-tokens"}
    for secret in secrets.values():
        assert set(secret) == {"file"}
        assert secret["file"].startswith("${GAMEDAY_RUN_DIR")
    for service in SERVICES.values():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|TOKEN|SECRET|KEY", key):
                assert key.endswith("__FILE"), key  # a file's path, never the value
                assert str(value).startswith("/run/secrets/"), key
    configs = composefiles.pipeline_configs(time_scale=1.0, settings={})
    for name, config in configs.items():
        wanted = {Path(str(config[f])).name for f in composefiles.SECRET_FIELDS if f in config}
        assert wanted <= set(SERVICES[name].get("secrets", [])), name
    assert "admin-token" in SERVICES["alertmanager"]["secrets"]
    assert "credentials_file: /run/secrets/admin-token" in composefiles.alertmanager_yml()


def test_every_service_is_health_checked_and_started_after_what_it_needs() -> None:
    own_healthcheck = {"jaeger"}  # the image declares its HEALTHCHECK
    for name, service in SERVICES.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no"
        elif name not in own_healthcheck:
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        for dependency, condition in (service.get("depends_on") or {}).items():
            wanted = (
                "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            )
            assert condition == {"condition": wanted}, (name, dependency)
        assert "restart" not in service or name in ONE_SHOT, f"{name}: a killed service stays down"
    for name in ("ingest", "scorekeeper", "corrections"):
        assert "kafka-init" in SERVICES[name]["depends_on"]


def test_each_pipeline_healthcheck_probes_its_own_container_port(local: LocalDeployment) -> None:
    ports = composefiles.container_ports()
    for component in local.pipeline.components():
        test = SERVICES[component.name]["healthcheck"]["test"]
        assert test[:4] == ["CMD", "python", "-m", "pipeline.deploy.probe"]
        address = next(a for a in test[4:] if "127.0.0.1:" in a)
        port = int(re.search(r"127\.0\.0\.1:(\d+)", address).group(1))  # type: ignore[union-attr]
        assert composefiles.owners()[port] == component.name
        local_port = int(component.url.rsplit(":", 1)[1])
        local_name = next(n for n, p in local.ports.items() if p == local_port)
        assert ports[local_name] == port, component.name  # the port the local check uses


def test_every_service_listens_beyond_its_container_loopback(local: LocalDeployment) -> None:
    """Locally every listener is on 127.0.0.1; in a container that would be unreachable."""
    local_configs = local.pipeline.configs()
    configs = composefiles.pipeline_configs(time_scale=1.0, settings={})
    for name, config in configs.items():
        assert config.get("host") == "0.0.0.0", name
        assert local_configs[name].get("host", "127.0.0.1") == "127.0.0.1", name


def test_kafka_is_apache_kafka_with_the_topics_the_pipeline_uses() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    version = _versions()["KAFKA_VERSION"]
    assert f"FROM apache/kafka:{version} AS kafka" in dockerfile
    assert SERVICES["kafka"]["image"] == f"gameday/kafka:{version}"
    assert SERVICES["kafka"]["build"]["target"] == "kafka"
    script = SERVICES["kafka-init"]["command"][0]
    topics = {}
    for part in script.split("&&"):
        words = shlex.split(part)
        if "--topic" in words:
            topics[words[words.index("--topic") + 1]] = int(words[words.index("--partitions") + 1])
    assert topics == {SCORE_TOPIC: SCORE_TOPIC_PARTITIONS, FEED_TOPIC: 1}
    environment = SERVICES["kafka"]["environment"]
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    metrics = composefiles.container_ports()["kafka-metrics"]
    assert f"jmx_prometheus_javaagent.jar={metrics}:" in environment["KAFKA_OPTS"]


def test_the_pipeline_image_holds_every_module_compose_runs() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "pipeline" not in ignored
    for service in SERVICES.values():
        command = service.get("command") or []
        for i, word in enumerate(command[:-1]):
            if word == "-m" and command[i + 1].startswith("pipeline."):
                module = command[i + 1].replace(".", "/")
                assert (ROOT / f"{module}.py").exists() or (ROOT / module).is_dir(), module


def test_the_compose_network_gateway_is_the_one_edges_exempt() -> None:
    (config,) = COMPOSE["networks"]["default"]["ipam"]["config"]
    assert config == {
        "subnet": composefiles.NETWORK_SUBNET,
        "gateway": composefiles.NETWORK_GATEWAY,
    }


def _versions() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (ROOT / "infra/versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return dict(pairs)


def test_pipeline_ports_all_have_a_container_port() -> None:
    ports = composefiles.container_ports()
    assert set(PIPELINE_PORTS) <= set(ports)
