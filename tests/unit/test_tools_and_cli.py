"""Clear errors for what a user can get wrong before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.cli import main
from pipeline import env
from pipeline.deploy import DeployError, LocalDeployment, ToolMissing, Tools


def test_a_missing_manifest_says_to_run_make_install(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing, match=r"tools\.json does not exist: run `make install`"):
        Tools.load(tmp_path)


def test_an_incomplete_manifest_names_what_it_lacks(tmp_path: Path) -> None:
    (tmp_path / "tools.json").write_text(json.dumps({"java": "/usr/bin/java"}))
    with pytest.raises(ToolMissing, match=r"lacks .*kafka_libs"):
        Tools.load(tmp_path)


def test_a_manifest_naming_a_file_that_is_gone_says_which(tmp_path: Path) -> None:
    fields = {name: str(tmp_path) for name in Tools.__dataclass_fields__}
    fields["toxiproxy_server"] = str(tmp_path / "gone")
    (tmp_path / "tools.json").write_text(json.dumps(fields))
    with pytest.raises(ToolMissing, match=r"toxiproxy_server is not at .*gone"):
        Tools.load(tmp_path)


def test_up_refuses_a_run_directory_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(DeployError, match="did not make"):
        LocalDeployment(run_dir=tmp_path)._fresh_layout()
    assert (tmp_path / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("argv", [[], ["launch"], ["up", "--target", "mars"], ["status", "--xml"]])
def test_bad_arguments_exit_2_with_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage: gameday" in capsys.readouterr().err


def test_status_without_a_stack_says_how_to_start_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(env.RUN_DIR, str(tmp_path / "run"))
    assert main(["status"]) == 1
    assert "gameday up" in capsys.readouterr().out
    assert main(["status", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {
        "target": "local",
        "healthy": False,
        "services": {},
        "endpoints": {},
    }


def test_a_bad_startup_timeout_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env.STARTUP_TIMEOUT_S, "soon")
    with pytest.raises(ValueError, match="GAMEDAY_STARTUP_TIMEOUT_S='soon' is not a number"):
        env.startup_timeout_s()
