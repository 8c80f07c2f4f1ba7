"""How numbers, statuses and verdicts read: shared by every renderer so they all agree."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from slo.results import SloReport, SloResult

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
STATUS_WORD = {"pass": "PASS", "warning": "WARNING", "fail": "FAIL"}
MAX_DIGITS = 4


def printable(text: str) -> str:
    """`text` with control codes (terminal escapes, NUL) shown as U+FFFD; tabs, newlines kept."""
    return _CONTROL.sub("\ufffd", text)


def finite(value: float | None) -> float | None:
    """`value` when it is a real number, else None (NaN and infinities read as "no value")."""
    if value is None or not math.isfinite(value):
        return None
    return value


def percent_digits(objective: float, observed: float | None) -> int:
    """Decimals for one SLO's percentages: 2, or 3 for objectives past 99.9% (99.99%, 99.95%).

    One more decimal (up to 4) when the observed value would otherwise print the same as the
    objective, or as 100%, without being it: a reader must never see a miss as a hit.
    """
    digits = 2 if 1 - objective >= 0.001 - 1e-12 else 3
    if round(objective * 100, digits) != round(objective * 100, MAX_DIGITS):
        digits = 3
    seen = finite(observed)
    while seen is not None and digits < MAX_DIGITS:
        looks_like = f"{seen * 100:.{digits}f}"
        if (seen != objective and looks_like == f"{objective * 100:.{digits}f}") or (
            seen < 1 and looks_like == f"{100:.{digits}f}"
        ):
            digits += 1
        else:
            break
    return digits


def percent(value: float | None, digits: int = 2) -> str:
    seen = finite(value)
    return "no data" if seen is None else f"{seen * 100:.{digits}f}%"


def budget(value: float | None) -> str:
    """Error budget spent, as a share of the whole budget: 0.4 -> "40.0%", 2.9 -> "290.0%"."""
    seen = finite(value)
    return "n/a" if seen is None else f"{seen * 100:.1f}%"


def events(value: float) -> str:
    seen = finite(float(value))
    if seen is None:
        return "n/a"
    return f"{int(seen):,}" if seen.is_integer() else f"{seen:,.1f}"


def duration(seconds: float) -> str:
    """600 -> "10m", 3725 -> "1h 2m 5s", 42.5 -> "42.5s"."""
    if not math.isfinite(seconds) or seconds < 0:
        return f"{seconds}s"
    whole, fraction = divmod(seconds, 1)
    if fraction > 1e-9 or seconds < 1:
        return f"{seconds:g}s" if seconds < 60 else f"{seconds:.1f}s"
    rest = int(whole)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts)


def clock(t: float) -> str:
    """A Unix time as wall-clock UTC, like the plots' axes: "2026-12-04 15:02:11 UTC"."""
    if not math.isfinite(t):
        return "n/a"
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class Row:
    """One SLO as every table shows it (strings, unescaped)."""

    name: str
    key: str
    objective: str
    observed: str
    budget_spent: str
    events: str
    status: str


def row(slo: SloResult) -> Row:
    digits = percent_digits(slo.objective, slo.observed)
    return Row(
        name=slo.name,
        key="yes" if slo.key else "no",
        objective=percent(slo.objective, digits),
        observed=percent(slo.observed, digits),
        budget_spent=budget(slo.budget_spent),
        events=events(slo.events),
        status=STATUS_WORD[slo.status],
    )


HEADERS = Row(
    name="SLO",
    key="key",
    objective="objective",
    observed="observed",
    budget_spent="budget spent",
    events="events",
    status="status",
)


def headline(slo: SloResult) -> str:
    """`goal-latency: 97.10% good, objective 99.00% (key SLO)`: the JUnit failure message."""
    digits = percent_digits(slo.objective, slo.observed)
    seen = "no data" if finite(slo.observed) is None else f"{percent(slo.observed, digits)} good"
    key = " (key SLO)" if slo.key else ""
    return f"{slo.name}: {seen}, objective {percent(slo.objective, digits)}{key}"


def facts(slo: SloResult) -> list[tuple[str, str]]:
    """What a reader needs to judge one SLO, as (label, value) pairs in reading order."""
    r = row(slo)
    pairs = [
        ("status", r.status),
        ("observed", r.observed if r.observed == "no data" else f"{r.observed} good"),
        ("objective", r.objective),
        ("error budget spent", r.budget_spent),
        ("events counted", r.events),
        ("key SLO", "yes (failing it fails the run)" if slo.key else "no"),
        ("service", slo.service),
    ]
    if slo.description:
        pairs.append(("description", slo.description))
    if slo.detail:
        pairs.append(("detail", slo.detail))
    return pairs


def _named(slo: SloResult) -> str:
    return f"{slo.name} (key SLO)" if slo.key else slo.name


def verdict(report: SloReport) -> str:
    """One line: `FAIL: 1 of 3 SLOs failed: goal-latency (key SLO)` or `PASS: all 3 SLOs met`."""
    failed = [s for s in report.slos if s.status == "fail"]
    warned = [s for s in report.slos if s.status == "warning"]
    total = len(report.slos)
    if total == 0:
        line = "FAIL: no SLOs were evaluated, so none can be shown to hold"
    elif not report.passed:
        names = ", ".join(_named(s) for s in failed)
        line = f"FAIL: {len(failed)} of {total} SLOs failed: {names}"
    else:
        line = f"PASS: all {total} SLOs met their objectives"
    if warned:
        noun = "warning" if len(warned) == 1 else "warnings"
        line += f"; {len(warned)} {noun}: " + ", ".join(_named(s) for s in warned)
    return line


def notable(report: SloReport) -> list[SloResult]:
    """The SLOs a reader must look at: failures first, then warnings, in report order."""
    failed = [s for s in report.slos if s.status == "fail"]
    return failed + [s for s in report.slos if s.status == "warning"]
