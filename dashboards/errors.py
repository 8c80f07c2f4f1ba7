"""What can go wrong building or checking dashboards.

    DashboardError                 base of everything raised here
     ├── InvalidDashboard          a dashboard cannot be built: fix the dashboard code
     │    ├── UnknownMetric        a query names a metric the catalog does not declare
     │    └── UnknownLabel         a query names a label its metric does not have
     └── PrometheusUnavailable     `check` cannot reach or talk to Prometheus at all

A query Prometheus rejects, or one that returns no series, is not an exception: `check`
reports it as data (a `PanelResult` with status "error" or "empty").
"""

from __future__ import annotations


class DashboardError(Exception):
    """Base class for dashboard errors."""


class InvalidDashboard(DashboardError, ValueError):
    """A dashboard definition is wrong; the build writes nothing."""


class UnknownMetric(InvalidDashboard):
    """A query names a metric that is neither in the catalog nor a listed third-party one."""


class UnknownLabel(InvalidDashboard):
    """A query selects or groups by a label that its metrics do not carry."""


class PrometheusUnavailable(DashboardError):
    """Prometheus could not be reached, or what answered is not a Prometheus API."""
