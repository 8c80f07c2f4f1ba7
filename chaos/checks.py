"""The checks a drill verifies after its faults, each a `CheckResult` and never an exception:
an observer that cannot reach Prometheus reports that check as failed, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chaos.delivery import DeliveryReport
from chaos.fans import FanHistory
from chaos.scenario import AlertExpectation, Probe
from chaos.stats import quantile
from chaos.traces import load_spans, summarize, traces
from pipeline.model import parse_time
from slo.evaluate import Prometheus, PrometheusError


@dataclass
class CheckResult:
    name: str
    passed: bool
    expected: str
    observed: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "expected": self.expected,
            "observed": self.observed,
            "evidence": self.evidence,
        }


def _matcher(labels: dict[str, str]) -> str:
    return "".join(f',{k}="{v}"' for k, v in labels.items())


def firing_spans(
    prom: Prometheus,
    start: float,
    end: float,
) -> dict[str, list[tuple[float, float, dict[str, str]]]]:
    """Alert name -> [(first firing, last firing, labels)] over the range, from ALERTS."""
    out: dict[str, list[tuple[float, float, dict[str, str]]]] = {}
    for metric, points in prom.matrix('ALERTS{alertstate="firing"}', start, end, 1.0):
        if points:
            out.setdefault(metric.get("alertname", "?"), []).append(
                (points[0].t, points[-1].t, metric)
            )
    return out


def alert_fired(
    expect: AlertExpectation,
    fired: dict[str, list[tuple[float, float, dict[str, str]]]],
    injected_at: float,
    reverted_at: float,
    end: float,
) -> list[CheckResult]:
    """Fired within T of the injection, and resolved (not firing) once the fault is gone."""
    spans = [
        s
        for s in fired.get(expect.name, [])
        if all(s[2].get(k) == v for k, v in expect.labels.items())
    ]
    label = expect.name + (f"{{{_matcher(expect.labels).lstrip(',')}}}" if expect.labels else "")
    after = [s for s in spans if s[0] >= injected_at - 1]
    first = min((s[0] for s in after), default=None)
    delay = None if first is None else first - injected_at
    results = [
        CheckResult(
            f"alert {label} fired",
            delay is not None and delay <= expect.within_s,
            f"within {expect.within_s:g}s of the fault",
            "never fired" if delay is None else f"{max(delay, 0):.1f}s after the fault",
            {"firing": [[s[0], s[1]] for s in spans]},
        )
    ]
    still = [s for s in spans if s[1] >= end - 2]
    results.append(
        CheckResult(
            f"alert {label} resolved",
            delay is not None and not still,
            "not firing at the end of the drill",
            "still firing" if still else ("resolved" if delay is not None else "never fired"),
            {"reverted_at": reverted_at},
        )
    )
    return results


def alert_notified(name: str, notified: dict[str, float], injected_at: float) -> CheckResult:
    """Alertmanager held the alert (so its receivers, the rollout controller among them,
    were told), not only Prometheus."""
    at = notified.get(name)
    return CheckResult(
        f"alert {name} reached Alertmanager",
        at is not None,
        "listed by Alertmanager's API during the drill",
        "never" if at is None else f"{max(0.0, at - injected_at):.1f}s after the fault",
    )


def no_other_alerts(
    expected: Sequence[AlertExpectation],
    allowed: Sequence[str],
    fired: dict[str, list[tuple[float, float, dict[str, str]]]],
) -> CheckResult:
    others = sorted(set(fired) - {e.name for e in expected} - set(allowed))
    # (`fired` holds only alerts that started firing during the drill: one still firing from
    # an earlier drill, a slow SLO window at a high time scale, is not this drill's doing.)
    return CheckResult(
        "no unexpected alert",
        not others,
        "only the alerts the scenario expects",
        ", ".join(others) or "none",
        {"fired": sorted(fired)},
    )


def fallback(
    prom: Prometheus, within_s: float, injected_at: float, end: float
) -> list[CheckResult]:
    try:
        series = prom.matrix("max(gameday_feed_mode)", injected_at - 1, end, 0.5)
    except PrometheusError as exc:
        return [
            CheckResult(
                "fallback polling active",
                False,
                f"within {within_s:g}s",
                f"cannot ask Prometheus: {exc}",
            )
        ]
    points = series[0][1] if series else []
    on = next((p.t for p in points if p.value >= 1), None)
    delay = None if on is None else max(0.0, on - injected_at)
    back = bool(points) and points[-1].value == 0
    return [
        CheckResult(
            "fallback polling active",
            delay is not None and delay <= within_s,
            f"within {within_s:g}s of the fault",
            "never" if delay is None else f"{delay:.1f}s after the fault",
        ),
        CheckResult(
            "primary feed resumed",
            back,
            "gameday_feed_mode back to 0 at the end",
            "back on the primary" if back else "still on the fallback",
        ),
    ]


def recovery(
    histories: Sequence[FanHistory],
    injected_at: float,
    limit_s: float,
) -> CheckResult:
    """Per fan: the last update before the fault to the first one after it."""
    moment = datetime.fromtimestamp(injected_at, UTC)
    gaps = []
    for h in histories:
        before = [r.received_at for r in h.receipts if r.received_at <= moment]
        after = [r.received_at for r in h.receipts if r.received_at > moment]
        if before and after:
            gaps.append((after[0] - before[-1]).total_seconds())
    worst = max(gaps, default=None)
    return CheckResult(
        "recovery time",
        worst is not None and worst <= limit_s,
        f"at most {limit_s:g}s",
        "no update after the fault" if worst is None else f"{worst:.2f}s (worst fan)",
        {"per_fan_max_s": worst},
    )


def delivery(report: DeliveryReport, allowed: dict[str, int]) -> CheckResult:
    observed = report.to_json()
    over = {k: observed[k] for k, limit in allowed.items() if observed[k] > limit}
    ok = not over and report.final_mismatches == 0 and report.clients > 0
    return CheckResult(
        "every fan got every update once, in order, ending at fold()",
        ok,
        ", ".join(f"{k} <= {v}" for k, v in allowed.items()) + ", final state = fold()",
        ", ".join(f"{k} {observed[k]}" for k in (*allowed, "final_mismatches")),
        {"failures": [vars(f) for f in report.failures[:5]]},
    )


def slowest_region(trace_dir: Any, region: str, start: float, end: float) -> CheckResult:
    """During the drill, the slowest edge hop (p99) is `region`'s."""
    spans = [s for s in load_spans(trace_dir) if start <= s.start <= end]
    hops = summarize(traces(spans)).hops
    edges = {name: h for name, h in hops.items() if "edge.fanout[" in name and "->" in name}
    if not edges:
        return CheckResult(
            "slowest hop is the faulty region's", False, region, "no edge hops traced in the drill"
        )
    worst = max(edges, key=lambda n: edges[n]["p99_ms"])
    return CheckResult(
        "slowest hop is the faulty region's",
        f"[{region}]" in worst or f"[{region} " in worst,  # its stable or canary edge
        f"a hop into edge.fanout[{region}]",
        f"{worst} ({edges[worst]['p99_ms']:.0f} ms p99)",
        {"hops": {n: h["p99_ms"] for n, h in edges.items()}},
    )


