"""Invalid scenario, experiment, SLO and match-script files, and bad CLI arguments: every
one exits 2 with one line naming the file, field or argument, never a traceback.

tests/unit/test_scenarios.py and test_slo_rules.py cover each field of a well-formed
file; this table covers files that are hostile as files (not text, not YAML, too deep,
a directory, a YAML bomb) through every command that reads one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chaos.cli import main
from pipeline import env

BOMB = "\n".join(
    [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]"
            for a, b in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)
"""Nine levels of nine aliases: 387 million strings if anything expanded it."""

HOSTILE_FILES: dict[str, Callable[[Path], str]] = {
    "missing": lambda p: "",
    "directory": lambda p: "dir",
    "empty": lambda p: "text:",
    "not UTF-8": lambda p: "bytes:\xff\xfe\x00\x01junk",
    "not YAML": lambda p: "text:name: [unclosed\n  - {",
    "too deep": lambda p: "text:a: " + "[" * 5_000,
    "a list": lambda p: "text:- 1\n- 2\n",
    "a number": lambda p: "text:42\n",
    "a python tag": lambda p: 'text:name: !!python/object/apply:os.system ["true"]\n',
    "a YAML bomb": lambda p: "text:" + BOMB + "\nname: *i\n",
    "a bomb in a list field": lambda p: "text:" + BOMB + "\nslos: *i\nfaults: *i\nevents: *i\n",
}
COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "drill": lambda file, out: ["drill", str(file), "--out", str(out)],
    "slo rules": lambda file, out: ["slo", "rules", "--spec", str(file), "--out", str(out)],
    "slo test": lambda file, out: ["slo", "test", "--spec", str(file)],
    "match play": lambda file, out: ["match", "play", "--script", str(file)],
    "chaostoolkit import": lambda file, out: ["chaostoolkit", "import", str(file)],
}


def make(tmp_path: Path, kind: str, suffix: str) -> Path:
    path = tmp_path / f"hostile{suffix}"
    spec = HOSTILE_FILES[kind](path)
    if spec == "dir":
        path.mkdir()
    elif spec.startswith("bytes:"):
        path.write_bytes(spec.removeprefix("bytes:").encode("latin-1"))
    elif spec.startswith("text:"):
        path.write_text(spec.removeprefix("text:"))
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 2
    captured = capsys.readouterr()
    return code, captured.err + captured.out


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("kind", sorted(HOSTILE_FILES))
def test_a_hostile_file_exits_2_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    kind: str,
) -> None:
    monkeypatch.setenv(env.RUN_DIR, str(tmp_path / "no-stack"))
    suffix = ".json" if command == "chaostoolkit import" else ".yaml"
    path = make(tmp_path, kind, suffix)
    code, output = run(COMMANDS[command](path, tmp_path / "out"), capsys)
    assert code == 2, output
    assert str(path) in output
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) <= 12, output  # a message, not a dump


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["drill", "--time-scale", "0", "feed-loss"], "--time-scale"),
        (["drill", "--time-scale", "nan", "feed-loss"], "--time-scale"),
        (["drill", "--time-scale", "soon", "feed-loss"], "--time-scale"),
        (["drill", "no-such-drill"], "no-such-drill"),
        (["drill", "--out"], "--out"),
        (["match", "play", "--speed", "-5"], "--speed"),
        (["match", "play", "--script", "no-such-script"], "no-such-script"),
        (["up", "--set", "garbage"], "garbage"),
        (["up", "--set", "edge.no_such_field=1"], "no_such_field"),
        (["up", "--set", "mars.heartbeat_ms=1"], "mars"),
        (["up", "--set", "edge.heartbeat_ms=soon"], "heartbeat_ms"),
        (["up", "--set", "edge.max_connections_per_address=-1"], "max_connections_per_address"),
        (["up", "--set", "edge.header_timeout_s=0"], "header_timeout_s"),
        (["up", "--set", "edge.connection_cap_exempt=7"], "connection_cap_exempt"),
        (["up", "--target", "mars"], "--target"),
        (["slo", "rules"], "--out"),
        (["bench", "fanout", "--fans", "-1"], "--fans"),
        (["load", "--users", "-3"], "--users"),
        (["status", "--xml"], "--xml"),
        (["launch"], "launch"),
    ],
)
def test_a_bad_argument_exits_2_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    named: str,
) -> None:
    monkeypatch.setenv(env.RUN_DIR, str(tmp_path / "no-stack"))
    code, output = run(argv, capsys)
    assert code == 2, output
    assert named in output
    assert "Traceback" not in output
    assert not (tmp_path / "no-stack").exists()  # refused before anything started
