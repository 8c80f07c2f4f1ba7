"""SLO specs: our own YAML, and OpenSLO v1 `SLO` documents, read into one model.

Our format (slo/specs/*.yaml):

    service: gameday-pipeline
    slos:
      - name: goal-latency
        description: Goals reach fans within 1 s.
        objective: 0.99            # or "99%"
        window: 30d
        key: true                  # failing it fails the run, whatever the rest
        sli:
          latency:                 # good = observations at or under the threshold
            metric: gameday_event_latency_seconds
            threshold_s: 1
            selector: {event_type: "goal|own_goal|penalty_goal"}   # regex matchers
        group_by: [region]         # optional: one SLI (and alert) per region
      - name: stream-availability
        objective: 99.99%
        sli:
          ratio:                   # PromQL; {{window}} is replaced by each window
            errors: sum(rate(...[{{window}}]))
            total: sum(rate(...[{{window}}]))

OpenSLO v1: `kind: SLO` with `indicator.spec.ratioMetric` (good or bad, and total, as
`metricSource.spec.query` with `{{window}}` as the range) or `thresholdMetric` (its
query a histogram selector such as `gameday_event_latency_seconds{event_type=~"goal"}`,
the objective's `op: lte` and `value` the threshold in seconds), `timeWindow` (one
duration), `budgetingMethod: Occurrences`, one objective (`target` or `targetPercent`);
the label `gameday/key: "true"` marks a key SLO. Both read into `Slo`.

Every error names the file and the field (`SpecError`), and the CLI exits 2 on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.telemetry import CATALOG

DURATION = re.compile(r"^(\d+)(s|m|h|d|w)$")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class SpecError(ValueError):
    """An invalid spec: `where` is "FILE: field.path"."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


def parse_duration(text: Any, where: str) -> int:
    """Seconds in a Prometheus-style duration of one unit: 30s, 5m, 1h, 30d, 4w."""
    found = DURATION.match(str(text))
    if not found or int(found.group(1)) == 0:
        raise SpecError(where, f"{text!r} is not a duration like 30s, 5m, 1h or 30d")
    return int(found.group(1)) * UNIT_S[found.group(2)]


