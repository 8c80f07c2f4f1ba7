"""Control endpoints under bad requests: the feed's stadium control, the rollout
controller and ingest's fallback switch. A missing or wrong bearer token is 401 with a
JSON error; a malformed body is 400 naming the problem; nothing answers 5xx. And every
listener of the stack binds 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from support import KafkaTwin

from pipeline.config import from_mapping
from pipeline.control import ControlConfig, Controller
from pipeline.deploy.services import PipelineLayout
from pipeline.edge import Edge, EdgeConfig
from pipeline.feed import FeedConfig
from pipeline.feed.control import ControlApp
from pipeline.feed.primary import PrimaryApp
from pipeline.feed.vendor import Vendor
from pipeline.ingest import Ingest, IngestConfig, control_app
from pipeline.telemetry import Metrics

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WEB = Path(__file__).resolve().parents[2] / "pipeline" / "web"
DEEP = b"[" * 5_000 + b"]" * 5_000
"""Deeper than Python's JSON decoder can recurse (and within every body limit)."""
BAD_CREDENTIALS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": "Bearer  x"},
    {"Authorization": TOKEN},
]


def feed_app(tmp_path: Path) -> tuple[web.Application, Vendor]:
    vendor = Vendor()
    return ControlApp(vendor, TOKEN).build(), vendor


def rollout_app(tmp_path: Path) -> web.Application:
    token = tmp_path / "admin-token"
    token.write_text(TOKEN + "\n")
    config = ControlConfig(
        port=1,
        admin_token_file=token,
        edges={"us-east": "http://127.0.0.1:1", "eu-west": "http://127.0.0.1:2"},
        canary_region="eu-west",
        canary_url="http://127.0.0.1:3",
        ingest_control_url="http://127.0.0.1:4",
    )
    return Controller(config, metrics=Metrics()).build()


def ingest_app() -> tuple[web.Application, Ingest]:
    config = IngestConfig(
        primary_url="http://127.0.0.1:1",
        secondary_url="http://127.0.0.1:1",
        kafka_bootstrap="127.0.0.1:1",
        topic="match-events",
        feed_topic="feed-status",
        metrics_port=0,
    )
    ingest = Ingest(config, metrics=Metrics())
    ingest.kafka = KafkaTwin()  # type: ignore[assignment]
    app = control_app(ingest, TOKEN)

    async def close(_app: web.Application) -> None:
        await ingest._http.aclose()

    app.on_cleanup.append(close)
    return app, ingest


def against(app: web.Application, check: Callable[[httpx.AsyncClient], Any]) -> None:
    async def scenario() -> None:
        async with TestServer(app) as server:
            base = str(server.make_url("")).rstrip("/")
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                await check(client)

    asyncio.run(scenario())


