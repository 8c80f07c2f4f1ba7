"""The compose target's code against Docker Engine API exchanges, without an engine.

A small replay server on a unix socket answers the docker SDK from JSON cassettes
(tests/unit/data/docker/, transcribed from the Engine API reference: see the README
there), so the SDK's real HTTP requests are checked: the method, path and query each
fault sends to which container, and what the deployment makes of the engine's answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import socketserver
import stat
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import docker
import jsonschema
import pytest

from pipeline.deploy import (
    ComponentFailed,
    ComposeDeployment,
    DeployError,
    Engine,
    LocalDeployment,
    Tools,
    open_deployment,
)
from pipeline.deploy.composefiles import HOST_PORT_NAMES, host_port_variable
from pipeline.deploy.engine import API_VERSION
from pipeline.deploy.process import _read_stat

DATA = Path(__file__).parent / "data" / "docker"
DEFINITIONS = json.loads((DATA / "engine-api-definitions.json").read_text())
CASSETTES = sorted(p.name for p in DATA.glob("*.json") if p.name != "engine-api-definitions.json")


def _id(cassette: dict[str, Any], service: str) -> str:
    """The id of `service`'s (non one-off) container in the cassette's listing."""
    listing = cassette["standing"][0]["response"]["body"]
    return next(
        str(c["Id"])
        for c in listing
        if c["Labels"]["com.docker.compose.service"] == service
        and c["Labels"]["com.docker.compose.oneoff"] == "False"
    )


# --- the replay engine ------------------------------------------------------------------


class Replay:
    """Answers requests from a cassette: `standing` ones any number of times, the
    `interactions` once each, in order. Anything else is an error the test reports."""

    def __init__(self, cassette: dict[str, Any]) -> None:
        self.standing = cassette["standing"]
        self.pending = list(cassette["interactions"])
        self.served: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()

    @staticmethod
    def matches(expected: dict[str, Any], method: str, path: str, query: dict[str, str]) -> bool:
        if expected["method"] != method or expected["path"] != path:
            return False
        for key, value in expected.get("query", {}).items():
            got = query.get(key)
            if key == "filters" and got is not None:
                if json.loads(got) != json.loads(value):
                    return False
            elif got != value:
                return False
        return True

    def answer(self, method: str, target: str) -> tuple[int, Any]:
        split = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        with self.lock:
            self.served.append((method, target))
            if self.pending and self.matches(self.pending[0]["request"], method, split.path, query):
                response = self.pending.pop(0)["response"]
                return int(response["status"]), response.get("body")
            for standing in self.standing:
                if self.matches(standing["request"], method, split.path, query):
                    return int(standing["response"]["status"]), standing["response"].get("body")
            wanted = self.pending[0]["request"] if self.pending else "nothing more"
            self.errors.append(f"unexpected {method} {target}; the cassette wanted {wanted}")
            return 500, {"message": "replay: request not in the cassette"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, body = self.server.replay.answer(self.command, self.path)
        self.send_response(status)
        if body is None:
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _serve
    do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, replay: Replay) -> None:
        self.replay = replay
        super().__init__(path, _Handler)


EngineFactory = Callable[[str], tuple[Engine, Replay, dict[str, Any]]]


@pytest.fixture
def engine_from(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineFactory]:
    """An Engine whose docker SDK client talks to a replay of the named cassette."""
    opened: list[tuple[_Server, Any, Replay]] = []

    def make(name: str) -> tuple[Engine, Replay, dict[str, Any]]:
        cassette = json.loads((DATA / name).read_text())
        replay = Replay(cassette)
        sock = tmp_path_factory.mktemp("engine") / "docker.sock"
        server = _Server(str(sock), replay)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        client = docker.DockerClient(base_url=f"unix://{sock}", version=API_VERSION, timeout=5)
        opened.append((server, client, replay))
        return Engine(cassette["project"], client=client), replay, cassette

    yield make
    for server, client, replay in opened:
        client.close()
        server.shutdown()
        server.server_close()
        assert not replay.errors, replay.errors


def _deployment(tmp_path: Path, engine: Engine, **host_ports: int) -> ComposeDeployment:
    """A compose deployment whose run directory says it is up, with these host ports."""
    ports = {name: 42000 + i for i, name in enumerate([*HOST_PORT_NAMES, "drill-metrics"])}
    ports |= {name.replace("_", "-"): port for name, port in host_ports.items()}
    state = {
        "target": "compose",
        "project": engine.project,
        "time_scale": 1.0,
        "settings": {},
        "kafka_cluster_id": "MkU3OEVBNTcwNTJENDM2Qk",
        "host_ports": ports,
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "state.json").write_text(json.dumps(state))
    return ComposeDeployment(run_dir=tmp_path, engine=engine, poll_s=0.01, startup_timeout_s=5)


# --- the cassettes ----------------------------------------------------------------------


@pytest.mark.parametrize("name", CASSETTES)
def test_cassette_bodies_follow_the_engine_api_definitions(name: str) -> None:
    cassette = json.loads((DATA / name).read_text())
    assert cassette["source"].startswith("Transcribed from the Docker Engine API reference")
    exchanges = [*cassette["standing"], *cassette["interactions"]]
    assert exchanges
    for exchange in exchanges:
        assert exchange["request"]["path"].startswith(f"/v{API_VERSION}/")
        response = exchange["response"]
        if "body" not in response:
            assert response["status"] in (204, 304), exchange
            continue
        schema = {"$ref": f"#/definitions/{response['schema']}", **DEFINITIONS}
        jsonschema.Draft7Validator(schema).validate(response["body"])


def test_the_definitions_refuse_what_the_engine_would_not_send() -> None:
    inspect = {"$ref": "#/definitions/ContainerInspect", **DEFINITIONS}
    validator = jsonschema.Draft7Validator(inspect)
    assert not validator.is_valid({"State": {"Status": "running"}})  # no Id
    assert not validator.is_valid({"Id": "x", "State": {"Status": "sleeping"}})
    assert not validator.is_valid({"Id": "x", "State": {"Health": {"Status": "fine"}}})
    summary = {"$ref": "#/definitions/ContainerSummaryList", **DEFINITIONS}
    assert not jsonschema.Draft7Validator(summary).is_valid([{"Ports": [{"PrivatePort": 1}]}])


# --- the docker SDK against the replayed engine ----------------------------------------


def test_services_are_found_by_compose_labels_and_one_off_runs_are_not(
    engine_from: EngineFactory,
) -> None:
    engine, _, cassette = engine_from("kill-scorekeeper.json")
    containers = engine.containers()
    assert set(containers) == {"scorekeeper", "edge-eu-west", "feed", "redis-a", "kafka-init"}
    assert containers["scorekeeper"] == _id(cassette, "scorekeeper")
    with pytest.raises(DeployError, match=r"no service 'grafana' in compose project gameday-test"):
        engine.container("grafana")


def test_killing_a_service_sends_sigkill_to_its_container(
    engine_from: EngineFactory, tmp_path: Path
) -> None:
    engine, replay, cassette = engine_from("kill-scorekeeper.json")
    asyncio.run(_deployment(tmp_path, engine).kill("scorekeeper"))
    assert not replay.pending
    assert ("POST", f"/v{API_VERSION}/containers/{_id(cassette, 'scorekeeper')}/kill") in (
        replay.served
    )


def test_pause_and_resume_freeze_and_thaw_the_same_container(
    engine_from: EngineFactory, tmp_path: Path
) -> None:
    engine, replay, cassette = engine_from("pause-resume-edge.json")
    deployment = _deployment(tmp_path, engine)
    asyncio.run(deployment.pause("edge-eu-west"))
    asyncio.run(deployment.resume("edge-eu-west"))
    assert not replay.pending
    edge = _id(cassette, "edge-eu-west")
    posts = [target for method, target in replay.served if method == "POST"]
    assert posts == [f"/v{API_VERSION}/containers/{edge}/{a}" for a in ("pause", "unpause")]


def test_a_refused_fault_says_what_the_engine_said(
    engine_from: EngineFactory, tmp_path: Path
) -> None:
    engine, _, _ = engine_from("pause-not-running.json")
    with pytest.raises(DeployError, match=r"pause edge-eu-west: Container \w+ is not running"):
        asyncio.run(_deployment(tmp_path, engine).pause("edge-eu-west"))


def test_a_fault_on_a_service_the_stack_lacks_names_the_known_ones(tmp_path: Path) -> None:
    deployment = _deployment(tmp_path, Engine("gameday-test", client=object()))
    with pytest.raises(DeployError, match=r"no service 'edge-mars'; known: .*edge-eu-west"):
        asyncio.run(deployment.kill("edge-mars"))


def test_start_waits_until_the_healthcheck_passes(
    engine_from: EngineFactory, tmp_path: Path
) -> None:
    engine, replay, cassette = engine_from("start-edge-until-healthy.json")
    asyncio.run(_deployment(tmp_path, engine).start("edge-eu-west"))
    assert not replay.pending  # inspected until healthy, not just started
    edge = _id(cassette, "edge-eu-west")
    assert ("POST", f"/v{API_VERSION}/containers/{edge}/start") in replay.served


def test_start_reports_a_container_that_exits_again(
    engine_from: EngineFactory, tmp_path: Path
) -> None:
    engine, _, _ = engine_from("start-edge-fails.json")
    with pytest.raises(ComponentFailed, match=r"edge-eu-west: container is exited \(exit code 2\)"):
        asyncio.run(_deployment(tmp_path, engine).start("edge-eu-west"))


def test_status_is_the_engines_health_per_service(
    engine_from: EngineFactory, tmp_path: Path
) -> None:
    engine, replay, _ = engine_from("status.json")
    deployment = _deployment(
        tmp_path,
        engine,
        scorekeeper_metrics=41020,
        edge_eu_west=41102,
        feed_control=41000,
        feed_primary=41001,
        feed_secondary=41999,  # compose.env says so; the container publishes 41002
    )
    status = asyncio.run(deployment.status())
    assert not replay.pending
    services = status.services
    assert services["scorekeeper"].healthy
    assert services["scorekeeper"].pid == 4242
    assert services["scorekeeper"].url == "http://127.0.0.1:41020"
    assert services["redis-a"].healthy
    assert services["edge-eu-west"].detail == "healthcheck: unhealthy"
    assert not services["feed"].healthy
    assert "8002 -> 127.0.0.1:41999" in str(services["feed"].detail)
    assert "no container" in str(services["kafka"].detail)
    assert "kafka-init" not in services  # a one-shot job, not a service
    assert not status.healthy
    assert status.to_json()["target"] == "compose"


def test_configure_restarts_only_what_the_setting_touches(
    engine_from: EngineFactory, tmp_path: Path
) -> None:
    engine, replay, cassette = engine_from("restart-for-settings.json")
    deployment = _deployment(tmp_path, engine)
    restarted = asyncio.run(deployment.configure({"edge-eu-west.replay_enabled": False}))
    assert restarted == ["edge-eu-west"]
    assert not replay.pending
    edge = _id(cassette, "edge-eu-west")
    assert ("POST", f"/v{API_VERSION}/containers/{edge}/restart?t=10") in replay.served
    config = json.loads((tmp_path / "pipeline" / "edge-eu-west.json").read_text())
    assert config["replay_enabled"] is False
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["settings"] == {"edge-eu-west.replay_enabled": False}


# --- up, endpoints, the target a run directory holds -----------------------------------


def test_load_rules_writes_the_generated_rules_where_compose_mounts_them(tmp_path: Path) -> None:
    """A Prometheus twin on 127.0.0.1 stands for the container's published port."""
    from aiohttp import web

    from slo.rules import dump, rule_files
    from slo.spec import default_specs, load

    files = {n: dump(c) for n, c in rule_files(load(default_specs()), time_scale=10).items()}
    reloads: list[str] = []

    async def scenario() -> list[str]:
        async def reload(_request: web.Request) -> web.Response:
            reloads.append("reload")
            return web.Response(text="")

        async def rules(_request: web.Request) -> web.Response:
            names = sorted((tmp_path / "prometheus" / "rules").iterdir())
            return web.json_response({"data": {"groups": [{"name": p.stem} for p in names]}})

        app = web.Application()
        app.router.add_post("/-/reload", reload)
        app.router.add_get("/api/v1/rules", rules)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            engine = Engine("gameday-test", client=object())
            deployment = _deployment(tmp_path, engine, prometheus=port)
            return await deployment.load_rules(files)
        finally:
            await runner.cleanup()

    groups = asyncio.run(scenario())
    assert reloads == ["reload"]
    for name, text in files.items():
        assert (tmp_path / "prometheus" / "rules" / name).read_text() == text
    assert groups == sorted(Path(n).stem for n in files)


