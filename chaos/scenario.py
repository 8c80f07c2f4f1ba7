"""Drill scenarios: YAML under chaos/scenarios/, validated into typed objects.

    name: region-skew
    description: eu-west's link to Redis slows down by 1.5 s.
    load: {fans_per_region: 10, script: gha-pan, speed: 60}   # + canary_share: 0.5
    steady_state:                            # before the fault and after the revert
      max_p99_s: 1.0                         # fans' p99 latency
      probes:                                # PromQL, first sample within [low, high]
        - {name: consumer caught up, query: max(gameday_kafka_consumer_lag), within: [0, 5]}
    faults:
      - kind: toxic                          # toxic | link_down | redis_failover |
        at: 20s                              # feed_silent | feed_duplicates |
                                             # service_down | bad_canary
        duration: 90s
        link: eu-west.redis-a
        toxic: latency
        attributes: {latency: 1500, jitter: 100}
    expect:
      alerts:                                # fired within T of the injection,
        - {name: RegionSkewHigh, within: 2m} # resolved after the revert
      other_alerts: false                    # no alert the scenario does not expect
      delivery: {lost: 0, duplicated: 0, out_of_order: 0}
      recovery_max: 30s
      slowest_hop_region: eu-west
      # also: fallback_within, rollback_within, kafka_log (every event in Kafka
      # once), gap_fills_max (vendor gap fills the scorekeeper may need), slos
    abort: {max_p99_s: 30, max_duration: 15m}

Durations are declared as in production and divided by the drill's --time-scale.
Every error names the file and the field (`ScenarioError`): `gameday drill` exits 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import yaml

from pipeline.feed.script import available_scripts
from pipeline.topology import REDIS_NODES, REGIONS, VENDOR_LINKS, redis_links
from slo.spec import default_specs, parse_duration
from slo.spec import load as load_slos

SCENARIOS_DIR: Final = Path(__file__).resolve().parent / "scenarios"
FAULT_KINDS: Final = (
    "toxic",
    "link_down",
    "redis_failover",
    "feed_silent",
    "feed_duplicates",
    "service_down",
    "bad_canary",
)
TOXICS: Final = (
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
)
SERVICES: Final = (
    "kafka",
    *REDIS_NODES,
    "feed",
    "ingest",
    "scorekeeper",
    *(f"edge-{region}" for region in REGIONS),
    "edge-canary",
    "control",
)
LINKS: Final = (*VENDOR_LINKS, *redis_links())


_RATIO_KEYS: Final = ("duplicate_ratio", "swap_ratio", "error_ratio", "cut_streams_after")


class ScenarioError(ValueError):
    """An invalid scenario file; the message starts with "FILE: field"."""


@dataclass(frozen=True)
class Load:
    fans_per_region: int = 10
    script: str = "gha-pan"
    speed: float = 60.0
    spike_fans_per_region: int = 0
    """Extra fans that connect right after the first goal (the goal spike)."""
    canary_share: float | None = None
    """When set, a rollout sends this share of the canary region's fans to the canary
    edge for the drill, and every fan is routed by the rollout controller."""


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    at_s: float
    duration_s: float
    link: str | None = None
    toxic: str | None = None
    attributes: dict[str, float] = field(default_factory=dict)
    service: str | None = None
    pause: bool = False
    mode: str | None = None
    """redis_failover: `kill` the master (Sentinel notices) or `sentinel` (SENTINEL FAILOVER)."""
    ratios: dict[str, float] = field(default_factory=dict)
    """feed_duplicates: duplicate_ratio, swap_ratio; bad_canary: error_ratio."""
    cut_after_s: float = 0.0
    """bad_canary: the defective build cuts every stream after this long (declared)."""


@dataclass(frozen=True)
class AlertExpectation:
    name: str
    within_s: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Expectations:
    alerts: tuple[AlertExpectation, ...] = ()
    allowed_alerts: tuple[str, ...] = ()
    """Alerts that may fire (a fault can rightly burn budget) without being required to."""
    other_alerts: bool = False
    fallback_within_s: float | None = None
    rollback_within_s: float | None = None
    delivery: dict[str, int] = field(
        default_factory=lambda: {"lost": 0, "duplicated": 0, "out_of_order": 0}
    )
    recovery_max_s: float | None = None
    slowest_hop_region: str | None = None
    slos: tuple[str, ...] = ()
    """Declared SLOs that must hold through the drill (others are reported, not judged)."""
    kafka_log: bool = False
    """Kafka, the source of truth, holds every event of the match exactly once."""
    gap_fills_max: int | None = None
    """How many events the scorekeeper may fetch from the vendor instead of Kafka."""


@dataclass(frozen=True)
class Probe:
    """A steady-state probe: the query's first sample must lie within [low, high]."""

    name: str
    query: str
    low: float
    high: float


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    load: Load
    faults: tuple[FaultSpec, ...]
    expect: Expectations
    steady_state_max_p99_s: float | None = None
    steady_state_probes: tuple[Probe, ...] = ()
    abort_max_p99_s: float | None = None
    abort_max_duration_s: float = 900.0
    source: str = ""


