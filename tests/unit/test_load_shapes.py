"""The goal-spike load shape: base fans, 50x within seconds of the goal, back down."""

from __future__ import annotations

import pytest

from loadtests.shapes import GoalSpike


def test_the_spike_brings_fifty_times_the_fans_within_the_ramp() -> None:
    spike = GoalSpike(base=20, spike_at_s=30, run_time_s=120, ramp_s=5, hold_s=30)
    assert spike.at(0) == (20, 20.0)
    assert spike.at(29.9) == (20, 20.0)
    users, rate = spike.at(30)  # type: ignore[misc]
    assert users == 1000
    assert (users - 20) / rate == pytest.approx(5)  # all there within the ramp
    assert spike.at(64.9)[0] == 1000  # type: ignore[index]
    assert spike.at(65)[0] == 20  # type: ignore[index]
    assert spike.at(120) is None


def test_a_shape_without_fans_is_refused() -> None:
    with pytest.raises(ValueError, match="base and factor"):
        GoalSpike(base=0, spike_at_s=1, run_time_s=2)
