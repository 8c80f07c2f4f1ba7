"""Which deployment a run directory holds: `open_deployment()` and the `Stack` it returns.

`gameday up --target compose` records its target in `RUN/state.json`; every later command
(`down`, `status`, `drill`, `load`, `slo report`, ...) opens the same target from there,
so the harness never needs to be told again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol

from pipeline import env
from pipeline.deploy.base import Deployment, StackStatus
from pipeline.deploy.compose import ComposeDeployment
from pipeline.deploy.errors import DeployError
from pipeline.deploy.local import LocalDeployment

TARGETS: Final = ("local", "compose")


class Stack(Deployment, Protocol):
    """A `Deployment` as the harness's commands use it: also its run directory, the stack's
    ports and time scale, and loading rules into its Prometheus."""

    run_dir: Path

    @property
    def ports(self) -> dict[str, int]: ...

    @property
    def stack_time_scale(self) -> float: ...

    async def up(self, progress: Callable[[str, str], None] | None = None) -> StackStatus: ...

    async def load_rules(self, files: Mapping[str, str]) -> list[str]: ...


def recorded_target(run_dir: Path) -> str | None:
    """The target the last `gameday up` in `run_dir` used; None if there was none."""
    try:
        state = json.loads((run_dir / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    target = state.get("target") if isinstance(state, dict) else None
    return target if target in TARGETS else None


def _running(target: str, run_dir: Path) -> bool:
    if target == "local":
        return bool(LocalDeployment(run_dir=run_dir).running())
    try:
        return ComposeDeployment(run_dir=run_dir).has_running_containers()
    except DeployError:  # no engine to ask: nothing of it runs here
        return False


def open_deployment(
    run_dir: Path | None = None, *, target: str | None = None, **options: Any
) -> Stack:
    """The deployment in `run_dir` (default: GAMEDAY_RUN_DIR's), of the target its state
    records, or `target` for a new one; `options` go to its constructor. Refuses to
    switch the target of a stack that is still running."""
    run_dir = (run_dir or env.run_dir()).resolve()
    if target is not None and target not in TARGETS:
        raise DeployError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    recorded = recorded_target(run_dir)
    if target is not None and recorded not in (None, target) and _running(recorded, run_dir):
        raise DeployError(
            f"a {recorded} stack is running in {run_dir}: `gameday down` first, or point "
            f"{env.RUN_DIR} at another directory"
        )
    chosen = target or recorded or "local"
    if chosen == "compose":
        return ComposeDeployment(run_dir=run_dir, **options)
    return LocalDeployment(run_dir=run_dir, **options)