class _Reader:
    """Typed access to one mapping of a scenario file, with errors naming the field."""

    def __init__(self, raw: Any, where: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(raw, Mapping):
            raise ScenarioError(f"{where}: must be a mapping, got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(allowed))
        if unknown:
            raise ScenarioError(f"{where}: unknown field(s): {', '.join(map(str, unknown))}")
        self.raw, self.where = raw, where

    def has(self, key: str) -> bool:
        return key in self.raw

    def text(self, key: str, default: str | None = None, *, choices: tuple[str, ...] = ()) -> str:
        value = self.raw.get(key, default)
        if not isinstance(value, str) or not value:
            raise ScenarioError(f"{self.where}.{key}: is required and must be a string")
        if choices and value not in choices:
            raise ScenarioError(f"{self.where}.{key}: {value!r} is not one of {list(choices)}")
        return value

    def number(
        self, key: str, default: float, *, minimum: float = 0, maximum: float | None = None
    ) -> float:
        value = self.raw.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or value < minimum
            or (maximum is not None and value > maximum)
        ):
            bounds = f">= {minimum:g}" if maximum is None else f"in [{minimum:g}, {maximum:g}]"
            raise ScenarioError(f"{self.where}.{key}: must be a number {bounds}, got {value!r}")
        return float(value)

    def duration(self, key: str, default: str | None = None) -> float:
        value = self.raw.get(key, default)
        if value is None:
            raise ScenarioError(f"{self.where}.{key}: is required (a duration like 30s)")
        try:
            return float(parse_duration(value, f"{self.where}.{key}"))
        except ValueError as exc:
            raise ScenarioError(str(exc)) from None

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise ScenarioError(f"{self.where}.{key}: must be true or false")
        return value

    def strings(self, key: str) -> dict[str, str]:
        value = self.raw.get(key, {})
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ScenarioError(f"{self.where}.{key}: must map names to strings")
        return dict(value)


def fault_spec(raw: Any, where: str) -> FaultSpec:
    r = _Reader(
        raw,
        where,
        (
            "kind",
            "at",
            "duration",
            "link",
            "toxic",
            "attributes",
            "service",
            "pause",
            "mode",
            "duplicate_ratio",
            "swap_ratio",
            "error_ratio",
            "cut_streams_after",
        ),
    )
    kind = r.text("kind", choices=FAULT_KINDS)
    spec = FaultSpec(kind=kind, at_s=r.duration("at"), duration_s=r.duration("duration"))
    if kind in ("toxic", "link_down"):
        link = r.text("link", choices=LINKS)
        attributes = r.raw.get("attributes", {})
        if not isinstance(attributes, Mapping) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in attributes.values()
        ):
            raise ScenarioError(f"{where}.attributes: must map toxic attributes to numbers")
        toxic = r.text("toxic", choices=TOXICS) if kind == "toxic" else None
        return FaultSpec(
            kind,
            spec.at_s,
            spec.duration_s,
            link=link,
            toxic=toxic,
            attributes={str(k): float(v) for k, v in attributes.items()},
        )
    if kind == "service_down":
        return FaultSpec(
            kind,
            spec.at_s,
            spec.duration_s,
            service=r.text("service", choices=SERVICES),
            pause=r.flag("pause", False),
        )
    own = {
        "feed_duplicates": ("duplicate_ratio", "swap_ratio"),
        "bad_canary": ("error_ratio", "cut_streams_after"),
    }.get(kind, ())
    for key in ("link", "toxic", "service", "pause", "attributes", "mode", *_RATIO_KEYS):
        if r.has(key) and key not in own and not (key == "mode" and kind == "redis_failover"):
            raise ScenarioError(f"{where}.{key}: does not apply to a {kind} fault")
    if kind == "feed_duplicates":
        ratios = {k: r.number(k, 0.1, maximum=1) for k in own}
        if not any(ratios.values()):
            raise ScenarioError(f"{where}: a feed_duplicates fault needs a ratio above 0")
        return replace(spec, ratios=ratios)
    if kind == "bad_canary":
        return replace(
            spec,
            ratios={"error_ratio": r.number("error_ratio", 0.5, maximum=1)},
            cut_after_s=r.duration("cut_streams_after", "30s"),
        )
    if kind == "redis_failover":
        return FaultSpec(
            kind,
            spec.at_s,
            spec.duration_s,
            mode=r.text("mode", "kill", choices=("kill", "sentinel")),
        )
    return spec


