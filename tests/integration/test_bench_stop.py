"""`gameday bench` stopped with SIGTERM (a CI job cancelled) stops the stack it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support import GAMEDAY, running


@pytest.mark.timeout(150)
def test_sigterm_stops_the_benchmarks_fresh_stack(tmp_path: Path) -> None:
    argv = [GAMEDAY, "bench", "staleness", "--fans", "2", "--pollers", "2"]
    argv += ["--events", "200", "--every", "0.5", "--poll", "1"]
    with subprocess.Popen(
        argv,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as bench:
        try:
            _stop_midway(bench, tmp_path)
        finally:
            if bench.poll() is None:
                bench.kill()


def _stop_midway(bench: subprocess.Popen[str], tmp_path: Path) -> None:
    assert bench.stderr is not None
    for line in bench.stderr:
        if "event 2/" in line:
            break
    else:
        pytest.fail(f"the benchmark ended before posting events (exit {bench.wait()})")
    (state,) = tmp_path.glob("gameday-bench-*/run/state.json")
    pids = [p["pid"] for p in json.loads(state.read_text())["processes"].values()]
    assert pids, "the benchmark's stack recorded no processes"
    assert all(running(pid) for pid in pids)

    bench.send_signal(signal.SIGTERM)
    assert bench.wait(60) == 130
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in pids if running(pid)] == []
    assert not state.parent.exists(), "the temporary run directory was left behind"
