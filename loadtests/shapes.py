"""Load shapes: the goal spike (50x connections within seconds of a goal).

`GoalSpike` holds `base` users until the goal (`spike_at_s` into the run), then brings
`factor` times as many within `ramp_s` (the crowd that opens the app when the
notification lands), holds them for `hold_s`, and lets them go back to `base`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GoalSpike:
    base: int
    spike_at_s: float
    run_time_s: float
    factor: int = 50
    ramp_s: float = 5.0
    hold_s: float = 30.0

    def __post_init__(self) -> None:
        if self.base < 1 or self.factor < 1 or self.ramp_s <= 0:
            raise ValueError("base and factor must be >= 1 and ramp_s > 0")

    def at(self, run_time_s: float) -> tuple[int, float] | None:
        """(users, spawn rate per second) wanted at this point of the run; None ends it."""
        if run_time_s >= self.run_time_s:
            return None
        peak = self.base * self.factor
        if run_time_s < self.spike_at_s:
            return self.base, float(self.base)
        if run_time_s < self.spike_at_s + self.ramp_s + self.hold_s:
            return peak, (peak - self.base) / self.ramp_s
        return self.base, float(peak)
