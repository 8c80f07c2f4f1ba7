"""`/metrics` at a fraction of the cost: the Prometheus text format (version 0.0.4).

prometheus_client's `generate_latest()` re-validates and re-escapes every metric and
label name of every sample on every scrape, about 12 µs a line. Prometheus scrapes each
service every second here, and py-spy on an edge fanning a match out to 1,000 fans found
a fifth of its CPU in that function (docs/benchmarks.md). Yet a series' name and labels do
not change from one scrape to the next: `Exposition` builds each series' `name{labels} `
prefix once and keeps it while the series exists, and formats only the values.

The text is the one `generate_latest()` writes for the same registry, line for line
(`tests/unit/test_exposition.py` compares them), so Prometheus sees no difference.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
_LEGACY_NAME: Final = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_OPENMETRICS_ONLY: Final = ("_created", "_gsum", "_gcount")
"""Samples the text format has no place for inside their family: each such suffix goes
out after the family as a gauge of its own, as generate_latest() does."""
_TYPES: Final = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram"}

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
_float_text: Callable[[float], str] = floatToGoString  # Go's formatting, as Prometheus'


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _prefix(name: str, labels: dict[str, str]) -> str:
    if not _LEGACY_NAME.match(name) or not all(_LEGACY_NAME.match(k) for k in labels):
        raise ValueError(f"metric {name} {sorted(labels)}: not a Prometheus 0.0.4 name")
    if not labels:
        return f"{name} "
    pairs = ",".join(f'{k}="{_escape_value(v)}"' for k, v in sorted(labels.items()))
    return f"{name}{{{pairs}}} "


class Exposition:
    """Renders `registry` for a scrape; keeps each series' prefix between scrapes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._prefixes: dict[SeriesKey, str] = {}

    def render(self) -> bytes:
        out: list[str] = []
        known: dict[SeriesKey, str] = self._prefixes
        kept: dict[SeriesKey, str] = {}
        for metric in self.registry.collect():
            family, kind = metric.name, metric.type
            if kind == "counter":
                family += "_total"
            elif kind == "info":
                family += "_info"
            kind = _TYPES.get(kind, "untyped" if kind == "unknown" else kind)
            help_text = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
            out.append(f"# HELP {family} {help_text}\n# TYPE {family} {kind}\n")
            apart: dict[str, list[str]] = {}
            for sample in metric.samples:
                line = self._line(sample, known, kept)
                suffix = sample.name[len(metric.name) :]
                if suffix in _OPENMETRICS_ONLY and sample.name == metric.name + suffix:
                    apart.setdefault(suffix, []).append(line)
                else:
                    out.append(line)
            for suffix, lines in sorted(apart.items()):
                out.append(f"# HELP {metric.name}{suffix} {help_text}\n")
                out.append(f"# TYPE {metric.name}{suffix} gauge\n")
                out += lines
        self._prefixes = kept  # series that are gone drop out of the cache
        return "".join(out).encode()

    @staticmethod
    def _line(sample: Sample, known: dict[SeriesKey, str], kept: dict[SeriesKey, str]) -> str:
        key = (sample.name, tuple(sample.labels.items()))
        prefix = known.get(key) or _prefix(sample.name, sample.labels)
        kept[key] = prefix
        value = _float_text(sample.value)
        if sample.timestamp is None:
            return f"{prefix}{value}\n"
        return f"{prefix}{value} {int(float(sample.timestamp) * 1000):d}\n"
