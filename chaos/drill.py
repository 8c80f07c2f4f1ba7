"""The drill runner: steady state -> fault -> observe -> verify -> revert -> steady state.

One drill plays a scripted match to simulated fans in every region while the scenario's
faults come and go on schedule, then checks what the scenario expects: alerts fired and
resolved, fallback, recovery time, every fan's history, the slowest hop, the SLOs.
Every fault is reverted in `finally`, also on Ctrl-C; a check that cannot be made is a
failed check with its reason, never a crash. Durations are divided by the time scale.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from chaos.checks import (
    CheckResult,
    alert_fired,
    alert_notified,
    delivery,
    fallback,
    firing_spans,
    gap_fills,
    kafka_log,
    no_other_alerts,
    recovery,
    rollback,
    slowest_region,
    steady_latency,
    steady_probe,
)
from chaos.delivery import DeliveryReport, check_delivery
from chaos.fans import Fan, FanHistory, receipts_json, watch
from chaos.faults import (
    BadCanary,
    Fault,
    FaultRecord,
    FeedSilent,
    FeedStutter,
    LinkDown,
    RedisFailover,
    ServiceDown,
    Toxic,
    injected,
    master_address,
)
from chaos.kafkalog import read_match
from chaos.rollout import RolloutClient
from chaos.scenario import FaultSpec, Scenario
from chaos.stats import quantile
from pipeline.deploy import Stack
from pipeline.feed import Stutter, load_script, play
from pipeline.model import parse_time
from pipeline.telemetry import Metrics
from pipeline.topology import REDIS_NODES
from slo.evaluate import ClientSample, Prometheus, PrometheusError, evaluate
from slo.report._plots import Firing
from slo.results import SloReport, Window
from slo.spec import default_specs, load

Progress = Callable[[str], None]
SETTLE_S = 30.0
"""After the last revert, the time the pipeline has to settle (declared; at least 2 s):
alerts resolve within it, and the steady state after the revert is judged past it."""
STEADY_GRACE_S = 30.0
"""How long the steady-state probes may take to hold before the faults (a fresh stack)."""
FINAL_WHISTLE_WAIT_S = 30.0
"""After the match, how long fans may take to get its last update before delivery is
judged (a fallback poll or a reconcile pass at time scale 1 fits in it)."""


@dataclass
class DrillResult:
    name: str
    started_at: float
    finished_at: float = 0.0
    faults: list[FaultRecord] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    slo_report: SloReport | None = None
    alerts: list[Firing] = field(default_factory=list)
    delivery: DeliveryReport | None = None
    aborted: str | None = None
    windows: list[Window] = field(default_factory=list)
    receipts: dict[str, Any] = field(default_factory=dict)
    rollout: dict[str, Any] = field(default_factory=dict)
    """The rollout controller's state and decisions at the end of the drill."""
    notified: dict[str, float] = field(default_factory=dict)
    """Alert name -> when Alertmanager first held it during the drill."""
    steady: list[CheckResult] = field(default_factory=list)
    """The steady-state probes, before the faults and after the revert."""

    @property
    def passed(self) -> bool:
        return self.aborted is None and bool(self.checks) and all(c.passed for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """One entry of report.json's `drills` (DESIGN.md)."""
        return {
            "name": self.name,
            "passed": self.passed,
            "duration_s": round(self.finished_at - self.started_at, 1),
            "aborted": self.aborted,
            "faults": [f.to_json() for f in self.faults],
            "checks": [c.to_json() for c in self.checks],
            "slos": [s.to_json() for s in self.slo_report.slos] if self.slo_report else [],
            "delivery": self.delivery.to_json() if self.delivery else None,
        }


def build_fault(  # noqa: PLR0911 - one return per fault kind
    spec: FaultSpec,
    deployment: Stack,
    endpoints: dict[str, Any],
    *,
    stutter: Stutter | None = None,
    scale: float = 1.0,
) -> Fault:
    """The fault a spec declares, against this stack. `stutter` is the played match's
    (a feed_duplicates fault switches it on and off)."""
    if spec.kind == "feed_duplicates":
        if stutter is None:
            raise ValueError("a feed_duplicates fault acts on a match the drill plays")
        return FeedStutter(stutter)
    if spec.kind == "bad_canary":
        return BadCanary(deployment, spec.ratios["error_ratio"], spec.cut_after_s / scale)
    if spec.kind == "toxic":
        assert spec.link is not None
        assert spec.toxic is not None
        return Toxic(
            endpoints["toxiproxy_api"],
            spec.link,
            spec.toxic,  # type: ignore[arg-type]
            spec.attributes,
        )
    if spec.kind == "link_down":
        assert spec.link is not None
        return LinkDown(endpoints["toxiproxy_api"], spec.link)
    if spec.kind == "feed_silent":
        return FeedSilent(endpoints["feed_control"], Path(endpoints["admin_token_file"]))
    if spec.kind == "service_down":
        assert spec.service is not None
        return ServiceDown(deployment, spec.service, pause=spec.pause)
    if spec.mode == "sentinel":
        return RedisFailover(list(endpoints["redis_sentinels"]), endpoints["redis_master_name"])
    return _KillMaster(deployment, endpoints)


@dataclass
class _KillMaster:
    """The current Redis master killed; started again (as a replica) on revert."""

    deployment: Stack
    endpoints: dict[str, Any]
    name: str = "redis master killed"
    kind: str = "redis_failover"
    _down: ServiceDown | None = None

    async def inject(self) -> None:
        address = await master_address(
            list(self.endpoints["redis_sentinels"]), self.endpoints["redis_master_name"]
        )
        ports = self.deployment.ports
        node = next(n for n in REDIS_NODES if address.endswith(f":{ports[n]}"))
        self._down = ServiceDown(self.deployment, node)
        self.name = f"redis master ({node}) killed"
        await self._down.inject()

    async def revert(self) -> None:
        if self._down is not None:
            await self._down.revert()


async def _run_faults(
    scenario: Scenario,
    faults: list[Fault],
    records: list[FaultRecord],
    *,
    started: float,
    scale: float,
    progress: Progress,
    metrics: Metrics,
) -> None:
    active = metrics.gauge("gameday_fault_active")

    async def one(spec: FaultSpec, fault: Fault, record: FaultRecord) -> None:
        await asyncio.sleep(max(0.0, started + spec.at_s / scale - time.time()))
        progress(f"fault: injecting {fault.name}")
        try:
            async with injected(fault, record):
                record.name = fault.name
                active.labels(fault=fault.name, kind=fault.kind).set(1)
                await asyncio.sleep(spec.duration_s / scale)
        finally:
            active.labels(fault=fault.name, kind=fault.kind).set(0)
        progress(f"fault: reverted {fault.name}")

    await asyncio.gather(
        *(one(s, f, r) for s, f, r in zip(scenario.faults, faults, records, strict=True))
    )


def _p99(fans: list[Fan], since: datetime) -> float | None:
    latencies = sorted(
        r.latency_s for f in fans for r in f.history.receipts if r.received_at >= since
    )
    return quantile(latencies, 0.99)


async def _monitor(
    fans: list[Fan],
    prom: Prometheus,
    scenario: Scenario,
    *,
    started: float,
    progress: Progress,
    abort: asyncio.Event,
    reason: list[str],
    alertmanager: str,
    notified: dict[str, float],
) -> None:
    """Print progress every 2 s, abort past the scenario's limits, and note when each
    alert first shows up in Alertmanager (`notified`: name -> unix time)."""
    since = datetime.now(UTC)
    while True:
        await asyncio.sleep(2.0)
        for name in _alertmanager_alerts(alertmanager):
            notified.setdefault(name, time.time())
        p99 = _p99(fans, since)
        try:
            firing = sorted(
                {
                    m.get("alertname", "?")
                    for m, _ in prom.vector('ALERTS{alertstate="firing"}', time.time())
                }
            )
        except PrometheusError:
            firing = ["(Prometheus unreachable)"]
        connected = sum(f.connected.is_set() for f in fans)
        progress(
            f"  t+{time.time() - started:5.1f}s  fans {connected}/{len(fans)}  "
            f"p99 {'-' if p99 is None else f'{p99 * 1000:.0f} ms'}  "
            f"alerts {', '.join(firing) or 'none'}"
        )
        if (
            scenario.abort_max_p99_s is not None
            and p99 is not None
            and p99 > scenario.abort_max_p99_s
        ):
            reason.append(f"p99 {p99:.1f}s passed the abort limit {scenario.abort_max_p99_s:g}s")
            abort.set()
        if time.time() - started > scenario.abort_max_duration_s:
            reason.append(f"the drill ran past {scenario.abort_max_duration_s:g}s")
            abort.set()
        since = datetime.now(UTC) if p99 is None else since


def _alertmanager_alerts(url: str) -> set[str]:
    """Names of the alerts Alertmanager holds now; an unreachable one holds none."""
    try:
        answer = httpx.get(f"{url}/api/v2/alerts", params={"active": "true"}, timeout=2.0)
        answer.raise_for_status()
        return {str(a.get("labels", {}).get("alertname", "?")) for a in answer.json()}
    except (httpx.HTTPError, ValueError, AttributeError):
        return set()


async def run_drill(  # noqa: PLR0915 - the phases read in order, top to bottom
    scenario: Scenario,
    deployment: Stack,
    *,
    time_scale: float,
    progress: Progress,
    metrics: Metrics | None = None,
) -> DrillResult:
    """Run one drill; `metrics` gets `gameday_fault_active` while faults are injected."""
    metrics = metrics or Metrics()
    endpoints = deployment.endpoints()
    prom = Prometheus(endpoints["prometheus"])
    result = DrillResult(scenario.name, time.time())
    match_id = f"gha-pan-{uuid.uuid4().hex[:8]}"
    share = scenario.load.canary_share
    rollout = RolloutClient(endpoints["rollout_control"], _token(endpoints))
    if share is not None:  # a rollout is on for the drill; the controller routes every fan
        await rollout.set_share(share)
    fans = [
        Fan(
            url,
            match_id,
            region=region,
            fan_id=f"{region}-{i}",
            router=None if share is None else rollout.route,
        )
        for region, url in endpoints["edges"].items()
        for i in range(scenario.load.fans_per_region)
    ]
    stop, abort = asyncio.Event(), asyncio.Event()
    watching = asyncio.create_task(watch(fans, stop))
    records = [FaultRecord(s.kind, s.kind) for s in scenario.faults]
    ratios = next((s.ratios for s in scenario.faults if s.kind == "feed_duplicates"), {})
    stutter = Stutter(ratios.get("duplicate_ratio", 0.0), ratios.get("swap_ratio", 0.0))
    faults = [
        build_fault(s, deployment, endpoints, stutter=stutter, scale=time_scale)
        for s in scenario.faults
    ]
    reasons: list[str] = []
    monitor = asyncio.create_task(
        _monitor(
            fans,
            prom,
            scenario,
            started=result.started_at,
            progress=progress,
            abort=abort,
            reason=reasons,
            alertmanager=endpoints["alertmanager"],
            notified=result.notified,
        )
    )
    source = []
    spike: asyncio.Task[list[FanHistory]] | None = None
    try:
        progress(f"steady state: {len(fans)} fans connecting")
        await _until(lambda: all(f.connected.is_set() for f in fans), 20)
        result.steady += await _steady_before(prom, scenario)
        script = replace(load_script(scenario.load.script), match_id=match_id)
        token = _token(endpoints)
        started = time.time()
        playing = asyncio.create_task(
            play(
                script,
                control_url=endpoints["feed_control"],
                token=token,
                speed=scenario.load.speed * time_scale,
                stutter=stutter,
            )
        )
        chaos = asyncio.create_task(
            _run_faults(
                scenario,
                faults,
                records,
                started=started,
                scale=time_scale,
                progress=progress,
                metrics=metrics,
            )
        )
        spike = (
            asyncio.create_task(_spike(scenario, endpoints, match_id, fans, stop))
            if scenario.load.spike_fans_per_region
            else None
        )
        aborting = asyncio.create_task(abort.wait())
        done, _ = await asyncio.wait({playing, aborting}, return_when=asyncio.FIRST_COMPLETED)
        if aborting in done:
            playing.cancel()
            result.aborted = "; ".join(reasons)
            progress(f"ABORT: {result.aborted}")
        else:
            source = playing.result()
        await asyncio.wait({chaos, aborting}, return_when=asyncio.FIRST_COMPLETED)
        chaos.cancel()  # an abort reverts every fault now (injected() reverts in finally)
        await asyncio.gather(chaos, return_exceptions=True)
        aborting.cancel()
        if source:
            progress("observe: waiting for every fan to get the final whistle")
            await _until(
                lambda: all(f.history.last_seq == source[-1].seq for f in fans),
                FINAL_WHISTLE_WAIT_S,
                fail=False,
            )
        await asyncio.sleep(_settle_s(time_scale))  # alerts resolve after the revert
        result.steady += _probe_all(prom, scenario, "after the revert")
    finally:
        stop.set()
        monitor.cancel()
        histories = await watching
        spiked = await _settled(spike)
        result.finished_at = time.time()
        async with rollout:
            result.rollout = await rollout.state()
            if share is not None:
                await rollout.set_share(0.0)
    result.faults = records
    result.windows = [
        Window(r.name, _ts(r.injected_at), _ts(r.reverted_at))
        for r in records
        if r.injected_at and r.reverted_at
    ]
    result.receipts = receipts_json(histories)
    if source:
        _verify(
            result,
            scenario,
            prom,
            deployment=deployment,
            histories=histories,
            source=source,
            scale=time_scale,
        )
    if scenario.load.spike_fans_per_region:
        result.checks.append(_spike_check(scenario, spiked, len(endpoints["edges"])))
    return result


def _verify(
    result: DrillResult,
    scenario: Scenario,
    prom: Prometheus,
    *,
    deployment: Stack,
    histories: list[FanHistory],
    source: list[Any],
    scale: float,
) -> None:
    expect = scenario.expect
    checks = [
        CheckResult(
            f"fault {r.name} injected and reverted",
            bool(r.injected_at and r.reverted_at) and r.error is None,
            "injected on schedule, reverted after its duration",
            r.error or f"{r.injected_at} -> {r.reverted_at}",
        )
        for r in result.faults
    ]
    first = min((w.start for w in result.windows), default=result.started_at)
    last = max((w.end for w in result.windows), default=result.started_at)
    checks += result.steady
    if scenario.steady_state_max_p99_s is not None:
        limit = scenario.steady_state_max_p99_s
        checks.append(steady_latency(histories, "before the fault", limit, before=first))
        settled = last + _settle_s(scale)  # a revert has its own aftermath (a resync)
        checks.append(steady_latency(histories, "after the revert", limit, after=settled))
    result.delivery = check_delivery(histories, source)
    checks.append(delivery(result.delivery, expect.delivery))
    try:
        fired = firing_spans(prom, result.started_at, result.finished_at)
        new = {
            name: [s for s in spans if s[0] > result.started_at + 1]
            for name, spans in fired.items()
        }
        new = {name: spans for name, spans in new.items() if spans}
        result.alerts = [
            Firing(name, start, end) for name, spans in fired.items() for start, end, _ in spans
        ]
        for alert in expect.alerts:
            checks += alert_fired(
                replace(alert, within_s=alert.within_s / scale),
                fired,
                first,
                last,
                result.finished_at,
            )
            checks.append(alert_notified(alert.name, result.notified, first))
        if not expect.other_alerts:
            checks.append(no_other_alerts(expect.alerts, expect.allowed_alerts, new))
    except PrometheusError as exc:
        checks.append(CheckResult("alerts", False, "Prometheus answers", str(exc)))
    if expect.fallback_within_s is not None:
        checks += fallback(prom, expect.fallback_within_s / scale, first, result.finished_at)
    if expect.recovery_max_s is not None:
        checks.append(recovery(histories, first, expect.recovery_max_s))
    if expect.rollback_within_s is not None:
        checks += rollback(result.rollout, prom, expect.rollback_within_s / scale, first, last)
    if expect.kafka_log:
        checks.append(_kafka_check(deployment.endpoints(), source, result.started_at))
    if expect.gap_fills_max is not None:
        checks.append(gap_fills(prom, expect.gap_fills_max, result.started_at, result.finished_at))
    if expect.slowest_hop_region is not None:
        checks.append(
            slowest_region(deployment.run_dir / "traces", expect.slowest_hop_region, first, last)
        )
    try:
        samples = [ClientSample(**r) for r in result.receipts["receipts"]]
        report = evaluate(
            load(default_specs()),
            prom.url,
            start=result.started_at,
            end=result.finished_at,
            time_scale=scale,
            client=samples,
            windows=tuple(result.windows),
        )
        result.slo_report = report
        for name in expect.slos:
            slo = next((s for s in report.slos if s.name == name), None)
            checks.append(
                CheckResult(
                    f"SLO {name} holds",
                    slo is not None and slo.passed,
                    "at or above its objective" if slo else "a declared SLO",
                    "not declared" if slo is None else f"{slo.status} ({_ratio(slo.observed)})",
                )
            )
    except PrometheusError as exc:
        checks.append(CheckResult("SLOs evaluated", False, "Prometheus answers", str(exc)))
    result.checks = checks


def _settle_s(time_scale: float) -> float:
    return max(2.0, SETTLE_S / time_scale)


def _probe_all(prom: Prometheus, scenario: Scenario, phase: str) -> list[CheckResult]:
    return [steady_probe(prom, p, phase, time.time()) for p in scenario.steady_state_probes]


async def _steady_before(prom: Prometheus, scenario: Scenario) -> list[CheckResult]:
    """The probes before any fault, given STEADY_GRACE_S to hold (a stack just started may
    still be settling); what they say at the end of that time is the result."""
    deadline = time.monotonic() + STEADY_GRACE_S
    while True:
        results = _probe_all(prom, scenario, "before the fault")
        if all(r.passed for r in results) or time.monotonic() > deadline:
            return results
        await asyncio.sleep(1.0)


def _kafka_check(endpoints: dict[str, Any], source: list[Any], since: float) -> CheckResult:
    match_id = source[0].match_id
    try:
        log = read_match(endpoints["kafka_bootstrap"], endpoints["kafka_topic"], match_id, since)
    except (RuntimeError, TimeoutError) as exc:
        return kafka_log(str(exc))
    return kafka_log(log.compare(source))


async def _settled(task: asyncio.Task[list[FanHistory]] | None) -> list[FanHistory]:
    if task is None:
        return []
    try:
        return await task
    except Exception:  # the spike check says what happened: no fan got through
        return []


def _spike_check(scenario: Scenario, spiked: list[FanHistory], regions: int) -> CheckResult:
    wanted = scenario.load.spike_fans_per_region * regions
    served = sum(1 for h in spiked if h.connects and h.receipts)
    return CheckResult(
        "every spike fan was served",
        served == wanted,
        f"{wanted} fans connected after the goal, each receiving updates",
        f"{served} of {wanted}",
    )


async def _spike(
    scenario: Scenario,
    endpoints: dict[str, Any],
    match_id: str,
    fans: list[Fan],
    stop: asyncio.Event,
) -> list[FanHistory]:
    """After the first goal, spike_fans_per_region more fans open the stream at once."""
    extra = scenario.load.spike_fans_per_region
    await _until(
        lambda: any(
            r.data.get("event", {}).get("type") in ("goal", "own_goal", "penalty_goal")
            for f in fans[:1]
            for r in f.history.receipts
        ),
        600,
        fail=False,
    )
    crowd = [
        Fan(url, match_id, region=region, fan_id=f"spike-{region}-{i}")
        for region, url in endpoints["edges"].items()
        for i in range(extra)
    ]
    return await watch(crowd, stop)


async def _until(predicate: Callable[[], bool], timeout_s: float, *, fail: bool = True) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            if fail:
                raise TimeoutError(f"gave up after {timeout_s:g}s")
            return
        await asyncio.sleep(0.05)


def _token(endpoints: dict[str, Any]) -> str:
    return Path(endpoints["admin_token_file"]).read_text().strip()


def _ratio(value: float | None) -> str:
    return "no data" if value is None else f"{value:.3%}"


def _ts(iso: str | None) -> float:
    assert iso is not None
    return parse_time(iso).timestamp()
