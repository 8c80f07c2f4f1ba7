"""SLO specs, Prometheus rule generation, promtool tests, evaluation and reports."""

__all__: list[str] = []
