"""`FeedConfig`: where the simulated vendors listen and how they behave, read from JSON.

The local stack writes this file at `gameday up`; `python -m pipeline.feed --config FILE`
reads it. Every key is checked when the file is loaded, and an error names the file and
the key, so a broken stack fails at start rather than on the first drill.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedConfig:
    """Ports of the three vendor servers, the admin token's file, and the vendors' timing.

    A port of 0 asks the OS for a free one (tests); the server reports what it bound.
    """

    control_port: int
    primary_port: int
    secondary_port: int
    admin_token_file: Path
    secondary_delay_s: float = 3.0
    heartbeat_s: float = 1.0
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        for name in ("control_port", "primary_port", "secondary_port"):
            port = getattr(self, name)
            if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
                raise ValueError(f"{name} must be a port number 0-65535, got {port!r}")
        if self.secondary_delay_s < 0:
            raise ValueError(f"secondary_delay_s must be >= 0, got {self.secondary_delay_s}")
        if self.heartbeat_s <= 0:
            raise ValueError(f"heartbeat_s must be > 0, got {self.heartbeat_s}")
        if not self.host:
            raise ValueError("host must not be empty")

    @classmethod
    def load(cls, path: Path | str) -> FeedConfig:
        """Read a JSON object with exactly the fields of FeedConfig (defaults may be left out).

        A relative `admin_token_file` is taken relative to the config file's directory.
        """
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"{path}: cannot read feed config ({exc.strerror})") from None
        except ValueError as exc:
            raise ValueError(f"{path}: feed config is not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: feed config must be a JSON object")
        values = _checked(path, raw)
        token_file = values["admin_token_file"]
        if not token_file.is_absolute():
            values["admin_token_file"] = path.parent / token_file
        try:
            return cls(**values)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None


def _checked(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """Coerce each key to its field's type; a wrong, unknown or missing key names itself."""
    known = {f.name: f for f in fields(FeedConfig)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}")
    required = ("control_port", "primary_port", "secondary_port", "admin_token_file")
    for name in required:
        if name not in raw:
            raise ValueError(f"{path}: missing key {name!r}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            values[name] = _coerce(name, value)
        except ValueError as exc:
            raise ValueError(f"{path}: key {name!r}: {exc}") from None
    return values


def _coerce(name: str, value: Any) -> Any:
    if name.endswith("_port"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"must be an integer port, got {value!r}")
        return value
    if name.endswith("_s"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"must be a number of seconds, got {value!r}")
        return float(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return Path(value) if name == "admin_token_file" else value
