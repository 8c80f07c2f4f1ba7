"""`gameday up`, `status --json` and `down` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

from support import gameday, running, stack_pids

SERVICES = {
    "kafka",
    "redis-a",
    "redis-b",
    "sentinel-1",
    "sentinel-2",
    "sentinel-3",
    "toxiproxy",
    "prometheus",
    "alertmanager",
    "feed",
    "ingest",
    "scorekeeper",
    "edge-us-east",
    "edge-eu-west",
    "edge-ap-southeast",
    "edge-canary",
    "control",
    "corrections",
}


def test_status_json_follows_the_design_contract(stack_dir: Path) -> None:
    result = gameday("status", "--json", run_dir=stack_dir)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["target"] == "local"
    assert status["healthy"] is True
    assert set(status["services"]) >= SERVICES
    for name, service in status["services"].items():
        assert service["healthy"] is True, name
        assert isinstance(service["pid"], int)
        assert "127.0.0.1" in service["url"]
    e = status["endpoints"]
    assert e["kafka_bootstrap"].startswith("127.0.0.1:")
    assert len(e["redis_sentinels"]) == 3
    assert e["redis_master_name"] == "scores"
    for key in ("toxiproxy_api", "prometheus", "alertmanager"):
        assert e[key].startswith("http://127.0.0.1:")
    token = Path(e["admin_token_file"])
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert len(token.read_text().strip()) >= 32


def test_up_again_restarts_only_what_died(stack_dir: Path) -> None:
    before = stack_pids(stack_dir)
    os.kill(before["redis-b"], signal.SIGKILL)
    unhealthy = gameday("status", "--json", run_dir=stack_dir)
    assert unhealthy.returncode == 1
    assert json.loads(unhealthy.stdout)["services"]["redis-b"]["healthy"] is False

    again = gameday("up", run_dir=stack_dir)

    assert again.returncode == 0, again.stderr
    after = stack_pids(stack_dir)
    assert after["redis-b"] != before["redis-b"]
    assert {n: p for n, p in after.items() if n != "redis-b"} == {
        n: p for n, p in before.items() if n != "redis-b"
    }
    assert json.loads(gameday("status", "--json", run_dir=stack_dir).stdout)["healthy"] is True


def test_down_stops_everything_even_after_a_crash(tmp_path: Path) -> None:
    run_dir = tmp_path / "own-stack"
    up = gameday("up", run_dir=run_dir)
    try:
        assert up.returncode == 0, up.stderr
        pids = stack_pids(run_dir)
        assert set(pids) == SERVICES
        assert all(running(pid) for pid in pids.values())
        os.kill(pids["sentinel-2"], signal.SIGKILL)  # a component that crashed on its own
    finally:
        down = gameday("down", run_dir=run_dir)
    assert down.returncode == 0, down.stderr
    left = {name: pid for name, pid in pids.items() if running(pid)}
    assert left == {}
    status = gameday("status", "--json", run_dir=run_dir)
    assert status.returncode == 1
    assert not any(s["healthy"] for s in json.loads(status.stdout)["services"].values())
