"""Fixtures for the simulated vendors' tests: an admin token file and configs on free ports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.feed import FeedConfig

TOKEN = "s3cret-token"


@pytest.fixture
def admin_token() -> str:
    return TOKEN


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., FeedConfig]:
    """A FeedConfig on ports chosen by the OS, with fast heartbeats; overrides as keywords."""
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)

    def make(**overrides: Any) -> FeedConfig:
        settings: dict[str, Any] = {
            "control_port": 0,
            "primary_port": 0,
            "secondary_port": 0,
            "admin_token_file": token_file,
            "heartbeat_s": 0.1,
            "secondary_delay_s": 0.0,
        }
        settings.update(overrides)
        return FeedConfig(**settings)

    return make
