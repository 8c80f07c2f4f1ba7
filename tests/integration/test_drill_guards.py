"""A drill that cannot fail is worthless: each drill fails, naming the check that caught
it, when the behaviour it guards is switched off by configuration (`gameday up --set`).

Every test changes the session stack's settings and puts the defaults back after."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from support import gameday

DELIVERY = "every fan got every update once, in order, ending at fold()"


def _sentinel_bypassed(endpoints: dict[str, Any]) -> list[str]:
    """Point the scorekeeper and every edge at today's master, ignoring Sentinel."""
    host, port = endpoints["redis_sentinels"][0].rsplit(":", 1)
    client = redis.Redis(host=host, port=int(port), decode_responses=True)
    try:
        master_host, master_port = client.sentinel_get_master_addr_by_name(
            endpoints["redis_master_name"]
        )
    finally:
        client.close()
    master = f'"{master_host}:{master_port}"'
    return [f"scorekeeper.static_master={master}", f"edge.static_master={master}"]


GUARDS: list[Any] = [
    pytest.param(
        "feed-loss", ["ingest.fallback_enabled=false"], "fallback polling active", id="fallback"
    ),
    pytest.param(
        "duplicate-feed",
        ["ingest.dedupe_enabled=false"],
        "Kafka holds every event once",
        id="dedupe",
    ),
    pytest.param(
        "bad-canary", ["control.rollback_enabled=false"], "rollback triggered", id="rollback"
    ),
    pytest.param("redis-failover", _sentinel_bypassed, DELIVERY, id="sentinel"),
    pytest.param("edge-crash", ["edge.replay_enabled=false"], DELIVERY, id="last-event-id-replay"),
    pytest.param(
        "scorekeeper-crash",
        ["scorekeeper.commit_before_apply=true"],
        "Kafka alone replayed the crash",
        id="commit-after-apply",
    ),
]


@pytest.fixture
def settings_restored(stack_dir: Path) -> Iterator[None]:
    yield
    restored = gameday("up", "--time-scale", "10", run_dir=stack_dir, timeout_s=180)
    assert restored.returncode == 0, restored.stderr[-2000:]


@pytest.mark.timeout(400)
@pytest.mark.parametrize(("drill", "settings", "check"), GUARDS)
@pytest.mark.usefixtures("settings_restored")
def test_a_drill_fails_naming_its_check_when_its_guard_is_switched_off(
    stack_dir: Path,
    endpoints: dict[str, Any],
    tmp_path: Path,
    drill: str,
    settings: list[str] | Callable[[dict[str, Any]], list[str]],
    check: str,
) -> None:
    assignments = settings(endpoints) if callable(settings) else settings
    flags = [arg for a in assignments for arg in ("--set", a)]
    up = gameday("up", "--time-scale", "10", *flags, run_dir=stack_dir, timeout_s=180)
    assert up.returncode == 0, (up.stdout[-1500:], up.stderr[-1500:])
    assert "restarting with the new settings" in up.stderr

    out = tmp_path / "drill"
    result = gameday("drill", drill, "--out", str(out), run_dir=stack_dir, timeout_s=380)

    report = json.loads((out / "report.json").read_text())
    failed = [c["name"] for d in report["drills"] for c in d["checks"] if not c["passed"]]
    assert result.returncode == 1, (result.stdout[-2000:], result.stderr[-2000:])
    assert report["passed"] is False
    assert check in failed, failed