def format_duration(seconds: float) -> str:
    """The shortest exact Prometheus duration for `seconds` (rounded to whole ms)."""
    ms = round(seconds * 1000)
    for unit, size in (
        ("w", 604_800_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{max(ms, 1)}ms"


@dataclass(frozen=True)
class LatencySli:
    metric: str
    threshold_s: float
    selector: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RatioSli:
    errors: str
    total: str


@dataclass(frozen=True)
class Slo:
    service: str
    name: str
    objective: float
    window_s: int
    sli: LatencySli | RatioSli
    description: str = ""
    key: bool = False
    group_by: tuple[str, ...] = ()
    source: str = ""

    @property
    def error_budget(self) -> float:
        return 1 - self.objective

    @property
    def id(self) -> str:
        return f"{self.service}-{self.name}"


def _objective(value: Any, where: str) -> float:
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            value = float(value.strip()[:-1]) / 100
        except ValueError:
            raise SpecError(where, f"{value!r} is not a percentage") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(where, f"must be a ratio like 0.99 or a percentage like 99%, got {value!r}")
    if not 0 < value < 1:
        raise SpecError(where, f"must be between 0 and 1 (exclusive), got {value}")
    return round(float(value), 12)  # 99.99% is 0.9999, not 0.99989999...


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(where, f"must be a mapping, got {type(value).__name__}")
    return value


def _text(raw: Mapping[str, Any], key: str, where: str, *, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{where}.{key}", "is required and must be a non-empty string")
    return value


def _known(raw: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise SpecError(where, f"unknown field(s): {', '.join(map(str, unknown))}")


def _query(text: str, where: str) -> str:
    if "{{window}}" not in text:
        raise SpecError(where, "the query must use {{window}} as its range, e.g. [{{window}}]")
    return text.strip()


def _latency(raw: Mapping[str, Any], where: str) -> LatencySli:
    _known(raw, ("metric", "threshold_s", "selector"), where)
    metric = _text(raw, "metric", where)
    spec = CATALOG.get(metric)
    if spec is None or spec.kind != "histogram":
        raise SpecError(f"{where}.metric", f"{metric} is not a histogram in the metrics catalog")
    threshold = raw.get("threshold_s")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold <= 0:
        raise SpecError(f"{where}.threshold_s", f"must be a positive number, got {threshold!r}")
    if spec.buckets and float(threshold) not in spec.buckets:
        raise SpecError(
            f"{where}.threshold_s",
            f"{metric} has no bucket at {threshold}; its buckets are {list(spec.buckets)}",
        )
    selector = dict(_mapping(raw.get("selector", {}), f"{where}.selector"))
    for label, value in selector.items():
        if label not in spec.labels:
            raise SpecError(f"{where}.selector.{label}", f"{metric} has no label {label}")
        if not isinstance(value, str):
            raise SpecError(f"{where}.selector.{label}", "must be a string (a regex)")
    return LatencySli(metric, float(threshold), selector)


def _ours(doc: Mapping[str, Any], source: str) -> list[Slo]:
    _known(doc, ("service", "slos"), source)
    service = _text(doc, "service", source)
    items = doc.get("slos")
    if not isinstance(items, list) or not items:
        raise SpecError(f"{source}: slos", "must be a non-empty list")
    out = []
    for i, item in enumerate(items):
        where = f"{source}: slos[{i}]"
        raw = _mapping(item, where)
        _known(raw, ("name", "description", "objective", "window", "key", "sli", "group_by"), where)
        name = _text(raw, "name", where)
        if not NAME.match(name):
            raise SpecError(f"{where}.name", f"{name!r} must be lower-case words joined by -")
        where = f"{source}: slos[{i}] ({name})"
        sli_raw = _mapping(raw.get("sli"), f"{where}.sli")
        if set(sli_raw) == {"latency"}:
            sli: LatencySli | RatioSli = _latency(
                _mapping(sli_raw["latency"], f"{where}.sli.latency"), f"{where}.sli.latency"
            )
        elif set(sli_raw) == {"ratio"}:
            ratio = _mapping(sli_raw["ratio"], f"{where}.sli.ratio")
            _known(ratio, ("errors", "total"), f"{where}.sli.ratio")
            sli = RatioSli(
                _query(_text(ratio, "errors", f"{where}.sli.ratio"), f"{where}.sli.ratio.errors"),
                _query(_text(ratio, "total", f"{where}.sli.ratio"), f"{where}.sli.ratio.total"),
            )
        else:
            raise SpecError(f"{where}.sli", "must have exactly one of: latency, ratio")
        group_by = raw.get("group_by", [])
        if not isinstance(group_by, list) or not all(
            isinstance(g, str) and LABEL.match(g) for g in group_by
        ):
            raise SpecError(f"{where}.group_by", "must be a list of label names")
        key = raw.get("key", False)
        if not isinstance(key, bool):
            raise SpecError(f"{where}.key", "must be true or false")
        out.append(
            Slo(
                service=service,
                name=name,
                objective=_objective(raw.get("objective"), f"{where}.objective"),
                window_s=parse_duration(raw.get("window", "30d"), f"{where}.window"),
                sli=sli,
                description=str(raw.get("description", "")),
                key=key,
                group_by=tuple(group_by),
                source=source,
            )
        )
    return out


def _openslo(doc: Mapping[str, Any], source: str) -> list[Slo]:
    where = source
    if doc.get("apiVersion") != "openslo/v1":
        raise SpecError(f"{where}: apiVersion", "must be openslo/v1")
    if doc.get("kind") != "SLO":
        raise SpecError(f"{where}: kind", f"only SLO documents are read, not {doc.get('kind')!r}")
    meta = _mapping(doc.get("metadata"), f"{where}: metadata")
    name = _text(meta, "name", f"{where}: metadata")
    spec = _mapping(doc.get("spec"), f"{where}: spec")
    service = _text(spec, "service", f"{where}: spec")
    method = spec.get("budgetingMethod", "Occurrences")
    if method != "Occurrences":
        raise SpecError(
            f"{where}: spec.budgetingMethod",
            f"{method!r} is not supported; gameday evaluates Occurrences",
        )
    windows = spec.get("timeWindow") or [{"duration": "30d", "isRolling": True}]
    if not isinstance(windows, list) or len(windows) != 1:
        raise SpecError(f"{where}: spec.timeWindow", "must hold exactly one window")
    window = _mapping(windows[0], f"{where}: spec.timeWindow[0]")
    window_s = parse_duration(window.get("duration"), f"{where}: spec.timeWindow[0].duration")
    objectives = spec.get("objectives")
    if not isinstance(objectives, list) or len(objectives) != 1:
        raise SpecError(f"{where}: spec.objectives", "must hold exactly one objective")
    target = _mapping(objectives[0], f"{where}: spec.objectives[0]")
    raw_target = target.get(
        "target", f"{target['targetPercent']}%" if "targetPercent" in target else None
    )
    objective = _objective(raw_target, f"{where}: spec.objectives[0].target")
    indicator = _mapping(spec.get("indicator"), f"{where}: spec.indicator")
    ind_spec = _mapping(indicator.get("spec"), f"{where}: spec.indicator.spec")
    sli = _openslo_sli(ind_spec, target, f"{where}: spec.indicator.spec")
    labels = _mapping(meta.get("labels", {}), f"{where}: metadata.labels")
    return [
        Slo(
            service=service,
            name=name,
            objective=objective,
            window_s=window_s,
            sli=sli,
            description=str(spec.get("description", "")),
            key=str(labels.get("gameday/key", "false")).lower() == "true",
            source=source,
        )
    ]


def _source_query(raw: Any, where: str) -> str:
    source = _mapping(_mapping(raw, where).get("metricSource"), f"{where}.metricSource")
    if source.get("type", "Prometheus") != "Prometheus":
        raise SpecError(f"{where}.metricSource.type", "only Prometheus metric sources are read")
    return _query(
        _text(
            _mapping(source.get("spec"), f"{where}.metricSource.spec"),
            "query",
            f"{where}.metricSource.spec",
        ),
        f"{where}.metricSource.spec.query",
    )


SELECTOR = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$")
MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def _selector(query: str, where: str) -> tuple[str, dict[str, str]]:
    """metric{label=~"regex", label="value"} -> (metric, {label: regex})."""
    found = SELECTOR.match(query)
    if not found:
        raise SpecError(where, f'{query!r} is not a metric selector like name{{label=~"x"}}')
    matchers: dict[str, str] = {}
    body = found.group(2) or ""
    position = 0
    while position < len(body):
        matcher = MATCHER.match(body, position)
        if not matcher:
            raise SpecError(where, f"cannot read the matchers in {query!r} (only = and =~)")
        value = matcher.group(3)
        matchers[matcher.group(1)] = value if matcher.group(2) == "=~" else re.escape(value)
        position = matcher.end()
    return found.group(1), matchers


def _openslo_sli(
    spec: Mapping[str, Any], objective: Mapping[str, Any], where: str
) -> LatencySli | RatioSli:
    if "ratioMetric" in spec:
        ratio = _mapping(spec["ratioMetric"], f"{where}.ratioMetric")
        total = _source_query(ratio.get("total"), f"{where}.ratioMetric.total")
        if "bad" in ratio:
            return RatioSli(_source_query(ratio["bad"], f"{where}.ratioMetric.bad"), total)
        if "good" in ratio:
            good = _source_query(ratio["good"], f"{where}.ratioMetric.good")
            return RatioSli(f"(({total}) - ({good}))", total)
        raise SpecError(f"{where}.ratioMetric", "needs good or bad, and total")
    if "thresholdMetric" in spec:
        threshold = _mapping(spec["thresholdMetric"], f"{where}.thresholdMetric")
        source = _mapping(threshold.get("metricSource"), f"{where}.thresholdMetric.metricSource")
        body = _mapping(source.get("spec"), f"{where}.thresholdMetric.metricSource.spec")
        query_where = f"{where}.thresholdMetric.metricSource.spec.query"
        metric, selector = _selector(
            _text(body, "query", query_where.rsplit(".", 1)[0]), query_where
        )
        if objective.get("op") not in ("lte", "lt"):
            raise SpecError(f"{where} objectives[0].op", "a latency threshold needs op lte")
        return _latency(
            {"metric": metric, "threshold_s": objective.get("value"), "selector": selector},
            f"{where}.thresholdMetric",
        )
    raise SpecError(where, "needs ratioMetric or thresholdMetric")


def load(paths: Iterable[Path]) -> list[Slo]:
    """Every SLO in the given files (our format or OpenSLO v1, several documents each)."""
    slos: list[Slo] = []
    for path in paths:
        try:
            docs = [
                d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None
            ]
        except FileNotFoundError:
            raise SpecError(str(path), "no such file") from None
        except yaml.YAMLError as exc:
            raise SpecError(str(path), f"not valid YAML ({exc})") from None
        except RecursionError:
            raise SpecError(str(path), "cannot read the spec (it nests too deeply)") from None
        except UnicodeDecodeError as exc:
            raise SpecError(
                str(path), f"cannot read the spec (not UTF-8: byte {exc.start})"
            ) from None
        except OSError as exc:
            raise SpecError(str(path), f"cannot read the spec ({exc.strerror or exc})") from None
        if not docs:
            raise SpecError(str(path), "holds no SLO")
        for item in docs:
            doc = _mapping(item, str(path))
            slos += _openslo(doc, str(path)) if "apiVersion" in doc else _ours(doc, str(path))
    seen: set[str] = set()
    for slo in slos:
        if slo.id in seen:
            raise SpecError(slo.source, f"SLO {slo.name} of {slo.service} is declared twice")
        seen.add(slo.id)
    return slos


SPECS_DIR = Path(__file__).resolve().parent / "specs"


def default_specs() -> list[Path]:
    return sorted(SPECS_DIR.glob("*.yaml"))