async def refused(
    client: httpx.AsyncClient,
    path: str,
    status: int,
    text: str,
    *,
    body: bytes = b"{}",
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    answer = await client.post(
        path, content=body, headers={"Content-Type": content_type, **(AUTH | (headers or {}))}
    )
    assert answer.status_code == status, (path, body[:40], answer.text[:200])
    assert text in answer.json()["error"], answer.text[:200]


POSTS = {
    "feed": ["/v1/matches/gha-pan/events", "/v1/feed/primary"],
    "rollout": ["/v1/rollout", "/v1/alerts"],
    "ingest": ["/v1/feed/fallback"],
}


def each_app(tmp_path: Path) -> dict[str, web.Application]:
    return {
        "feed": feed_app(tmp_path)[0],
        "rollout": rollout_app(tmp_path),
        "ingest": ingest_app()[0],
    }


@pytest.mark.parametrize("name", sorted(POSTS))
def test_every_control_post_wants_the_bearer_token_and_says_so_in_json(
    tmp_path: Path, name: str
) -> None:
    async def check(client: httpx.AsyncClient) -> None:
        for path in POSTS[name]:
            for credentials in BAD_CREDENTIALS:
                answer = await client.post(
                    path, content=b"{}", headers={"Content-Type": "application/json"} | credentials
                )
                assert answer.status_code == 401, (path, credentials)
                assert "token" in answer.json()["error"]
                # a client that sends no Authorization at all is not told the token
                assert TOKEN not in answer.text

    against(each_app(tmp_path)[name], check)


@pytest.mark.parametrize("name", sorted(POSTS))
def test_every_control_post_answers_a_hostile_body_with_400_never_5xx(
    tmp_path: Path, name: str
) -> None:
    hostile = [b"{nope", b"\xff\xfe", DEEP, b"null", b'"text"', b"42", b"[]", b"[{}]"]

    async def check(client: httpx.AsyncClient) -> None:
        for path in POSTS[name]:
            for body in hostile:
                answer = await client.post(
                    path, content=body, headers={**AUTH, "Content-Type": "application/json"}
                )
                if name == "feed" and path.endswith("/events") and body in (b"[]", b"[{}]"):
                    assert answer.status_code == 202  # a list of packets: posted, as is
                    continue
                assert answer.status_code == 400, (path, body[:20], answer.text[:200])
                assert answer.json()["error"]

    against(each_app(tmp_path)[name], check)


def test_the_rollout_controller_names_what_is_wrong_in_a_body(tmp_path: Path) -> None:
    async def check(client: httpx.AsyncClient) -> None:
        for body, text in [
            ({"share": "0.5"}, '{"share": 0..1}'),
            ({"share": True}, '{"share": 0..1}'),
            ({"share": None}, '{"share": 0..1}'),
            ({"share": 1.5}, "[0, 1]"),
            ({"share": -0.1}, "[0, 1]"),
            ({"action": "self-destruct"}, '{"action": "rollback"}'),
        ]:
            await refused(client, "/v1/rollout", 400, text, body=json.dumps(body).encode())
        await refused(client, "/v1/rollout", 400, "[0, 1]", body=b'{"share": NaN}')
        for body in ({"alerts": "firing"}, {"alerts": {"a": 1}}, {"no": "alerts"}):
            await refused(client, "/v1/alerts", 400, "Alertmanager", body=json.dumps(body).encode())
        # Alerts of the wrong shape inside a list are skipped, not acted on.
        odd = {"alerts": [{"status": "firing", "labels": "x"}, {"status": "firing", "labels": 7}]}
        answer = await client.post("/v1/alerts", json=odd, headers=AUTH)
        assert answer.status_code == 200
        assert answer.json() == {"decisions": []}
        state = (await client.get("/v1/rollout")).json()
        assert (state["state"], state["share"]) == ("idle", 0.0)  # nothing changed

    against(rollout_app(tmp_path), check)


def test_the_stadium_control_names_what_is_wrong_and_emits_nothing_for_it(
    tmp_path: Path,
) -> None:
    app, vendor = feed_app(tmp_path)

    async def check(client: httpx.AsyncClient) -> None:
        await refused(client, "/v1/matches/gha-pan/events", 400, "nests too deeply", body=DEEP)
        await refused(client, "/v1/matches/gha-pan/events", 400, "not JSON", body=b"\xff")
        await refused(client, "/v1/matches/Ghana%20v%20Panama/events", 400, "HOME-AWAY")
        await refused(client, "/v1/matches/gha-pan/events", 413, "exceeds", body=b" " * 2**21)
        await refused(client, "/v1/feed/primary", 400, "mode", body=b'{"mode": "loud"}')
        assert list(vendor.history) == []
        assert vendor.mode == "normal"

    against(app, check)


def test_ingests_fallback_switch_refuses_bad_bodies_and_obeys_a_good_one() -> None:
    app, ingest = ingest_app()

    async def check(client: httpx.AsyncClient) -> None:
        await refused(client, "/v1/feed/fallback", 400, '{"reason": "..."}', body=b"[1]")
        assert not ingest.fallback
        answer = await client.post("/v1/feed/fallback", json={"reason": "drill"}, headers=AUTH)
        assert answer.status_code == 200
        assert ingest.fallback

    against(app, check)


# --- where things listen ---------------------------------------------------------------------


def test_every_configurable_listener_defaults_to_loopback() -> None:
    for config in (FeedConfig, EdgeConfig, ControlConfig):
        hosts = [f for f in dataclasses.fields(config) if f.name == "host"]
        assert [f.default for f in hosts] == ["127.0.0.1"], config.__name__


def test_the_stack_configures_every_service_on_loopback_only() -> None:
    configs = PipelineLayout(defaultdict(lambda: 1), Path("/run")).configs()
    seen = 0
    for service, config in configs.items():
        for key, value in config.items():
            for text in value if isinstance(value, list) else [value]:
                if key == "host" or (isinstance(text, str) and "127.0.0.1" in text):
                    assert (
                        text == "127.0.0.1"
                        or "://127.0.0.1:" in text
                        or text.startswith("127.0.0.1:")
                    ), (service, key, text)
                    seen += 1
                if isinstance(text, str):
                    assert "0.0.0.0" not in text, (service, key)
    assert seen > 10


def test_the_edges_connection_cap_spares_the_harness_on_127_0_0_1() -> None:
    """`gameday bench fanout` runs 20,000 fans from 127.0.0.1 against the stack's edges."""
    configs = PipelineLayout(defaultdict(lambda: 1), Path("/run")).configs()
    edges = {name: config for name, config in configs.items() if name.startswith("edge-")}
    assert edges
    for name, raw in edges.items():
        settings = {**raw, "web_dir": str(WEB), "admin_token_file": None}
        config = from_mapping(EdgeConfig, settings, source=name)
        edge = Edge(config, metrics=Metrics())
        assert all(edge.admit("127.0.0.1") for _ in range(20_000)), name
        assert config.max_connections_per_address > 0
        assert not all(edge.admit("127.0.0.2") for _ in range(20_000)), name


def test_the_vendors_replay_refuses_a_bad_after_or_match_id_with_400() -> None:
    vendor = Vendor()
    good = {
        "event_id": "k1",
        "match_id": "gha-pan",
        "seq": 1,
        "type": "kickoff",
        "occurred_at": "2026-12-04T15:00:00.000Z",
    }
    vendor.post("gha-pan", [json.dumps(good).encode()])
    app = PrimaryApp(vendor, heartbeat_s=1.0).build()

    async def check(client: httpx.AsyncClient) -> None:
        for after in ("-1", "abc", "9" * 5_000, "\u00b2", "1.5"):
            answer = await client.get("/v1/matches/gha-pan/events", params={"after": after})
            assert answer.status_code == 400, after[:20]
            assert "after must be" in answer.json()["error"]
        answer = await client.get("/v1/matches/%3Cscript%3E/events")
        assert answer.status_code == 400
        assert "HOME-AWAY" in answer.json()["error"]
        answer = await client.get("/v1/matches/gha-pan/events", params={"after": "0"})
        assert [event["seq"] for event in answer.json()] == [1]

    against(app, check)
