"""Check every dashboard against the metrics catalog, then write Grafana JSON and provisioning.

    out_dir/<uid>.json                                one per dashboard
    out_dir/provisioning/datasources/prometheus.yaml  the "prometheus" datasource
    out_dir/provisioning/dashboards/gameday.yaml      a file provider for out_dir

The same input always gives byte-identical files (sorted keys, no timestamps or ids that
depend on the run).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from dashboards import faults, internals, overview, provisioning
from dashboards._grafana import GRID_WIDTH, render
from dashboards.errors import InvalidDashboard
from dashboards.metrics import validate
from dashboards.model import Dashboard, Panel

MAX_QUERIES = 26  # refIds A..Z


def all_dashboards(*, with_slo_rules: bool = False) -> list[Dashboard]:
    """Every gameday dashboard. `with_slo_rules` adds the panels on slo/'s recording rules."""
    return [
        overview.dashboard(with_slo_rules=with_slo_rules),
        internals.dashboard(),
        faults.dashboard(),
    ]


def validate_dashboard(dashboard: Dashboard) -> None:
    """Raise InvalidDashboard (UnknownMetric, UnknownLabel) for the first thing wrong."""
    for panel in dashboard.panels():
        _validate_panel(dashboard, panel)
    for target in dashboard.targets():
        validate(target.query.expr, f"{target.dashboard} / {target.panel}")


def _validate_panel(dashboard: Dashboard, panel: Panel) -> None:
    where = f"{dashboard.title} / {panel.title or '(untitled panel)'}"
    if not panel.title.strip() or not panel.description.strip():
        raise InvalidDashboard(f"{where}: every panel needs a title and a description")
    if not panel.queries or len(panel.queries) > MAX_QUERIES:
        raise InvalidDashboard(f"{where}: a panel has 1 to {MAX_QUERIES} queries")
    if not 1 <= panel.width <= GRID_WIDTH or panel.height < 1:
        raise InvalidDashboard(f"{where}: {panel.width}x{panel.height} does not fit the grid")


def to_json(dashboard: Dashboard) -> str:
    """The dashboard's Grafana JSON, as written to <uid>.json."""
    return json.dumps(render(dashboard), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build(
    out_dir: Path,
    *,
    with_slo_rules: bool = False,
    dashboards: Sequence[Dashboard] | None = None,
) -> list[Path]:
    """Write every dashboard and the provisioning files; return the paths written.

    Every dashboard is validated before anything is written, so a dashboard naming a metric
    the catalog lacks leaves `out_dir` untouched.
    """
    chosen = (
        list(dashboards)
        if dashboards is not None
        else all_dashboards(with_slo_rules=with_slo_rules)
    )
    uids = [d.uid for d in chosen]
    if len(set(uids)) != len(uids):
        raise InvalidDashboard(f"dashboard uids must be unique: {uids}")
    for dashboard in chosen:
        validate_dashboard(dashboard)
    files = {f"{d.uid}.json": to_json(d) for d in chosen}
    files["provisioning/datasources/prometheus.yaml"] = provisioning.datasources_yaml()
    files["provisioning/dashboards/gameday.yaml"] = provisioning.dashboards_yaml()
    written = []
    for relative, text in files.items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
