"""Which metrics a query names, and whether the metrics catalog (or a listed source) has them.

Our own metrics come only from `pipeline.telemetry.CATALOG`. Anything else a dashboard
reads is listed here by its exact name, with the labels it carries, so a typo in a query
fails the build instead of drawing an empty panel.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from dashboards.errors import UnknownLabel, UnknownMetric
from pipeline.telemetry import CATALOG, MetricSpec

TARGET_LABELS = ("job", "instance")
"""Labels Prometheus adds to every scraped series."""

SLOTH_LABELS = ("sloth_id", "sloth_service", "sloth_slo")

THIRD_PARTY: dict[str, tuple[str, ...] | None] = {
    # Prometheus itself.
    "up": (),
    "ALERTS": None,  # carries every label of the alert rule: not checked
    # Kafka's JMX exporter (pipeline/deploy/configs.py JMX_EXPORTER): a meter's count.
    "kafka_server_brokertopicmetrics_count": ("name", "topic"),
    # Toxiproxy 2.12 with -proxy-metrics.
    "toxiproxy_proxy_received_bytes_total": ("proxy", "direction", "listener", "upstream"),
    "toxiproxy_proxy_sent_bytes_total": ("proxy", "direction", "listener", "upstream"),
    # Sloth-style recording rules that slo/ generates.
    "slo:sli_error:ratio_rate5m": (*SLOTH_LABELS, "sloth_window"),
    "slo:sli_error:ratio_rate1h": (*SLOTH_LABELS, "sloth_window"),
    "slo:error_budget:ratio": SLOTH_LABELS,
    "slo:objective:ratio": SLOTH_LABELS,
}
"""Metrics from outside the catalog: name -> labels (None: any label)."""


_HISTOGRAM_SERIES = ("_bucket", "_count", "_sum")
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})
_AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
    | {"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)
"""May be followed by `by (...)` before their parenthesis, so they are not metric names."""
_TOKEN = re.compile(
    r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    |(?P<range>\[[^\]]*\])
    |(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[a-z]*)
    |(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    |(?P<punct>[{}(),])
    |(?P<space>\s+)
    |(?P<op>.)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class References:
    selectors: tuple[Selector, ...]
    grouping: tuple[str, ...]
    """Labels named in by/without/on/ignoring/group_left/group_right clauses."""


def _tokens(expr: str) -> list[tuple[str, str]]:
    return [
        (match.lastgroup or "", match.group())
        for match in _TOKEN.finditer(expr)
        if match.lastgroup not in ("space", "string", "range", "number")
    ]


def _labels_until(tokens: list[tuple[str, str]], i: int, end: str) -> tuple[list[str], int]:
    """Identifiers from tokens[i] up to the `end` punctuation; the index after it."""
    labels: list[str] = []
    expect_name = True
    while i < len(tokens) and tokens[i][1] != end:
        kind, text = tokens[i]
        if kind == "ident" and expect_name:
            labels.append(text)
            expect_name = False
        elif text == ",":
            expect_name = True
        i += 1
    return labels, i + 1


def references(expr: str) -> References:
    """The metric selectors and grouping labels in a PromQL expression."""
    tokens = _tokens(expr)
    selectors: list[Selector] = []
    grouping: list[str] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        after = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        i += 1
        if kind == "ident" and text in _GROUPING:
            if after == "(":
                named, i = _labels_until(tokens, i + 1, ")")
                grouping += named
        elif kind == "ident" and after != "(" and text not in _KEYWORDS | _AGGREGATIONS:
            matched: list[str] = []
            if after == "{":
                matched, i = _labels_until(tokens, i + 1, "}")
            selectors.append(Selector(text, tuple(matched)))
    return References(tuple(selectors), tuple(grouping))


def series_labels(name: str) -> tuple[str, ...] | None:
    """The labels a series called `name` carries (None: not checked).

    Raises UnknownMetric when neither the catalog nor the lists above declare it.
    """
    spec = _catalog_spec(name)
    if spec is not None:
        extra = ("le",) if name.endswith("_bucket") else ()
        return (*spec.labels, *extra, *TARGET_LABELS)
    if name in THIRD_PARTY:
        labels = THIRD_PARTY[name]
        return None if labels is None else (*labels, *TARGET_LABELS)
    hint = ""
    base = name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
    if base in CATALOG and CATALOG[base].kind == "histogram":
        hint = f" ({base} is a histogram: query {base}_bucket, _count or _sum)"
    raise UnknownMetric(
        f"{name!r} is not in the metrics catalog (pipeline/telemetry.py CATALOG) nor a "
        f"listed third-party metric (dashboards/metrics.py THIRD_PARTY){hint}"
    )


def _catalog_spec(name: str) -> MetricSpec | None:
    spec = CATALOG.get(name)
    if spec is not None:
        return None if spec.kind == "histogram" else spec  # a histogram has no bare series
    for suffix in _HISTOGRAM_SERIES:
        base = CATALOG.get(name.removesuffix(suffix))
        if name.endswith(suffix) and base is not None and base.kind == "histogram":
            return base
    return None


def validate(expr: str, where: str) -> References:
    """Raise UnknownMetric/UnknownLabel, naming `where`, for anything `expr` gets wrong."""
    refs = references(expr)
    if not refs.selectors:
        raise UnknownMetric(f"{where}: {expr!r} reads no metric")
    known: set[str] = set()
    unchecked = False
    for selector in refs.selectors:
        try:
            labels = series_labels(selector.metric)
        except UnknownMetric as exc:
            raise UnknownMetric(f"{where}: {exc}") from None
        if labels is None:
            unchecked = True
            continue
        known.update(labels)
        for label in _unknown(selector.labels, labels):
            raise UnknownLabel(
                f"{where}: {selector.metric} has no label {label!r} (it has: {', '.join(labels)})"
            )
    if not unchecked:
        for label in _unknown(refs.grouping, tuple(known)):
            raise UnknownLabel(f"{where}: no metric in {expr!r} has the label {label!r}")
    return refs


def _unknown(used: tuple[str, ...], allowed: tuple[str, ...]) -> Iterator[str]:
    return (label for label in used if label != "__name__" and label not in allowed)
