"""FeedConfig.load: a config file is checked when read, and errors name the file and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.feed import FeedConfig


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(document))
    return path


GOOD = {
    "control_port": 8101,
    "primary_port": 8102,
    "secondary_port": 8103,
    "admin_token_file": "/run/gameday/admin-token",
}


def test_load_fills_defaults_and_keeps_given_values(tmp_path: Path) -> None:
    config = FeedConfig.load(_write(tmp_path, {**GOOD, "secondary_delay_s": 5}))
    assert config.control_port == 8101
    assert config.admin_token_file == Path("/run/gameday/admin-token")
    assert config.secondary_delay_s == 5.0
    assert config.heartbeat_s == 1.0
    assert config.host == "127.0.0.1"


def test_relative_token_file_is_next_to_the_config(tmp_path: Path) -> None:
    config = FeedConfig.load(_write(tmp_path, {**GOOD, "admin_token_file": "admin-token"}))
    assert config.admin_token_file == tmp_path / "admin-token"


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"colour": "red"}, "colour"),
        ({"primary_port": "8102"}, "primary_port"),
        ({"primary_port": 70000}, "primary_port"),
        ({"heartbeat_s": 0}, "heartbeat_s"),
        ({"secondary_delay_s": True}, "secondary_delay_s"),
        ({"admin_token_file": ""}, "admin_token_file"),
    ],
)
def test_bad_values_and_unknown_keys_are_named(
    tmp_path: Path, change: dict[str, object], key: str
) -> None:
    path = _write(tmp_path, {**GOOD, **change})
    with pytest.raises(ValueError, match=key) as raised:
        FeedConfig.load(path)
    assert str(path) in str(raised.value)


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    document = {k: v for k, v in GOOD.items() if k != "secondary_port"}
    with pytest.raises(ValueError, match="missing key secondary_port"):
        FeedConfig.load(_write(tmp_path, document))


def test_a_file_that_is_not_json_says_so(tmp_path: Path) -> None:
    path = tmp_path / "feed.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        FeedConfig.load(path)
