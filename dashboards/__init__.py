"""Grafana dashboards generated with grafanalib from the metrics catalog and the SLOs.

`build` writes them as Grafana JSON (plus provisioning for compose's Grafana); `check`
evaluates every panel query against a live Prometheus, since Grafana itself does not run
on the machines the stack runs on.
"""

from dashboards.build import all_dashboards, build, to_json, validate_dashboard
from dashboards.check import PanelResult, check, render_table
from dashboards.commands import build_command, check_command, local_prometheus_url
from dashboards.errors import (
    DashboardError,
    InvalidDashboard,
    PrometheusUnavailable,
    UnknownLabel,
    UnknownMetric,
)
from dashboards.model import Annotation, Dashboard, Panel, Query, Row, Target, ValueText, Variable

__all__ = [
    "Annotation",
    "Dashboard",
    "DashboardError",
    "InvalidDashboard",
    "Panel",
    "PanelResult",
    "PrometheusUnavailable",
    "Query",
    "Row",
    "Target",
    "UnknownLabel",
    "UnknownMetric",
    "ValueText",
    "Variable",
    "all_dashboards",
    "build",
    "build_command",
    "check",
    "check_command",
    "local_prometheus_url",
    "render_table",
    "to_json",
    "validate_dashboard",
]
