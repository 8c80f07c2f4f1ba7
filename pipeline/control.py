"""The rollout controller: canary routing, and rollback or fallback on an alert webhook.

Fans (a load balancer, in production) ask the controller which edge to use:
`GET /v1/assign?region=R&fan=ID` -> `{"region", "version", "url"}`. In the canary's
region a stable hash of the fan id sends `canary_share` of fans to the canary edge (the
new version); everyone else goes to the stable edge of their region.

Alertmanager posts every alert group to `POST /v1/alerts` (its webhook, version 4):
- CanaryErrorRateHigh, or any alert labelled `version="canary"` (ScoreLatencyP99High
  for the canary) while a rollout is on: roll back. The share drops to 0, and the canary
  edge is drained so its fans come back, through `/v1/assign`, on the stable edge,
  resuming with Last-Event-ID;
- an alert labelled `feed="primary"` (PrimaryFeedDown): tell ingest to switch to the
  fallback vendor now and hold it there (ingest refuses when fallback is disabled).

Every decision is logged, counted (`gameday_rollout_decisions_total{decision,reason}`)
and listed by `GET /v1/rollout`. `POST /v1/rollout` (bearer token) starts a rollout
(`{"share": 0.2}`), stops it (`{"share": 0}`) or rolls back by hand
(`{"action": "rollback"}`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import httpx
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipeline.auth import bearer_ok, error, read_token
from pipeline.model import format_time
from pipeline.service import main
from pipeline.telemetry import Metrics

log = logging.getLogger("control")
ROLLBACK_ALERTS: Final = frozenset({"CanaryErrorRateHigh"})
FEED_LABEL: Final = ("feed", "primary")

State = Literal["idle", "active", "rolled_back"]


@dataclass(frozen=True, kw_only=True)
class ControlConfig:
    port: int
    admin_token_file: Path
    edges: dict[str, str]
    """Region -> its stable edge's URL."""
    canary_region: str
    canary_url: str
    ingest_control_url: str
    host: str = "127.0.0.1"
    canary_share: float = 0.0
    """The share of the canary region's fans sent to the canary when the stack starts."""
    rollback_enabled: bool = True
    """Drill switch: with False an alert about the canary is logged, never acted on."""
    decisions_kept: int = 500

    def __post_init__(self) -> None:
        if not 0 <= self.canary_share <= 1:
            raise ValueError(f"canary_share must be in [0, 1], got {self.canary_share}")
        if self.canary_region not in self.edges:
            raise ValueError(f"canary_region {self.canary_region!r} has no stable edge")


@dataclass(frozen=True)
class Decision:
    at: str
    decision: str
    """start | stop | rollback | rollback_disabled | fallback | fallback_refused | ..."""
    reason: str
    """The alert (or `manual`) behind it."""
    detail: str = ""


@dataclass
class Rollout:
    """The controller's state: no I/O, so routing and decisions are testable alone."""

    config: ControlConfig
    metrics: Metrics = field(default_factory=Metrics)
    state: State = "idle"
    share: float = 0.0

    def __post_init__(self) -> None:
        self.decisions: deque[Decision] = deque(maxlen=self.config.decisions_kept)
        if self.config.canary_share > 0:
            self.set_share(self.config.canary_share, reason="config")
        else:
            self._gauge()

    def _gauge(self) -> None:
        self.metrics.gauge("gameday_rollout_canary_share").set(self.share)

    def record(self, decision: str, reason: str, detail: str = "") -> Decision:
        made = Decision(format_time(datetime.now(UTC)), decision, reason, detail)
        self.decisions.append(made)
        self.metrics.counter("gameday_rollout_decisions_total").labels(
            decision=decision, reason=reason
        ).inc()
        log.warning("decision: %s (%s) %s", decision, reason, detail)
        return made

    def assign(self, region: str, fan: str) -> tuple[str, str]:
        """(version, url) for a fan in `region`; the same fan always gets the same answer
        while the share stays put."""
        if region not in self.config.edges:
            raise KeyError(region)
        on_canary = (
            region == self.config.canary_region
            and self.state == "active"
            and _bucket(fan) < self.share
        )
        if on_canary:
            return "canary", self.config.canary_url
        return "stable", self.config.edges[region]

    def set_share(self, share: float, *, reason: str) -> Decision:
        if not 0 <= share <= 1:
            raise ValueError(f"share must be in [0, 1], got {share}")
        self.share = share
        self.state = "active" if share > 0 else "idle"
        self._gauge()
        return self.record("start" if share > 0 else "stop", reason, f"canary share {share:g}")

    def rollback(self, reason: str) -> Decision | None:
        """Roll back if a rollout is on; None when there is nothing to roll back."""
        if self.state != "active":
            return None
        if not self.config.rollback_enabled:
            return self.record("rollback_disabled", reason, "rollback_enabled is false")
        self.share, self.state = 0.0, "rolled_back"
        self._gauge()
        return self.record("rollback", reason, "all fans to stable; draining the canary")

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "share": self.share,
            "canary_region": self.config.canary_region,
            "canary_url": self.config.canary_url,
            "rollback_enabled": self.config.rollback_enabled,
            "decisions": [asdict(d) for d in self.decisions],
        }


