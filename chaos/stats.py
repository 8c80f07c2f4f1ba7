"""The one quantile every report here uses: nearest rank over the samples themselves."""

from __future__ import annotations

import math
from collections.abc import Iterable


def quantile(values: Iterable[float], q: float) -> float | None:
    """The q-quantile by nearest rank (the smallest sample with at least q of all samples
    at or below it); None without samples."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]
