"""The rollout controller: canary routing, and what it does with Alertmanager's webhook.

The canary edge's drain and ingest's fallback endpoint are small in-process twins here;
tests/integration/test_drill_guards.py and the bad-canary drill use the real ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from pipeline.control import ControlConfig, Controller, Rollout
from pipeline.telemetry import Metrics

TOKEN = "t0ken-for-tests"


def config(tmp_path: Path, **changes: Any) -> ControlConfig:
    token = tmp_path / "admin-token"
    token.write_text(TOKEN + "\n")
    base: dict[str, Any] = {
        "port": 1,
        "admin_token_file": token,
        "edges": {"us-east": "http://us", "eu-west": "http://eu"},
        "canary_region": "eu-west",
        "canary_url": "http://canary",
        "ingest_control_url": "http://ingest",
    }
    return ControlConfig(**{**base, **changes})


def test_a_share_of_the_canary_regions_fans_go_to_the_canary_each_always_the_same(
    tmp_path: Path,
) -> None:
    rollout = Rollout(config(tmp_path, canary_share=0.3), Metrics())
    answers = {fan: rollout.assign("eu-west", fan) for fan in (f"fan-{i}" for i in range(2000))}
    on_canary = sum(version == "canary" for version, _ in answers.values())
    assert 0.25 < on_canary / 2000 < 0.35
    assert all(rollout.assign("eu-west", fan) == answer for fan, answer in answers.items())
    assert {rollout.assign("us-east", f"fan-{i}") for i in range(200)} == {("stable", "http://us")}
    with pytest.raises(KeyError):
        rollout.assign("mars", "fan-1")


def test_a_rollback_sends_everyone_to_stable_and_is_recorded(tmp_path: Path) -> None:
    metrics = Metrics()
    rollout = Rollout(config(tmp_path, canary_share=0.5), metrics)
    decision = rollout.rollback("CanaryErrorRateHigh")
    assert decision is not None
    assert decision.decision == "rollback"
    assert rollout.state == "rolled_back"
    assert {rollout.assign("eu-west", f"fan-{i}")[0] for i in range(200)} == {"stable"}
    assert rollout.rollback("CanaryErrorRateHigh") is None  # nothing left to roll back
    counted = metrics.counter("gameday_rollout_decisions_total").labels(
        decision="rollback", reason="CanaryErrorRateHigh"
    )
    assert counted._value.get() == 1


def test_with_rollback_disabled_the_alert_is_recorded_and_the_canary_stays(
    tmp_path: Path,
) -> None:
    rollout = Rollout(config(tmp_path, canary_share=0.5, rollback_enabled=False), Metrics())
    decision = rollout.rollback("CanaryErrorRateHigh")
    assert decision is not None
    assert decision.decision == "rollback_disabled"
    assert rollout.state == "active"


@asynccontextmanager
async def twins(*, ingest_status: int = 200) -> AsyncIterator[tuple[str, str, list[str]]]:
    """A canary edge that can be drained and an ingest that can be told to fall back."""
    calls: list[str] = []

    async def drain(request: web.Request) -> web.Response:
        calls.append(f"drain {request.headers.get('Authorization')}")
        return web.json_response({"drained": 3})

    async def fallback(request: web.Request) -> web.Response:
        calls.append(f"fallback {(await request.json())['reason']}")
        return web.json_response({"mode": "fallback", "changed": True}, status=ingest_status)

    canary, ingest = web.Application(), web.Application()
    canary.router.add_post("/v1/admin/drain", drain)
    ingest.router.add_post("/v1/feed/fallback", fallback)
    async with TestServer(canary) as c, TestServer(ingest) as i:
        yield str(c.make_url("")).rstrip("/"), str(i.make_url("")).rstrip("/"), calls


def webhook(*alerts: tuple[str, str, dict[str, str]]) -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "alerts": [
            {"status": status, "labels": {"alertname": name, **labels}}
            for name, status, labels in alerts
        ],
    }


def run_controller(
    tmp_path: Path,
    check: Callable[[httpx.AsyncClient, list[str]], Any],
    *,
    ingest_status: int = 200,
    **changes: Any,
) -> None:
    async def scenario() -> None:
        async with twins(ingest_status=ingest_status) as (canary, ingest, calls):
            cfg = config(tmp_path, canary_url=canary, ingest_control_url=ingest, **changes)
            controller = Controller(cfg, metrics=Metrics())
            async with TestServer(controller.build()) as server:
                base = str(server.make_url("")).rstrip("/")
                async with httpx.AsyncClient(base_url=base) as client:
                    await check(client, calls)

    asyncio.run(scenario())


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_a_firing_canary_alert_rolls_back_and_drains_the_canary(tmp_path: Path) -> None:
    async def check(client: httpx.AsyncClient, calls: list[str]) -> None:
        answer = await client.post(
            "/v1/alerts",
            json=webhook(
                ("CanaryErrorRateHigh", "resolved", {"version": "canary"}),
                ("RegionSkewHigh", "firing", {}),
            ),
            headers=AUTH,
        )
        assert answer.json() == {"decisions": []}  # resolved, or not about the canary
        assert calls == []
        answer = await client.post(
            "/v1/alerts",
            json=webhook(("ScoreLatencyP99High", "firing", {"version": "canary"})),
            headers=AUTH,
        )
        assert [d["decision"] for d in answer.json()["decisions"]] == ["rollback"]
        assert calls == [f"drain Bearer {TOKEN}"]
        state = (await client.get("/v1/rollout")).json()
        assert state["state"] == "rolled_back"
        assert [d["decision"] for d in state["decisions"]] == ["start", "rollback", "drain"]
        assert (await client.get("/v1/assign?region=eu-west&fan=x")).json()["version"] == "stable"

    run_controller(tmp_path, check, canary_share=0.5)


def test_a_feed_alert_switches_ingest_to_fallback_or_records_the_refusal(tmp_path: Path) -> None:
    def expect(decision: str) -> Callable[[httpx.AsyncClient, list[str]], Any]:
        async def check(client: httpx.AsyncClient, calls: list[str]) -> None:
            answer = await client.post(
                "/v1/alerts",
                json=webhook(("PrimaryFeedDown", "firing", {"feed": "primary"})),
                headers=AUTH,
            )
            assert [d["decision"] for d in answer.json()["decisions"]] == [decision]
            assert calls == ["fallback PrimaryFeedDown"]

        return check

    run_controller(tmp_path, expect("fallback"))
    run_controller(tmp_path, expect("fallback_refused"), ingest_status=409)


def test_control_endpoints_want_the_token_and_a_well_formed_body(tmp_path: Path) -> None:
    async def check(client: httpx.AsyncClient, _calls: list[str]) -> None:
        assert (await client.post("/v1/alerts", json=webhook())).status_code == 401
        assert (await client.post("/v1/rollout", json={"share": 1})).status_code == 401
        bad = await client.post("/v1/alerts", content=b"{nope", headers=AUTH)
        assert bad.status_code == 400
        assert "Alertmanager" in bad.json()["error"]
        share = await client.post("/v1/rollout", json={"share": 1.5}, headers=AUTH)
        assert share.status_code == 400
        assert "[0, 1]" in share.json()["error"]
        region = await client.get("/v1/assign?region=mars")
        assert region.status_code == 400
        assert "us-east, eu-west" in region.json()["error"]
        started = await client.post("/v1/rollout", json={"share": 0.2}, headers=AUTH)
        assert started.json()["state"] == "active"

    run_controller(tmp_path, check)
