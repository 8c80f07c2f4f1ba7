"""Benchmarks behind `gameday bench` and `make bench`.

Each benchmark writes its own section of docs/benchmarks.md.
"""

from loadtests.bench.coldstart import ColdStart, measure_cold_start
from loadtests.bench.latency import LatencyResult, measure_latency
from loadtests.bench.report import machine_description, write_section

__all__ = [
    "ColdStart",
    "LatencyResult",
    "machine_description",
    "measure_cold_start",
    "measure_latency",
    "write_section",
]
