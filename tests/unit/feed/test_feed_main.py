"""`python -m pipeline.feed --config FILE`: starts three servers, says where, stops on SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

FEED = [sys.executable, "-m", "pipeline.feed", "--config"]


def _write_config(tmp_path: Path, **extra: object) -> Path:
    (tmp_path / "admin-token").write_text("tok\n")
    path = tmp_path / "feed.json"
    ports = {"control_port": 0, "primary_port": 0, "secondary_port": 0}
    path.write_text(json.dumps({**ports, "admin_token_file": "admin-token", **extra}))
    return path


def test_runs_all_three_servers_and_exits_zero_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*FEED, str(_write_config(tmp_path))], stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        ports: dict[str, int] = {}
        while len(ports) < 3:
            line = proc.stderr.readline()
            assert line, f"feed exited early with {proc.wait()}"
            found = re.search(r"feed: (\w+) on 127\.0\.0\.1:(\d+)", line)
            if found:
                ports[found.group(1)] = int(found.group(2))
        assert set(ports) == {"control", "primary", "secondary"}
        for port in ports.values():
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").text == "ok"
        with httpx.stream("GET", f"http://127.0.0.1:{ports['primary']}/v1/stream") as stream:
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
            assert b"".join(stream.iter_bytes()).strip() == b""  # ends cleanly, no error
        assert time.monotonic() - started < 1.5, "an open stream held up the shutdown"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_a_bad_config_exits_two_naming_the_key(tmp_path: Path) -> None:
    done = subprocess.run(
        [*FEED, str(_write_config(tmp_path, heartbeat_ms=5))],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "heartbeat_ms" in done.stderr
