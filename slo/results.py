"""What an SLO evaluation found: the data behind report.json, junit.xml, summary.md, report.html."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["pass", "warning", "fail"]


@dataclass(frozen=True)
class Point:
    t: float
    """Unix time, seconds."""
    value: float


@dataclass(frozen=True)
class Series:
    """One line on a plot: e.g. p99 latency in eu-west, or the 5m burn rate of an SLO."""

    label: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Window:
    """A shaded span on time plots: a fault while it was injected."""

    label: str
    start: float
    end: float


@dataclass(frozen=True)
class SloResult:
    name: str
    service: str
    description: str
    objective: float
    observed: float | None
    """Good events / all events over the evaluated range; None when there were none."""
    budget_spent: float | None
    """Error budget consumed at the observed error rate: (1 - observed) / (1 - objective)."""
    status: Status
    key: bool
    events: float
    """How many events the SLI counted over the range (0 means no data)."""
    detail: str = ""
    burn_rate: tuple[Series, ...] = ()
    """Error rate / error budget over time (1 = spending exactly the budget)."""

    @property
    def passed(self) -> bool:
        return self.status != "fail"

    def to_json(self) -> dict[str, Any]:
        """The `slos` entry of report.json (DESIGN.md), plus what a reader needs."""
        return {
            "name": self.name,
            "objective": self.objective,
            "observed": self.observed,
            "passed": self.passed,
            "status": self.status,
            "budget_spent": self.budget_spent,
            "key": self.key,
            "events": self.events,
            "service": self.service,
            "detail": self.detail,
        }


@dataclass
class SloReport:
    run_id: str
    started_at: str
    finished_at: str
    target: str
    time_scale: float
    prometheus: str
    range_s: float
    slos: list[SloResult] = field(default_factory=list)
    latency: tuple[Series, ...] = ()
    """p50/p99 source -> fan latency over the range, per region, in seconds."""
    windows: tuple[Window, ...] = ()
    """Fault windows to shade on the plots (drills pass theirs)."""

    @property
    def passed(self) -> bool:
        """Fails when any SLO fails (a key SLO also when it has no data) or none was judged."""
        return bool(self.slos) and all(s.passed for s in self.slos)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "target": self.target,
            "time_scale": self.time_scale,
            "prometheus": self.prometheus,
            "range_s": self.range_s,
            "passed": self.passed,
            "slos": [s.to_json() for s in self.slos],
            "windows": [asdict(w) for w in self.windows],
        }