def _bucket(fan: str) -> float:
    """A fan id's stable place in [0, 1)."""
    digest = hashlib.blake2b(fan.encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64


def about_canary(labels: dict[str, str]) -> bool:
    return labels.get("alertname") in ROLLBACK_ALERTS or labels.get("version") == "canary"


def about_feed(labels: dict[str, str]) -> bool:
    return labels.get(FEED_LABEL[0]) == FEED_LABEL[1]


class Controller:
    """The HTTP face of a `Rollout`, and its calls to the canary edge and to ingest."""

    def __init__(self, config: ControlConfig, *, metrics: Metrics | None = None) -> None:
        self.config = config
        self.rollout = Rollout(config, metrics or Metrics())
        self.token = read_token(config.admin_token_file)
        self._http = httpx.AsyncClient(timeout=5.0)

    def build(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/v1/assign", self.assign)
        app.router.add_get("/v1/rollout", self.get_rollout)
        app.router.add_post("/v1/rollout", self.post_rollout)
        app.router.add_post("/v1/alerts", self.alerts)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app: web.Application) -> None:
        await self._http.aclose()

    def _authorized(self, request: web.Request) -> bool:
        return bearer_ok(request.headers.get("Authorization"), self.token)

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"healthy": True, "state": self.rollout.state})

    async def metrics(self, _request: web.Request) -> web.Response:
        payload = generate_latest(self.rollout.metrics.registry)
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def assign(self, request: web.Request) -> web.Response:
        region = request.query.get("region", "")
        fan = request.query.get("fan") or f"anon-{random.getrandbits(64):x}"
        try:
            version, url = self.rollout.assign(region, fan[:200])
        except KeyError:
            known = ", ".join(self.config.edges)
            return error(400, f"region {region[:40]!r} is not one of: {known}")
        return web.json_response({"region": region, "version": version, "url": url})

    async def get_rollout(self, _request: web.Request) -> web.Response:
        return web.json_response(self.rollout.to_json())

    async def post_rollout(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return error(401, "missing or wrong bearer token (see admin_token_file)")
        try:
            body = await request.json()
        except (ValueError, RecursionError):
            return error(400, "expected a JSON object")
        if not isinstance(body, dict):
            return error(400, "expected a JSON object")
        if body.get("action") == "rollback":
            await self._rollback("manual")
        elif isinstance(body.get("share"), int | float) and not isinstance(body["share"], bool):
            try:
                self.rollout.set_share(float(body["share"]), reason="manual")
            except ValueError as exc:
                return error(400, str(exc))
        else:
            return error(400, 'expected {"share": 0..1} or {"action": "rollback"}')
        return web.json_response(self.rollout.to_json())

    async def alerts(self, request: web.Request) -> web.Response:
        """Alertmanager's webhook: act on firing alerts about the canary or the feed."""
        if not self._authorized(request):
            return error(401, "missing or wrong bearer token")
        try:
            body = await request.json()
            if not isinstance(body["alerts"], list):
                raise TypeError("alerts is not a list")
            alerts = [a for a in body["alerts"] if isinstance(a, dict)]
        except (ValueError, KeyError, TypeError, RecursionError):
            return error(400, "expected an Alertmanager webhook payload (version 4)")
        made: list[Decision] = []
        for alert in alerts:
            raw_labels = alert.get("labels", {})
            if alert.get("status") != "firing" or not isinstance(raw_labels, dict):
                continue
            labels = {str(k): str(v) for k, v in raw_labels.items()}
            name = labels.get("alertname", "unnamed")
            if about_canary(labels) and (decision := await self._rollback(name)) is not None:
                made.append(decision)
            if about_feed(labels):
                made.append(await self._fallback(name))
        return web.json_response({"decisions": [asdict(d) for d in made]})

    async def _rollback(self, reason: str) -> Decision | None:
        decision = self.rollout.rollback(reason)
        if decision is None or decision.decision != "rollback":
            return decision
        try:
            answer = await self._http.post(
                f"{self.config.canary_url}/v1/admin/drain",
                headers={"Authorization": f"Bearer {self.token}"},
            )
            answer.raise_for_status()
            drained = answer.json().get("drained", 0)
            self.rollout.record("drain", reason, f"{drained} canary streams closed")
        except (httpx.HTTPError, ValueError) as exc:
            # New fans already go to stable; the canary's own fans stay until it restarts.
            self.rollout.record("drain_failed", reason, f"{exc.__class__.__name__}: {exc}")
        return decision

    async def _fallback(self, reason: str) -> Decision:
        try:
            answer = await self._http.post(
                f"{self.config.ingest_control_url}/v1/feed/fallback",
                json={"reason": reason},
                headers={"Authorization": f"Bearer {self.token}"},
            )
        except httpx.HTTPError as exc:
            return self.rollout.record("fallback_failed", reason, f"ingest: {exc}")
        if answer.status_code == 409:
            return self.rollout.record("fallback_refused", reason, answer.text[:200])
        if answer.status_code != 200:
            return self.rollout.record(
                "fallback_failed", reason, f"ingest answered {answer.status_code}"
            )
        changed = bool(answer.json().get("changed"))
        return self.rollout.record(
            "fallback", reason, "switched to the fallback vendor" if changed else "already on it"
        )


async def serve(config: ControlConfig) -> None:
    controller = Controller(config)
    runner = web.AppRunner(controller.build(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port).start()
    log.info("rollout controller on %s:%d", config.host, config.port)
    try:
        await asyncio.Event().wait()  # until cancelled by SIGTERM
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    raise SystemExit(main("control", ControlConfig, serve))
