"""Grafana dashboards generated with grafanalib from the metrics catalog and the SLOs."""

__all__: list[str] = []
