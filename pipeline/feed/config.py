"""`FeedConfig`: where the simulated vendors listen and how they behave, read from JSON.

The local stack writes this file at `gameday up`; `python -m pipeline.feed --config FILE`
reads it. Every key is checked when the file is loaded, and an error names the file and
the key, so a broken stack fails at start rather than on the first drill.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.config import load_config


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
        if str(self.admin_token_file) in ("", "."):
            raise ValueError("admin_token_file must name a file")

    @classmethod
    def load(cls, path: Path | str) -> FeedConfig:
        """Read a JSON object with exactly the fields of FeedConfig (defaults may be left out).

        A relative `admin_token_file` is taken relative to the config file's directory.
        """
        path = Path(path)
        config = load_config(cls, path)
        if config.admin_token_file.is_absolute():
            return config
        return replace(config, admin_token_file=path.parent / config.admin_token_file)
