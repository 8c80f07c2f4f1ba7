"""SLOs -> Prometheus recording and alerting rules, in Sloth's names and labels.

For each SLO:
- `slo:sli_error:ratio_rate<W>` for the alert windows W (5m 30m 1h 2h 6h 1d 3d) and the
  SLO period, labels `sloth_id`, `sloth_service`, `sloth_slo`, `sloth_window` (plus any
  `group_by` label), and Sloth's metadata series (`slo:objective:ratio`,
  `slo:error_budget:ratio`, `slo:time_period:days`, burn rates, budget remaining);
- multiwindow, multi-burn-rate alerts (Google SRE Workbook, ch. 5): page when the 1h and
  5m windows burn 2% of the period's budget per hour-equivalent (14.4x for 30 days) or 6h
  and 30m burn 5% (6x); ticket on 1d/2h at 10% (3x) and 3d/6h at 10% (1x). For another
  period the windows and budget shares stay, and factor = share x period / long window.

Plus the runbook's operational alerts (latency p99, primary feed, region skew, canary).

At `time_scale` F every range and `for:` is divided by F (names keep the declared
windows, so dashboards and habits carry over); promtool tests check the unscaled rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from pipeline.telemetry import le_label
from slo.spec import LatencySli, Slo, format_duration

DAY = 86400
WINDOWS = {"5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21600, "1d": DAY, "3d": 3 * DAY}


@dataclass(frozen=True)
class BurnAlert:
    severity: str
    long: str
    short: str
    share: float
    """The share of the period's error budget the long window may burn."""

    def factor(self, period_s: int) -> float:
        return round(self.share * period_s / WINDOWS[self.long], 6)


BURN_ALERTS = (
    BurnAlert("page", "1h", "5m", 0.02),
    BurnAlert("page", "6h", "30m", 0.05),
    BurnAlert("ticket", "1d", "2h", 0.10),
    BurnAlert("ticket", "3d", "6h", 0.10),
)


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[-_]", name))


def alert_name(slo: Slo) -> str:
    return f"{camel(slo.name)}ErrorBudgetBurn"


def period_name(slo: Slo) -> str:
    return format_duration(slo.window_s)


def sloth_labels(slo: Slo) -> dict[str, str]:
    return {"sloth_id": slo.id, "sloth_service": slo.service, "sloth_slo": slo.name}


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def sli_error_expr(slo: Slo, range_: str) -> str:
    """The SLI's error ratio over `range_`, grouped by the SLO's group_by labels."""
    by = f" by ({', '.join(slo.group_by)})" if slo.group_by else ""
    if isinstance(slo.sli, LatencySli):
        sli = slo.sli
        matchers = "".join(f',{k}=~"{v}"' for k, v in sli.selector.items())
        le = le_label(sli.threshold_s)
        good = f'sum{by}(rate({sli.metric}_bucket{{le="{le}"{matchers}}}[{range_}]))'
        total = f"sum{by}(rate({sli.metric}_count{{{matchers.lstrip(',')}}}[{range_}]))"
        return f"1 - ({good} / {total})"
    errors = slo.sli.errors.replace("{{window}}", range_)
    total = slo.sli.total.replace("{{window}}", range_)
    return f"({errors}) / ({total})"


def recording_rules(slo: Slo, time_scale: float) -> list[dict[str, Any]]:
    labels = sloth_labels(slo)
    windows = {**WINDOWS, period_name(slo): slo.window_s}
    rules: list[dict[str, Any]] = [
        {
            "record": f"slo:sli_error:ratio_rate{name}",
            "expr": sli_error_expr(slo, format_duration(seconds / time_scale)),
            "labels": {**labels, "sloth_window": name},
        }
        for name, seconds in windows.items()
    ]
    sel = _selector(labels)
    budget = round(1 - slo.objective, 12)
    period = period_name(slo)
    rules += [
        {"record": "slo:objective:ratio", "expr": f"vector({slo.objective})", "labels": labels},
        {"record": "slo:error_budget:ratio", "expr": f"vector({budget})", "labels": labels},
        {
            "record": "slo:time_period:days",
            "expr": f"vector({slo.window_s / DAY:g})",
            "labels": labels,
        },
        {
            "record": "slo:current_burn_rate:ratio",
            "expr": f"slo:sli_error:ratio_rate5m{{{sel}}} / on({', '.join(labels)}) "
            f"group_left slo:error_budget:ratio{{{sel}}}",
            "labels": labels,
        },
        {
            "record": "slo:period_burn_rate:ratio",
            "expr": f"slo:sli_error:ratio_rate{period}{{{sel}}} / on({', '.join(labels)}) "
            f"group_left slo:error_budget:ratio{{{sel}}}",
            "labels": labels,
        },
        {
            "record": "slo:period_error_budget_remaining:ratio",
            "expr": f"1 - slo:period_burn_rate:ratio{{{sel}}}",
            "labels": labels,
        },
        {
            "record": "sloth_slo_info",
            "expr": "vector(1)",
            "labels": {
                **labels,
                "sloth_objective": f"{slo.objective * 100:g}",
                "sloth_spec": "gameday/v1",
            },
        },
    ]
    return rules


