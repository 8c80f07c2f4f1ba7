"""Dashboards as plain typed values: what each panel shows and how to read it.

These describe a dashboard independently of grafanalib. `render` turns one into Grafana
JSON; `check` evaluates its queries against a live Prometheus. A query that may
legitimately have no series on a healthy stack says so (`allow_empty`, with the reason),
and the reason is shown in its panel's description.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

Unit = Literal["s", "percentunit", "short", "none", "ops", "wps", "reqps", "Bps", "bytes"]
"""Grafana unit ids used here: seconds, 0-1 as a percentage, plain numbers, per second."""

PanelKind = Literal["timeseries", "stat", "state_timeline", "table"]

DATASOURCE: Final = {"type": "prometheus", "uid": "prometheus"}
"""Every panel reads the Prometheus datasource that provisioning declares with this uid."""


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False
    """Evaluate once at the end of the time range (stats and tables)."""
    table: bool = False
    """Return the series as table rows (format "table"), labels as columns."""
    allow_empty: str | None = None
    """Why this query may return no series on a healthy stack; None means it must not."""


@dataclass(frozen=True)
class ValueText:
    """Show `value` as `text` in `color` (state timelines and stats)."""

    value: int
    text: str
    color: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    """What the panel shows and what a reader should look for."""
    unit: Unit
    queries: tuple[Query, ...]
    kind: PanelKind = "timeseries"
    width: int = 12
    height: int = 8
    states: tuple[ValueText, ...] = ()

    @property
    def full_description(self) -> str:
        reasons = [q.allow_empty for q in self.queries if q.allow_empty]
        if not reasons:
            return self.description
        return f"{self.description}\n\nMay show no data on a healthy stack: {' '.join(reasons)}"


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Variable:
    """A template variable listing the values of `label` on `metric` (multi, with All)."""

    name: str
    metric: str
    label: str

    @property
    def query(self) -> str:
        """Grafana's Prometheus variable query."""
        return f"label_values({self.metric}, {self.label})"

    @property
    def expr(self) -> str:
        """The PromQL equivalent of `query`, for checking that the variable has values."""
        return f"group by ({self.label}) ({self.metric})"


@dataclass(frozen=True)
class Annotation:
    """Grafana annotations from a Prometheus query: one region per series while non-zero."""

    name: str
    expr: str
    title_format: str
    text_format: str
    tag_keys: tuple[str, ...]
    color: str
    allow_empty: str | None = None


@dataclass(frozen=True)
class Target:
    """One query of a dashboard, where it is shown (for `check` and the catalog checks)."""

    dashboard: str
    panel: str
    query: Query


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    variables: tuple[Variable, ...] = ()
    annotations: tuple[Annotation, ...] = ()
    tags: tuple[str, ...] = ("gameday",)
    refresh: str = "5s"
    time_range: str = "30m"
    """Shown from now-`time_range` to now; also what `$__range` stands for."""

    def panels(self) -> Iterator[Panel]:
        for row in self.rows:
            yield from row.panels

    def targets(self) -> Iterator[Target]:
        """Every query Grafana will run for this dashboard: variables, annotations, panels."""
        for variable in self.variables:
            yield Target(self.title, f"variable ${variable.name}", Query(variable.expr))
        for annotation in self.annotations:
            query = Query(annotation.expr, allow_empty=annotation.allow_empty)
            yield Target(self.title, f"annotation: {annotation.name}", query)
        for panel in self.panels():
            for query in panel.queries:
                yield Target(self.title, panel.title, query)
