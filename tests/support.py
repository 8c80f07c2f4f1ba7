"""Helpers for tests that drive the real CLI and the processes it starts."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from pipeline import env

GAMEDAY = str(Path(sys.executable).with_name("gameday"))


def gameday(*args: str, run_dir: Path, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real CLI against the stack in `run_dir`."""
    return subprocess.run(
        [GAMEDAY, *args],
        env={**os.environ, env.RUN_DIR: str(run_dir)},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def stack_pids(run_dir: Path) -> dict[str, int]:
    state = json.loads((run_dir / "state.json").read_text())
    return {name: p["pid"] for name, p in state["processes"].items()}


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def dump_logs(run_dir: Path) -> None:
    for log in sorted((run_dir / "logs").glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-30:]
        print(f"\n===== {log.name} (last {len(lines)} lines) =====", file=sys.stderr)
        print("\n".join(lines), file=sys.stderr)


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium (`make install`); Playwright drives it, never a browser of its own."""

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def token(endpoints: dict[str, Any]) -> str:
    return Path(endpoints["admin_token_file"]).read_text().strip()


async def post(
    endpoints: dict[str, Any], match_id: str, body: bytes, content_type: str = "application/json"
) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{endpoints['feed_control']}/v1/matches/{match_id}/events",
            content=body,
            headers={"Authorization": f"Bearer {token(endpoints)}", "Content-Type": content_type},
        )
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


class KafkaTwin:
    """Records what ingest produces (an in-memory twin of its producer, for unit tests)."""

    def __init__(self) -> None:
        self.produced: list[tuple[str, bytes]] = []

    def produce(
        self, topic: str, key: bytes, value: bytes, headers: dict[str, str], span: Any = None
    ) -> None:
        self.produced.append((topic, value))
        if span is not None:
            span.end()


def metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples (Prometheus text) whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        found = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if found and all(f'{k}="{v}"' in found.group(1) for k, v in labels.items()):
            total += float(found.group(2))
    return total
