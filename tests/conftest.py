"""Shared fixtures. Integration tests get one real stack per pytest session."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import dump_logs, gameday, running, stack_pids


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running local stack, started once with `gameday up` and stopped with `gameday down`."""
    run_dir = tmp_path_factory.mktemp("stack")
    up = gameday("up", "--time-scale", "10", run_dir=run_dir)
    if up.returncode != 0:
        print(up.stdout, up.stderr, file=sys.stderr)
        gameday("down", run_dir=run_dir)
        pytest.fail(f"gameday up failed with exit {up.returncode}: {up.stderr[-2000:]}")
    pids = stack_pids(run_dir)
    yield run_dir
    down = gameday("down", run_dir=run_dir)
    left = {name: pid for name, pid in pids.items() if running(pid)}
    if down.returncode != 0 or left:
        dump_logs(run_dir)
    assert down.returncode == 0, down.stderr
    assert not left, f"gameday down left processes running: {left}"


@pytest.fixture(scope="session")
def status(stack_dir: Path) -> dict[str, Any]:
    """`gameday status --json` of the session's stack, as it was when it came up."""
    document: dict[str, Any] = json.loads(gameday("status", "--json", run_dir=stack_dir).stdout)
    return document


@pytest.fixture(scope="session")
def endpoints(status: dict[str, Any]) -> dict[str, Any]:
    endpoints: dict[str, Any] = status["endpoints"]
    return endpoints


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """When an integration test fails, show the tail of every component's log."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "stack_dir" in getattr(item, "fixturenames", ()):
        run_dir = item.funcargs.get("stack_dir")  # type: ignore[attr-defined]
        if isinstance(run_dir, Path):
            dump_logs(run_dir)