def _expect(raw: Any, where: str) -> Expectations:
    r = _Reader(
        raw,
        where,
        (
            "alerts",
            "allowed_alerts",
            "other_alerts",
            "fallback_within",
            "rollback_within",
            "delivery",
            "recovery_max",
            "slowest_hop_region",
            "slos",
            "kafka_log",
            "gap_fills_max",
        ),
    )
    alerts_raw = r.raw.get("alerts", [])
    if not isinstance(alerts_raw, list):
        raise ScenarioError(f"{where}.alerts: must be a list")
    alerts = []
    for i, item in enumerate(alerts_raw):
        a = _Reader(item, f"{where}.alerts[{i}]", ("name", "within", "labels"))
        alerts.append(AlertExpectation(a.text("name"), a.duration("within"), a.strings("labels")))
    delivery = Expectations().delivery
    if r.has("delivery"):
        d = _Reader(r.raw["delivery"], f"{where}.delivery", tuple(delivery))
        delivery = {k: int(d.number(k, 0)) for k in delivery}
    region = r.raw.get("slowest_hop_region")
    if region is not None and region not in REGIONS:
        raise ScenarioError(f"{where}.slowest_hop_region: {region!r} is not one of {list(REGIONS)}")
    return Expectations(
        alerts=tuple(alerts),
        allowed_alerts=_names(r.raw.get("allowed_alerts", []), f"{where}.allowed_alerts"),
        other_alerts=r.flag("other_alerts", False),
        fallback_within_s=r.duration("fallback_within") if r.has("fallback_within") else None,
        rollback_within_s=r.duration("rollback_within") if r.has("rollback_within") else None,
        delivery=delivery,
        recovery_max_s=r.duration("recovery_max") if r.has("recovery_max") else None,
        slowest_hop_region=region,
        slos=_slo_names(r.raw.get("slos", []), f"{where}.slos"),
        kafka_log=r.flag("kafka_log", False),
        gap_fills_max=int(r.number("gap_fills_max", 0)) if r.has("gap_fills_max") else None,
    )


def _probes(raw: Any, where: str) -> tuple[Probe, ...]:
    if not isinstance(raw, list):
        raise ScenarioError(f"{where}: must be a list")
    out = []
    for i, item in enumerate(raw):
        p = _Reader(item, f"{where}[{i}]", ("name", "query", "within"))
        within = p.raw.get("within")
        if (
            not isinstance(within, list)
            or len(within) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in within)
            or within[0] > within[1]
        ):
            raise ScenarioError(f"{where}[{i}].within: must be [low, high] numbers, low <= high")
        out.append(Probe(p.text("name"), p.text("query"), float(within[0]), float(within[1])))
    return tuple(out)