def rollback(
    rollout: dict[str, Any],
    prom: Prometheus,
    within_s: float,
    injected_at: float,
    reverted_at: float,
) -> list[CheckResult]:
    """The controller rolled the canary back within T, and its fans left it for good
    (no stream on the canary from some moment after the rollback until the revert)."""
    decisions = [
        d for d in rollout.get("decisions", []) if parse_time(d["at"]).timestamp() >= injected_at
    ]
    rolled = next((d for d in decisions if d["decision"] == "rollback"), None)
    at = None if rolled is None else parse_time(rolled["at"]).timestamp()
    observed = "never"
    if rolled is not None and at is not None:
        observed = f"{at - injected_at:.1f}s after the fault ({rolled['reason']})"
    results = [
        CheckResult(
            "rollback triggered",
            at is not None and at - injected_at <= within_s,
            f"within {within_s:g}s of the fault",
            observed,
            {"decisions": decisions},
        )
    ]
    if at is None:
        results.append(
            CheckResult("fans left the canary", False, "after the rollback", "no rollback")
        )
        return results
    try:
        series = prom.matrix('sum(gameday_sse_connections{version="canary"})', at, reverted_at, 0.5)
    except PrometheusError as exc:
        results.append(CheckResult("fans left the canary", False, "after the rollback", str(exc)))
        return results
    points = series[0][1] if series else []
    busy = [p.t for p in points if p.value > 0]
    left = bool(points) and points[-1].value == 0
    empty_from = busy[-1] if busy else at
    results.append(
        CheckResult(
            "fans left the canary",
            left,
            "no stream on the canary edge after the rollback, until the revert",
            f"empty {max(0.0, empty_from - at):.1f}s after the rollback"
            if left
            else "streams stayed on the canary",
            {"canary_streams": [[p.t, p.value] for p in points]},
        )
    )
    return results