def burn_condition(slo: Slo, alert: BurnAlert) -> str:
    sel = _selector(sloth_labels(slo))
    threshold = f"({alert.factor(slo.window_s):g} * {round(1 - slo.objective, 12):g})"
    return " and ".join(
        f"max(slo:sli_error:ratio_rate{w}{{{sel}}} > {threshold}) without (sloth_window)"
        for w in (alert.short, alert.long)
    )


def alert_rules(slo: Slo) -> list[dict[str, Any]]:
    out = []
    for severity in ("page", "ticket"):
        conditions = [f"({burn_condition(slo, a)})" for a in BURN_ALERTS if a.severity == severity]
        out.append(
            {
                "alert": alert_name(slo),
                "expr": " or ".join(conditions),
                "labels": {
                    "severity": severity,
                    "sloth_severity": severity,
                    "service": slo.service,
                    "slo": slo.name,
                },
                "annotations": {
                    "summary": f"{slo.service} is burning the error budget of {slo.name} too fast",
                    "description": slo.description or f"{slo.name} at objective {slo.objective}",
                    "runbook_url": "docs/runbook.md#slo-burn",
                },
            }
        )
    return out


# --- the runbook's operational alerts ---------------------------------------------------

LATENCY_P99 = (
    "histogram_quantile(0.99, sum by (le, region, version) "
    "(rate(gameday_event_latency_seconds_bucket[{r}])))"
)
REGION_P99 = (
    "histogram_quantile(0.99, sum by (le, region) "
    "(rate(gameday_event_latency_seconds_bucket[{r}])))"
)


def operational_rules(time_scale: float) -> list[dict[str, Any]]:
    def d(seconds: float) -> str:
        return format_duration(seconds / time_scale)

    m = d(60)
    service = {"service": "gameday-pipeline"}
    return [
        {
            "alert": "ScoreLatencyP99High",
            "expr": f"{LATENCY_P99.format(r=m)} > 2",
            "for": m,
            "labels": {"severity": "page", **service},
            "annotations": {
                "summary": "p99 source-to-fan latency is over 2 s",
                "description": "Fans in a region (and edge version) see updates late.",
                "runbook_url": "docs/runbook.md#scorelatencyp99high",
            },
        },
        {
            "alert": "PrimaryFeedDown",
            "expr": "min(gameday_feed_primary_connected) == 0 "
            f"or max(gameday_feed_last_packet_age_seconds) > {10 / time_scale:g}",
            "for": d(30),
            "labels": {"severity": "page", "feed": "primary", **service},
            "annotations": {
                "summary": "the primary data vendor is down or silent",
                "description": "Ingest has not heard from the primary vendor; fans "
                "are on the delayed fallback feed.",
                "runbook_url": "docs/runbook.md#primaryfeeddown",
            },
        },
        {
            "alert": "RegionSkewHigh",
            "expr": f"max({REGION_P99.format(r=m)}) - min({REGION_P99.format(r=m)}) > 1",
            "for": m,
            "labels": {"severity": "ticket", **service},
            "annotations": {
                "summary": "one region's p99 latency is over 1 s behind another's",
                "description": "A region lags: check its edge and its Redis link.",
                "runbook_url": "docs/runbook.md#regionskewhigh",
            },
        },
        {
            "alert": "CanaryErrorRateHigh",
            "expr": (
                f'sum by (region) (rate(gameday_http_requests_total{{version="canary",'
                f'status=~"5.."}}[{m}])) / sum by (region) (rate(gameday_http_requests_total'
                f'{{version="canary"}}[{m}])) > 0.05'
            ),
            "for": m,
            "labels": {"severity": "page", "version": "canary", **service},
            "annotations": {
                "summary": "the canary edge answers over 5% of requests with errors",
                "description": "Roll the canary back.",
                "runbook_url": "docs/runbook.md#canaryerrorratehigh",
            },
        },
    ]


def rule_files(slos: list[Slo], *, time_scale: float = 1.0) -> dict[str, dict[str, Any]]:
    """File name -> Prometheus rule file content."""
    if not time_scale > 0:
        raise ValueError(f"time scale must be positive, got {time_scale}")
    groups = []
    for slo in slos:
        groups.append(
            {
                "name": f"sloth-slo-sli-recordings-{slo.id}",
                "rules": recording_rules(slo, time_scale),
            }
        )
        groups.append({"name": f"sloth-slo-alerts-{slo.id}", "rules": alert_rules(slo)})
    return {
        "slo-rules.yml": {"groups": groups},
        "operational-rules.yml": {
            "groups": [{"name": "gameday-operational", "rules": operational_rules(time_scale)}]
        },
    }


def dump(content: dict[str, Any]) -> str:
    return yaml.safe_dump(content, sort_keys=False, width=10**6)  # one line per expression
