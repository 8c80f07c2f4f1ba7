"""Every GAMEDAY_* environment variable, in one place, with its default."""

from __future__ import annotations

import os
from pathlib import Path

RUN_DIR = "GAMEDAY_RUN_DIR"
"""Where `gameday up` keeps configs, data, logs and state for the local stack."""

CACHE_DIR = "GAMEDAY_CACHE_DIR"
"""Where infra/setup.sh keeps the Kafka jars, the Toxiproxy binary and tools.json."""

TRACING = "GAMEDAY_TRACING"
"""`off` runs the pipeline without tracing (to measure what tracing costs); default `on`."""

STARTUP_TIMEOUT_S = "GAMEDAY_STARTUP_TIMEOUT_S"
"""How long `gameday up` waits for every component to become healthy."""


def run_dir() -> Path:
    default = Path.home() / ".local" / "state" / "gameday" / "local"
    return Path(os.environ.get(RUN_DIR) or default).expanduser().resolve()


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "gameday"
    return Path(os.environ.get(CACHE_DIR) or default).expanduser().resolve()


def tracing_enabled() -> bool:
    value = os.environ.get(TRACING, "on").lower()
    if value not in ("on", "off"):
        raise ValueError(f"{TRACING}={value!r} must be on or off")
    return value == "on"


def startup_timeout_s() -> float:
    raw = os.environ.get(STARTUP_TIMEOUT_S, "90")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{STARTUP_TIMEOUT_S}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ValueError(f"{STARTUP_TIMEOUT_S}={raw!r} must be positive")
    return value
