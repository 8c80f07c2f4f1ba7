"""Small builders for the PromQL the dashboards repeat. Metrics are named as in the catalog.

`RATE` is Grafana's `$__rate_interval` (at least four scrapes, widening as you zoom out);
latency percentiles and SLO shares use a fixed one-minute window instead, the window the
latency alert uses, so a panel and the alert never disagree about the same minute.
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboards.errors import InvalidDashboard
from pipeline.telemetry import CATALOG

RATE = "$__rate_interval"
RANGE = "$__range"
IN_REGION = 'region=~"$region"'
"""Matches the regions picked in the `region` variable (All is the regex `.*`)."""

GOALS = ("goal", "own_goal", "penalty_goal")
"""Events that change the score: their SLO threshold is 1 s."""
CARDS_AND_SUBSTITUTIONS = ("yellow_card", "red_card", "substitution")
"""Their SLO threshold is 3 s."""


def _selector(*matchers: str) -> str:
    present = [m for m in matchers if m]
    return "{" + ", ".join(present) + "}" if present else ""


def _by(*labels: str) -> str:
    return f"by ({', '.join(labels)}) " if labels else ""


def one_of(label: str, values: Sequence[str]) -> str:
    return f'{label}=~"{"|".join(values)}"'


def rate(
    metric: str, *, by: Sequence[str] = (), where: Sequence[str] = (), window: str = RATE
) -> str:
    """Per-second rate of a counter, summed by `by`."""
    return f"sum {_by(*by)}(rate({metric}{_selector(*where)}[{window}]))"


def increase(
    metric: str, *, by: Sequence[str] = (), where: Sequence[str] = (), window: str = "1m"
) -> str:
    """How much a counter grew over `window` (one minute: counts of rare events per minute)."""
    return f"sum {_by(*by)}(increase({metric}{_selector(*where)}[{window}]))"


def quantile(
    q: float,
    histogram: str,
    *,
    by: Sequence[str] = (),
    where: Sequence[str] = (),
    window: str = "1m",
) -> str:
    """The q-quantile of a catalog histogram over `window`, per `by`."""
    inner = f"rate({histogram}_bucket{_selector(*where)}[{window}])"
    return f"histogram_quantile({q}, sum {_by('le', *by)}({inner}))"


def le(histogram: str, threshold_s: float) -> str:
    """A matcher for the bucket at `threshold_s`, which the catalog must declare.

    prometheus_client writes `le="1.0"`; Prometheus 3 stores it as `le="1"`: both match.
    """
    spec = CATALOG.get(histogram)
    if spec is None or spec.kind != "histogram" or threshold_s not in (spec.buckets or ()):
        raise InvalidDashboard(
            f"{histogram} has no bucket at {threshold_s} s in the metrics catalog: a share "
            "under a threshold needs a bucket boundary exactly there"
        )
    written = repr(float(threshold_s))
    short = f"{threshold_s:g}"
    values = [short] if short == written else [short, written.replace(".", "\\\\.")]
    return f'le=~"{"|".join(values)}"'


def share_within(
    histogram: str,
    threshold_s: float,
    *,
    by: Sequence[str] = (),
    where: Sequence[str] = (),
    window: str = "1m",
) -> str:
    """The share of observations at or under `threshold_s`: bucket(le) / count."""
    at_or_under = (*where, le(histogram, threshold_s))
    bucket = increase(f"{histogram}_bucket", by=by, where=at_or_under, window=window)
    count = increase(f"{histogram}_count", by=by, where=where, window=window)
    return f"{bucket} / {count}"