def kafka_log(found: dict[str, list[str]] | str) -> CheckResult:
    """Kafka holds every source event of the match exactly once (or why it could not tell)."""
    if isinstance(found, str):
        return CheckResult("Kafka holds every event once", False, "read back from Kafka", found)
    return CheckResult(
        "Kafka holds every event once",
        not found["lost"] and not found["duplicated"],
        "every source event exactly once in the topic",
        f"lost {len(found['lost'])}, duplicated {len(found['duplicated'])}",
        {k: v[:10] for k, v in found.items()},
    )


def gap_fills(prom: Prometheus, limit: int, start: float, end: float) -> CheckResult:
    """How many events the scorekeeper had to fetch from the vendor instead of Kafka."""
    query = (
        'sum(increase(gameday_scorekeeper_gap_fills_total{result=~"gap|reconcile"}'
        f"[{max(1, round(end - start))}s]))"
    )
    try:
        answer = prom.vector(query, end)
    except PrometheusError as exc:
        return CheckResult("Kafka alone replayed the crash", False, "Prometheus answers", str(exc))
    fills = round(answer[0][1]) if answer else 0
    return CheckResult(
        "Kafka alone replayed the crash",
        fills <= limit,
        f"at most {limit} event(s) fetched from the vendor to fill a gap",
        f"{fills} fetched from the vendor",
    )


def steady_latency(
    histories: Sequence[FanHistory],
    phase: str,
    limit_s: float,
    *,
    before: float | None = None,
    after: float | None = None,
) -> CheckResult:
    """The fans' p99 latency is within the limit over the updates received `before` the
    first fault, or the updates that happened `after` the last revert (so the backlog a
    fault held up counts against recovery, not against the steady state)."""
    receipts = [r for h in histories for r in h.receipts]
    if before is not None:
        moment = datetime.fromtimestamp(before, UTC)
        receipts = [r for r in receipts if r.received_at < moment]
    if after is not None:
        moment = datetime.fromtimestamp(after, UTC)
        receipts = [r for r in receipts if parse_time(r.data["occurred_at"]) >= moment]
    latencies = sorted(r.latency_s for r in receipts)
    p99 = quantile(latencies, 0.99)
    return CheckResult(
        f"steady state {phase}: p99 latency",
        p99 is not None and p99 <= limit_s,
        f"at most {limit_s:g}s",
        "no update received" if p99 is None else f"{p99:.3f}s over {len(latencies)} updates",
    )


def steady_probe(prom: Prometheus, probe: Probe, phase: str, at: float) -> CheckResult:
    """A steady-state probe's first sample at `at` lies within its bounds."""
    expected = f"within [{probe.low:g}, {probe.high:g}]"
    try:
        answer = prom.vector(probe.query, at)
    except PrometheusError as exc:
        return CheckResult(f"steady state {phase}: {probe.name}", False, expected, str(exc))
    value = answer[0][1] if answer else None
    return CheckResult(
        f"steady state {phase}: {probe.name}",
        value is not None and probe.low <= value <= probe.high,
        expected,
        "no data" if value is None else f"{value:g}",
        {"query": probe.query},
    )
