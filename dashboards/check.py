"""Evaluate every query of every dashboard against a live Prometheus, as Grafana would.

Grafana itself cannot run on these machines, so this is how a dashboard is known to work:
each target (panel query, annotation, template variable) is sent to /api/v1/query at now,
with Grafana's variables replaced (`$region` -> all regions, `$__rate_interval` -> 1m...).

    ok      Prometheus returned at least one series
    empty   the query is valid but no series matched: the panel would say "No data"
    error   Prometheus rejected the query (its error text is the detail)

An empty target fails the check unless it is marked allowed-empty (`Query.allow_empty`);
an error always fails. Only an unreachable Prometheus raises (PrometheusUnavailable).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import httpx

from dashboards.build import all_dashboards
from dashboards.errors import PrometheusUnavailable
from dashboards.model import Dashboard, Target

Status = Literal["ok", "empty", "error"]

GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
}
"""Grafana's built-in interval variables, as they are at a 30 m range with 1 s scrapes."""
ALL = ".*"
"""The `All` value of every dashboard variable (a regex matching every value)."""
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class PanelResult:
    dashboard: str
    panel: str
    expr: str
    status: Status
    detail: str
    allowed_empty: bool = False

    @property
    def failed(self) -> bool:
        return self.status == "error" or (self.status == "empty" and not self.allowed_empty)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "failed": self.failed}


def variables(dashboard: Dashboard) -> dict[str, str]:
    """What each variable of `dashboard` stands for while checking."""
    seconds = int(dashboard.time_range[:-1]) * _SECONDS[dashboard.time_range[-1]]
    ranges = {
        "__range": dashboard.time_range,
        "__range_s": str(seconds),
        "__range_ms": str(seconds * 1000),
    }
    return {**GRAFANA_VARIABLES, **ranges, **{v.name: ALL for v in dashboard.variables}}


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace $name, ${name} and [[name]]; raise KeyError naming an unknown variable."""

    def one(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise KeyError(name)
        return values[name]

    return _VARIABLE.sub(one, expr)


def check(
    prometheus_url: str,
    dashboards: Sequence[Dashboard] | None = None,
    *,
    client: httpx.Client | None = None,
    timeout_s: float = 10.0,
) -> list[PanelResult]:
    """One result per target of `dashboards` (default: every dashboard, without SLO rules)."""
    base = prometheus_url.rstrip("/")
    chosen = list(dashboards) if dashboards is not None else all_dashboards()
    http = client or httpx.Client(timeout=timeout_s)
    try:
        _ready(http, base)
        return [
            _evaluate(http, base, target, variables(dashboard))
            for dashboard in chosen
            for target in dashboard.targets()
        ]
    finally:
        if client is None:
            http.close()


def _ready(http: httpx.Client, base: str) -> None:
    url = f"{base}/api/v1/status/buildinfo"
    try:
        response = http.get(url)
    except httpx.HTTPError as exc:
        raise PrometheusUnavailable(
            f"cannot reach Prometheus at {base} ({exc.__class__.__name__}: {exc}); "
            "is the stack up (`gameday up`)?"
        ) from None
    if response.status_code != 200:
        raise PrometheusUnavailable(
            f"{url} answered HTTP {response.status_code}: is {base} a Prometheus server?"
        )


def _evaluate(
    http: httpx.Client, base: str, target: Target, values: Mapping[str, str]
) -> PanelResult:
    query = target.query

    def result(status: Status, detail: str) -> PanelResult:
        allowed = query.allow_empty is not None
        if status == "empty" and allowed:
            detail = f"{detail}; allowed: {query.allow_empty}"
        return PanelResult(target.dashboard, target.panel, query.expr, status, detail, allowed)

    try:
        expr = substitute(query.expr, values)
    except KeyError as exc:
        return result("error", f"unknown template variable ${exc.args[0]}")
    try:
        response = http.post(f"{base}/api/v1/query", data={"query": expr})
        body = response.json()
    except httpx.HTTPError as exc:
        return result("error", f"request failed: {exc.__class__.__name__}: {exc}")
    except ValueError:
        return result("error", f"HTTP {response.status_code}, not JSON: {response.text[:200]}")
    if body.get("status") != "success":
        return result("error", f"{body.get('errorType', 'error')}: {body.get('error', body)}")
    return result(*_describe(body))


def _describe(body: dict[str, Any]) -> tuple[Status, str]:
    data = body.get("data", {})
    found = data.get("result", [])
    if data.get("resultType") == "scalar":
        found = [{"value": found}]
    warnings = "; ".join(body.get("warnings", []) + body.get("infos", []))
    suffix = f" (warnings: {warnings})" if warnings else ""
    if not found:
        return "empty", f"no series{suffix}"
    values = [_number(series.get("value", [0, "NaN"])[1]) for series in found]
    nan = sum(math.isnan(v) for v in values)
    note = f", {nan} NaN (no samples in the window)" if nan else ""
    return "ok", f"{len(found)} series{note}{suffix}"


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def render_table(results: Sequence[PanelResult]) -> str:
    """A plain-text table of results, failures with their query, and a summary line."""
    if not results:
        return "no targets checked\n"
    rows = [("STATUS", "DASHBOARD", "PANEL", "DETAIL")]
    rows += [(_label(r), r.dashboard, r.panel, r.detail) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for i, row in enumerate(rows):
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*padded, row[3]]))
        if i and results[i - 1].failed:
            lines.append(f"{'':{widths[0]}}  query: {results[i - 1].expr}")
    lines.append(summary(results))
    return "\n".join(lines) + "\n"


def _label(result: PanelResult) -> str:
    if result.failed:
        return result.status.upper()
    return "empty*" if result.status == "empty" else result.status


def summary(results: Sequence[PanelResult]) -> str:
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "empty", "error")}
    allowed = sum(r.status == "empty" and r.allowed_empty for r in results)
    failed = sum(r.failed for r in results)
    verdict = "all passed" if not failed else f"{failed} failed"
    return (
        f"{len(results)} targets: {counts['ok']} ok, {counts['empty']} empty "
        f"({allowed} allowed, marked *), {counts['error']} error: {verdict}"
    )
