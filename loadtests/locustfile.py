"""Locust entry point: `gameday load` runs it (`locust -f loadtests/locustfile.py`).

Users: `SseFan` and `SnapshotPoller` (loadtests/users.py). With GAMEDAY_SHAPE=goal-spike
the run follows `GoalSpike` (GAMEDAY_BASE_USERS, GAMEDAY_SPIKE_AT_S, GAMEDAY_RUN_TIME_S,
GAMEDAY_SPIKE_FACTOR) instead of a fixed user count.
"""

from __future__ import annotations

import os

from locust import LoadTestShape

from loadtests.shapes import GoalSpike
from loadtests.users import SnapshotPoller, SseFan

__all__ = ["SnapshotPoller", "SseFan"]

if os.environ.get("GAMEDAY_SHAPE") == "goal-spike":
    SPIKE = GoalSpike(
        base=int(os.environ.get("GAMEDAY_BASE_USERS", "20")),
        spike_at_s=float(os.environ.get("GAMEDAY_SPIKE_AT_S", "20")),
        run_time_s=float(os.environ.get("GAMEDAY_RUN_TIME_S", "90")),
        factor=int(os.environ.get("GAMEDAY_SPIKE_FACTOR", "50")),
    )

    class GoalSpikeShape(LoadTestShape):
        """50x connections within seconds of the goal (loadtests/shapes.py)."""

        def tick(self) -> tuple[int, float] | None:
            return SPIKE.at(self.get_run_time())  # type: ignore[no-untyped-call]
