"""Cold start of the whole local stack: `gameday up` on an empty run directory until healthy.

Downloads are excluded (infra/setup.sh has cached them); everything else counts: Kafka's
storage format, every JVM and server start, topic and proxy creation, Sentinel discovery.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.bench.report import provenance
from pipeline.deploy import LocalDeployment, Tools


@dataclass
class ColdStart:
    total_s: float
    component_s: dict[str, float] = field(default_factory=dict)
    """Seconds from the start of `up` until each component was healthy."""


async def _one(run_dir: Path, tools: Tools) -> ColdStart:
    deployment = LocalDeployment(run_dir=run_dir, tools=tools)
    healthy_at: dict[str, float] = {}
    started = time.monotonic()

    def progress(name: str, what: str) -> None:
        if what.startswith("healthy"):
            healthy_at[name] = time.monotonic() - started

    try:
        status = await deployment.up(progress=progress)
        total = time.monotonic() - started
        if not status.healthy:
            raise RuntimeError(f"stack not healthy after up: {status.services}")
    finally:
        await deployment.down()
    return ColdStart(total, healthy_at)


def measure_cold_start(
    runs: int,
    on_run: Callable[[int, ColdStart], None] | None = None,
) -> list[ColdStart]:
    tools = Tools.load()
    results = []
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="gameday-bench-") as tmp:
            result = asyncio.run(_one(Path(tmp) / "run", tools))
        results.append(result)
        if on_run is not None:
            on_run(i, result)
    return results


def markdown(results: list[ColdStart], *, command: str) -> str:
    totals = [r.total_s for r in results]
    names = sorted(
        {n for r in results for n in r.component_s},
        key=lambda n: statistics.median(r.component_s.get(n, 0.0) for r in results),
    )
    lines = [
        "## Cold start of the local stack",
        "",
        "`gameday up` on an empty run directory until every component is healthy "
        "(downloads already cached by `make install`). Goal: under 15 s.",
        "",
        *provenance(command),
        f"- runs: {len(results)}",
        "",
        "| | median | min | max |",
        "|---|---:|---:|---:|",
        f"| **whole stack healthy** | **{statistics.median(totals):.2f} s** | "
        f"{min(totals):.2f} s | {max(totals):.2f} s |",
    ]
    for name in names:
        values = [r.component_s[name] for r in results if name in r.component_s]
        lines.append(
            f"| {name} | {statistics.median(values):.2f} s | {min(values):.2f} s | "
            f"{max(values):.2f} s |"
        )
    return "\n".join(lines) + "\n"