class _Compose:
    """Records `docker compose` command lines; `up` fails (no engine here)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def __call__(self, argv: Any, log_path: Path) -> int:
        self.calls.append(list(argv))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a") as log:
            log.write("Error response from daemon: no engine in a unit test\n")
        return 1 if "up" in argv else 0


def test_a_fresh_up_makes_secrets_and_configs_then_runs_compose_up_wait(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    compose = _Compose()
    deployment = ComposeDeployment(
        run_dir=run_dir, engine=Engine("gameday-x", client=object()), runner=compose
    )
    with pytest.raises(ComponentFailed, match=r"docker compose: up exited with 1") as failed:
        asyncio.run(deployment.up())
    assert "no engine in a unit test" in failed.value.log_tail
    for secret in ("admin-token", "grafana-admin-password", "corrections-tokens.json"):
        assert stat.S_IMODE((run_dir / secret).stat().st_mode) == 0o600, secret
    env_file = (run_dir / "compose.env").read_text()
    assert f"GAMEDAY_RUN_DIR='{run_dir.resolve()}'" in env_file
    state = json.loads((run_dir / "state.json").read_text())
    for name in HOST_PORT_NAMES:
        assert f"{host_port_variable(name)}='{state['host_ports'][name]}'" in env_file
    assert (run_dir / "admin-token").read_text() not in env_file
    versions, up, down = compose.calls
    assert versions[:3] == ["docker", "compose", "version"]
    assert up[up.index("--env-file") + 1] == str(run_dir.resolve() / "compose.env")
    assert up[up.index("--project-name") + 1] == "gameday-x"
    assert up[up.index("--file") + 1].endswith("compose.yaml")
    assert {"up", "--detach", "--wait"} <= set(up)
    assert {"down", "--volumes"} <= set(down)  # what failed to start is removed again
    edge = json.loads((run_dir / "pipeline" / "edge-eu-west.json").read_text())
    assert edge["sentinels"][0] == "sentinel-1:26379"
    assert edge["admin_token_file"] == "/run/secrets/admin-token"
    for directory in ("traces", "audit", "prometheus/rules", "grafana/dashboards"):
        assert (run_dir / directory).is_dir()


def _fake_tools(root: Path) -> Tools:
    paths = {f: root / f for f in Tools.__dataclass_fields__ if not f.endswith("_version")}
    versions = {f: "0" for f in Tools.__dataclass_fields__ if f.endswith("_version")}
    return Tools(**paths, **versions)  # type: ignore[arg-type]


def test_endpoints_have_every_key_of_the_local_stack_on_loopback(tmp_path: Path) -> None:
    local = LocalDeployment(run_dir=tmp_path / "local", tools=_fake_tools(tmp_path))
    local._fresh_layout()
    compose = _deployment(tmp_path / "compose", Engine("gameday-test", client=object()))
    endpoints, local_endpoints = compose.endpoints(), local.endpoints()
    assert set(local_endpoints) <= set(endpoints)
    assert set(endpoints["edges"]) == set(local_endpoints["edges"])
    assert set(endpoints["links"]) == set(local_endpoints["links"])
    urls = [v for k, v in endpoints.items() if isinstance(v, str) and k.endswith(("_api", "s"))]
    urls += [*endpoints["edges"].values(), *endpoints["redis_sentinels"]]
    urls += [endpoints["prometheus"], endpoints["kafka_bootstrap"], endpoints["feed_control"]]
    for url in urls:
        assert url.split("//")[-1].startswith("127.0.0.1:"), url
    assert endpoints["admin_token_file"] == str(tmp_path.resolve() / "compose" / "admin-token")


def test_each_command_opens_the_target_the_run_directory_holds(tmp_path: Path) -> None:
    assert isinstance(open_deployment(tmp_path / "new"), LocalDeployment)
    assert isinstance(open_deployment(tmp_path / "new", target="compose"), ComposeDeployment)
    compose = _deployment(tmp_path / "c", Engine("gameday-test", client=object()))
    opened = open_deployment(compose.run_dir)
    assert isinstance(opened, ComposeDeployment)
    assert opened.project == "gameday-test"  # the state's project, not one made up
    with pytest.raises(DeployError, match="unknown target 'kubernetes'"):
        open_deployment(tmp_path / "new", target="kubernetes")


def test_a_running_stack_cannot_be_reopened_as_the_other_target(tmp_path: Path) -> None:
    stat_ = _read_stat(os.getpid())
    assert stat_ is not None
    state = {
        "target": "local",
        "ports": {},
        "processes": {"feed": {"pid": os.getpid(), "start_ticks": stat_[1]}},
    }
    (tmp_path / "state.json").write_text(json.dumps(state))
    with pytest.raises(DeployError, match=r"a local stack is running in .*`gameday down` first"):
        open_deployment(tmp_path, target="compose")
    assert isinstance(open_deployment(tmp_path), LocalDeployment)


# --- the containers' healthcheck ---------------------------------------------------------


def test_the_healthcheck_exits_0_only_when_the_local_probe_passes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from http.server import HTTPServer

    from pipeline.deploy.ports import free_ports
    from pipeline.deploy.probe import main

    class Metrics(BaseHTTPRequestHandler):
        connected = b"0"

        def do_GET(self) -> None:
            body = b"# TYPE gameday_feed_primary_connected gauge\n"
            body += b"gameday_feed_primary_connected " + self.connected + b"\n"
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        metric = "gameday_feed_primary_connected=1"
        assert main([f"{url}/metrics", "--metric", metric]) == 1
        assert "gameday_feed_primary_connected is 0, not 1" in capsys.readouterr().err
        Metrics.connected = b"1"
        assert main([f"{url}/metrics", "--metric", metric]) == 0
        assert main([f"{url}/metrics"]) == 0
        assert main([f"{url}/healthz"]) == 1
        assert "-> 404" in capsys.readouterr().err
    finally:
        server.shutdown()
        server.server_close()
    (closed,) = free_ports(["closed"]).values()
    assert main([f"http://127.0.0.1:{closed}/healthz", "--timeout-s", "0.5"]) == 1
    assert "failed: ConnectError" in capsys.readouterr().err