def _names(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(n, str) and n for n in raw):
        raise ScenarioError(f"{where}: must be a list of alert names")
    return tuple(raw)


def _slo_names(raw: Any, where: str) -> tuple[str, ...]:
    declared = {slo.name for slo in load_slos(default_specs())}
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        raise ScenarioError(f"{where}: must be a list of SLO names")
    unknown = sorted(set(raw) - declared)
    if unknown:
        raise ScenarioError(
            f"{where}: {', '.join(unknown)} not declared in slo/specs "
            f"(declared: {', '.join(sorted(declared))})"
        )
    return tuple(raw)


def parse(raw: Any, source: str) -> Scenario:
    r = _Reader(
        raw, source, ("name", "description", "load", "steady_state", "faults", "expect", "abort")
    )
    load = _Reader(
        r.raw.get("load", {}),
        f"{source}: load",
        ("fans_per_region", "script", "speed", "spike_fans_per_region", "canary_share"),
    )
    script = load.text("script", "gha-pan")
    if script not in available_scripts():
        raise ScenarioError(
            f"{source}: load.script: {script!r} is not one of {available_scripts()}"
        )
    faults_raw = r.raw.get("faults", [])
    spike = int(load.number("spike_fans_per_region", 0))
    if not isinstance(faults_raw, list) or not (faults_raw or spike):
        raise ScenarioError(
            f"{source}: faults: must be a non-empty list (or the load must "
            "spike: load.spike_fans_per_region)"
        )
    steady = _Reader(
        r.raw.get("steady_state", {}), f"{source}: steady_state", ("max_p99_s", "probes")
    )
    abort = _Reader(r.raw.get("abort", {}), f"{source}: abort", ("max_p99_s", "max_duration"))
    return Scenario(
        name=r.text("name"),
        description=str(r.raw.get("description", "")),
        load=Load(
            fans_per_region=int(load.number("fans_per_region", 10, minimum=1)),
            script=script,
            speed=load.number("speed", 60, minimum=0.001),
            spike_fans_per_region=spike,
            canary_share=(
                load.number("canary_share", 0, maximum=1) if load.has("canary_share") else None
            ),
        ),
        faults=tuple(fault_spec(f, f"{source}: faults[{i}]") for i, f in enumerate(faults_raw)),
        expect=_expect(r.raw.get("expect", {}), f"{source}: expect"),
        steady_state_max_p99_s=(steady.number("max_p99_s", 0) if steady.has("max_p99_s") else None),
        steady_state_probes=_probes(steady.raw.get("probes", []), f"{source}: steady_state.probes"),
        abort_max_p99_s=abort.number("max_p99_s", 0) if abort.has("max_p99_s") else None,
        abort_max_duration_s=abort.duration("max_duration", "15m"),
        source=source,
    )


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A scenario by name (chaos/scenarios/NAME.yaml), a YAML file, or a Chaos Toolkit
    experiment (.json)."""
    path = Path(name_or_path)
    if path.suffix == ".json":
        from chaos.ctk import load_experiment

        return load_experiment(path)
    if not path.suffix:
        path = SCENARIOS_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ScenarioError(
                f"unknown drill {name_or_path!r}; known: {', '.join(available_scenarios())}"
            )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML ({exc})") from None
    except (OSError, UnicodeDecodeError, RecursionError) as exc:
        raise ScenarioError(f"{path}: cannot read the scenario ({file_error(exc)})") from None
    return parse(raw, str(path))


def file_error(exc: BaseException) -> str:
    """A file error in a few words: no traceback, no repeated path."""
    if isinstance(exc, RecursionError):
        return "it nests too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text: byte {exc.start}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def available_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIOS_DIR.glob("*.yaml"))
