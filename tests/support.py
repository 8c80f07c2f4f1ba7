"""Helpers for tests that drive the real CLI and the processes it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
