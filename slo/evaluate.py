"""Evaluating SLOs against a live Prometheus over a range of time (a CI run, a drill).

Each SLO's SLI is read as counts over the whole range (good and total events), so the
verdict is exact for the range rather than an average of rates:

- pass: at or above the objective, with at most half the error budget spent at this rate;
- warning: at or above the objective but spending more than half the budget, or no
  events at all for an SLO that is not key;
- fail: below the objective, or no events for a key SLO (a key SLO must be proven).

An SLO with `group_by` is judged by its worst group (the slowest region decides).

Given the fans' own measurements (a drill's SSE clients, `ClientSample`), a latency SLO
on `gameday_event_latency_seconds` is judged on those too, and the worse of the two
views decides: the edge's histogram cannot see a frame stuck in a socket buffer.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pipeline.telemetry import le_label
from slo.results import Point, Series, SloReport, SloResult, Status, Window
from slo.rules import sli_error_expr
from slo.spec import LatencySli, Slo, format_duration

WARN_BUDGET = 0.5


class PrometheusError(RuntimeError):
    """Prometheus could not be reached or refused a query; the message says which."""


@dataclass
class Prometheus:
    url: str
    timeout_s: float = 10.0

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        try:
            response = httpx.get(f"{self.url}{path}", params=params, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {exc}") from None
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(
                f"Prometheus refused {params.get('query')!r}: "
                f"{body.get('error', response.text[:200])}"
            )
        return body["data"]["result"]

    def vector(self, query: str, at: float) -> list[tuple[dict[str, str], float]]:
        return [
            (r["metric"], float(r["value"][1]))
            for r in self._get("/api/v1/query", {"query": query, "time": at})
        ]

    def matrix(
        self,
        query: str,
        start: float,
        end: float,
        step: float,
    ) -> list[tuple[dict[str, str], list[Point]]]:
        result = self._get(
            "/api/v1/query_range", {"query": query, "start": start, "end": end, "step": step}
        )
        return [
            (
                r["metric"],
                [Point(float(t), float(v)) for t, v in r["values"] if math.isfinite(float(v))],
            )
            for r in result
        ]


@dataclass(frozen=True)
class ClientSample:
    """One update as a fan received it: its event type, region and source->fan latency."""

    event_type: str
    region: str
    latency_s: float


def load_client_samples(path: Path) -> list[ClientSample]:
    """`{"receipts": [{"event_type": "goal", "region": "eu-west", "latency_s": 0.12}]}`"""
    try:
        raw = json.loads(path.read_text())
        return [
            ClientSample(str(r["event_type"]), str(r.get("region", "")), float(r["latency_s"]))
            for r in raw["receipts"]
        ]
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a list of fan receipts ({exc})") from None


def client_counts(
    slo: Slo,
    samples: Sequence[ClientSample],
) -> dict[tuple[str, ...], tuple[float, float]] | None:
    """Per group: (good, all) of the fans' own receipts, when the SLO is about them."""
    sli = slo.sli
    if not isinstance(sli, LatencySli) or sli.metric != "gameday_event_latency_seconds":
        return None
    counts: dict[tuple[str, ...], list[float]] = {}
    for s in samples:
        labels = {"event_type": s.event_type, "region": s.region}
        if all(re.fullmatch(regex, labels.get(label, "")) for label, regex in sli.selector.items()):
            group = tuple(labels.get(label, "") for label in slo.group_by)
            tally = counts.setdefault(group, [0.0, 0.0])
            tally[0] += s.latency_s <= sli.threshold_s
            tally[1] += 1
    return {g: (good, total) for g, (good, total) in counts.items()}


Verdict = tuple[Status, float | None, float | None, float, str]


def _worse(prometheus: Verdict, client: Verdict) -> Verdict:
    order = {"pass": 0, "warning": 1, "fail": 2}
    seen_by_fans = (
        f"fans measured {client[1]:.4%} over {client[3]:.0f} receipts"
        if client[1] is not None
        else "fans received none"
    )
    chosen = client if order[client[0]] > order[prometheus[0]] else prometheus
    source = "fans' view" if chosen is client else "edge histogram"
    detail = "; ".join(p for p in (chosen[4], f"{seen_by_fans} (judged on the {source})") if p)
    return chosen[0], chosen[1], chosen[2], chosen[3], detail


def _by(slo: Slo) -> str:
    return f" by ({', '.join(slo.group_by)})" if slo.group_by else ""


