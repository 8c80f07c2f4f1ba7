"""Where benchmark results go: one marked section per benchmark in a Markdown file."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.deploy import Tools


def machine_description() -> str:
    """CPU model, cores, memory, OS and Python, as one line for a results table."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown memory"
    return (
        f"{model}, {os.cpu_count()} cores, {memory}, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def stack_versions(tools: Tools | None = None) -> str:
    """The versions of the stack's servers, from the tool manifest `make install` wrote."""
    tools = tools or Tools.load()
    return (
        f"Kafka {tools.kafka_version}, Redis {tools.redis_version}, "
        f"Toxiproxy {tools.toxiproxy_version}, Prometheus {tools.prometheus_version}, "
        f"Alertmanager {tools.alertmanager_version}"
    )


def provenance(command: str, *, peers: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """The lines every benchmark section starts with: how to reproduce it, and on what."""
    versions = stack_versions()
    for name, spec in sorted((peers or {}).items()):
        versions += f", {name} {spec.get('version', 'unknown')}"
    return [
        f"- command: `{command}`",
        f"- machine: {machine_description()}",
        f"- versions: {versions}",
    ]


def write_section(path: Path, name: str, body: str) -> None:
    """Replace (or append) the section between `<!-- bench:NAME -->` markers in `path`."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"{begin}\n{body.rstrip()}\n\n_Measured {stamp}._\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
