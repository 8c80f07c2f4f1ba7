"""The one place that talks to grafanalib (untyped): `model` values in, Grafana JSON out.

Panels are laid out on Grafana's 24-column grid in the order given, each row starting
with a row header; ids count up from 1 in that order, so the output is stable.
"""

from __future__ import annotations

import json
from typing import Any

from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

from dashboards.model import DATASOURCE, Annotation, Dashboard, Panel, Query, Variable

GRID_WIDTH = 24
SCHEMA_VERSION = 39
"""Grafana 10's dashboard schema: the JSON below is already in that form."""


def render(dashboard: Dashboard) -> dict[str, Any]:
    """Grafana's JSON model of `dashboard`, as plain dicts and lists."""
    built = g.Dashboard(
        title=dashboard.title,
        uid=dashboard.uid,
        description=dashboard.description,
        tags=list(dashboard.tags),
        refresh=dashboard.refresh,
        time=g.Time(f"now-{dashboard.time_range}", "now"),
        timezone="utc",
        editable=False,
        graphTooltip=g.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        schemaVersion=SCHEMA_VERSION,
        panels=_layout(dashboard),
        templating=g.Templating(list=[_variable(v) for v in dashboard.variables]),
        annotations=g.Annotations(list=[_annotation(a) for a in dashboard.annotations]),
    )
    data: dict[str, Any] = json.loads(json.dumps(built.to_json_data(), cls=DashboardEncoder))
    return data


def _layout(dashboard: Dashboard) -> list[object]:
    out: list[object] = []
    y = 0
    for row in dashboard.rows:
        grid = g.GridPos(h=1, w=GRID_WIDTH, x=0, y=y)
        out.append(g.RowPanel(title=row.title, gridPos=grid, id=len(out) + 1))
        y += 1
        x = line_height = 0
        for panel in row.panels:
            if x + panel.width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            grid = g.GridPos(h=panel.height, w=panel.width, x=x, y=y)
            out.append(_panel(panel, grid, len(out) + 1))
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return out


def _panel(panel: Panel, grid: object, panel_id: int) -> object:
    common: dict[str, Any] = {
        "id": panel_id,
        "title": panel.title,
        "description": panel.full_description,
        "dataSource": dict(DATASOURCE),
        "targets": [_target(q, ref) for q, ref in zip(panel.queries, _ref_ids(), strict=False)],
        "gridPos": grid,
        "thresholds": [{"color": "green", "value": None}],
    }
    mappings = _mappings(panel)
    if panel.kind == "timeseries":
        return g.TimeSeries(unit=panel.unit, legendDisplayMode="list", **common)
    if panel.kind == "stat":
        return g.Stat(
            format=panel.unit,
            mappings=mappings,
            reduceCalc="lastNotNull",
            graphMode="none",
            **common,
        )
    if panel.kind == "table":
        return g.Table(unit=panel.unit, **common)
    return g.StateTimeline(
        mappings=mappings,
        colorMode="fixed" if not mappings else "thresholds",
        extraJson={"fieldConfig": {"defaults": {"unit": panel.unit}}},
        **common,
    )


def _ref_ids() -> list[str]:
    return [chr(c) for c in range(ord("A"), ord("Z") + 1)]


def _target(query: Query, ref_id: str) -> object:
    return g.Target(
        expr=query.expr,
        legendFormat=query.legend,
        refId=ref_id,
        intervalFactor=1,
        instant=query.instant,
        format="table" if query.table else "time_series",
        datasource=dict(DATASOURCE),
    )


def _mappings(panel: Panel) -> list[dict[str, Any]]:
    if not panel.states:
        return []
    options = {
        str(state.value): {"text": state.text, "color": state.color, "index": i}
        for i, state in enumerate(panel.states)
    }
    return [{"type": "value", "options": options}]


def _variable(variable: Variable) -> object:
    template = g.Template(
        name=variable.name,
        label=variable.name.capitalize(),
        query=variable.query,
        dataSource=dict(DATASOURCE),
        includeAll=True,
        multi=True,
        allValue=".*",
        refresh=g.REFRESH_ON_TIME_RANGE_CHANGE,
        sort=g.SORT_ALPHA_ASC,
    )
    template._current = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return template


def _annotation(annotation: Annotation) -> dict[str, Any]:
    return {
        "datasource": dict(DATASOURCE),
        "enable": True,
        "hide": False,
        "iconColor": annotation.color,
        "name": annotation.name,
        "expr": annotation.expr,
        "step": "5s",
        "titleFormat": annotation.title_format,
        "textFormat": annotation.text_format,
        "tagKeys": ",".join(annotation.tag_keys),
        "useValueForTime": False,
    }