def _counts(
    prom: Prometheus,
    slo: Slo,
    range_s: float,
    at: float,
) -> dict[tuple[str, ...], tuple[float, float]]:
    """Per group: (good events, all events) over the range."""
    r = format_duration(max(range_s, 1))
    by = _by(slo)
    if isinstance(slo.sli, LatencySli):
        sli = slo.sli
        matchers = "".join(f',{k}=~"{v}"' for k, v in sli.selector.items())
        good_q = (
            f'sum{by}(increase({sli.metric}_bucket{{le="{le_label(sli.threshold_s)}"'
            f"{matchers}}}[{r}]))"
        )
        total_q = f"sum{by}(increase({sli.metric}_count{{{matchers.lstrip(',')}}}[{r}]))"
        good, total = prom.vector(good_q, at), prom.vector(total_q, at)
    else:
        total_q = slo.sli.total.replace("{{window}}", r)
        bad_q = slo.sli.errors.replace("{{window}}", r)
        total = [(m, v * range_s) for m, v in prom.vector(total_q, at)]
        bad = {_key(slo, m): v * range_s for m, v in prom.vector(bad_q, at)}
        good = [(m, v - bad.get(_key(slo, m), 0.0)) for m, v in total]
    good_by = {_key(slo, m): v for m, v in good}
    return {_key(slo, m): (good_by.get(_key(slo, m), 0.0), v) for m, v in total}


def _key(slo: Slo, metric: dict[str, str]) -> tuple[str, ...]:
    return tuple(metric.get(label, "") for label in slo.group_by)


def judge(slo: Slo, counts: dict[tuple[str, ...], tuple[float, float]]) -> Verdict:
    """(status, observed, budget spent, events, detail) from the counts of each group."""
    measured = {g: (good, total) for g, (good, total) in counts.items() if total > 0}
    events = sum(total for _, total in measured.values())
    if not measured:
        status: Status = "fail" if slo.key else "warning"
        return status, None, None, 0.0, "no events in the range: the SLI could not be measured"
    ratios = {g: max(0.0, min(1.0, good / total)) for g, (good, total) in measured.items()}
    worst = min(ratios, key=lambda g: ratios[g])
    observed = ratios[worst]
    spent = (1 - observed) / (1 - slo.objective)
    detail = ""
    if slo.group_by:
        detail = "; ".join(f"{'/'.join(g) or '-'}: {ratios[g]:.4%}" for g in sorted(ratios))
    if observed < slo.objective:
        return "fail", observed, spent, events, detail
    return ("warning" if spent > WARN_BUDGET else "pass"), observed, spent, events, detail


def _step(range_s: float) -> float:
    return max(1.0, range_s / 120)


def _rolling(range_s: float, time_scale: float) -> str:
    return format_duration(min(300.0, max(10.0, range_s / 10, 60 / time_scale)))


def burn_series(
    prom: Prometheus,
    slo: Slo,
    start: float,
    end: float,
    time_scale: float,
) -> tuple[Series, ...]:
    window = _rolling(end - start, time_scale)
    budget = 1 - slo.objective
    query = f"({sli_error_expr(slo, window)}) / {budget:g}"
    return tuple(
        Series(
            f"{slo.name} {'/'.join(m.get(g, '') for g in slo.group_by)}".strip()
            + f" ({window} window)",
            tuple(points),
        )
        for m, points in prom.matrix(query, start, end, _step(end - start))
    )


def latency_series(
    prom: Prometheus,
    start: float,
    end: float,
    time_scale: float,
) -> tuple[Series, ...]:
    window = _rolling(end - start, time_scale)
    out = []
    for q in (0.5, 0.99):
        query = (
            f"histogram_quantile({q}, sum by (le, region) "
            f"(rate(gameday_event_latency_seconds_bucket[{window}])))"
        )
        for metric, points in prom.matrix(query, start, end, _step(end - start)):
            out.append(Series(f"p{round(q * 100)} {metric.get('region', '')}", tuple(points)))
    return tuple(out)


def evaluate(
    slos: list[Slo],
    prometheus_url: str,
    *,
    start: float,
    end: float,
    time_scale: float = 1.0,
    target: str = "local",
    windows: tuple[Window, ...] = (),
    client: Sequence[ClientSample] | None = None,
) -> SloReport:
    """Judge every SLO over [start, end] (unix seconds) from what Prometheus recorded,
    and from what the fans measured when `client` samples are given."""
    if end <= start:
        raise ValueError("the evaluated range is empty")
    prom = Prometheus(prometheus_url)
    results = []
    for slo in slos:
        verdict = judge(slo, _counts(prom, slo, end - start, end))
        fans = client_counts(slo, client) if client is not None else None
        if fans is not None:
            verdict = _worse(verdict, judge(slo, fans))
        status, observed, spent, events, detail = verdict
        results.append(
            SloResult(
                name=slo.name,
                service=slo.service,
                description=slo.description,
                objective=slo.objective,
                observed=observed,
                budget_spent=spent,
                status=status,
                key=slo.key,
                events=events,
                detail=detail,
                burn_rate=burn_series(prom, slo, start, end, time_scale),
            )
        )

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    return SloReport(
        run_id=uuid.uuid4().hex[:12],
        started_at=iso(start),
        finished_at=iso(end),
        target=target,
        time_scale=time_scale,
        prometheus=prometheus_url,
        range_s=end - start,
        slos=results,
        latency=latency_series(prom, start, end, time_scale),
        windows=windows,
    )
