"""Processes are stopped by PID, with their children, and a reused PID is never signalled."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from pipeline.deploy.process import (
    ProcessRef,
    exit_code,
    kill_group,
    log_tail,
    signal_group,
    spawn,
    stop_all,
)


def _wait_exited(ref: ProcessRef, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if exit_code(ref) is not None and not ref.alive():
            return True
        time.sleep(0.02)
    return False


def test_stop_all_stops_a_process_and_the_children_it_forked(tmp_path: Path) -> None:
    # The shell forks a sleep that would outlive it if only the shell were signalled.
    ref = spawn(["bash", "-c", "sleep 60 & echo child $!; wait"], log_path=tmp_path / "p.log")
    deadline = time.monotonic() + 5
    while "child" not in log_tail(tmp_path / "p.log") and time.monotonic() < deadline:
        time.sleep(0.02)
    child = int(log_tail(tmp_path / "p.log").split()[-1])
    child_ref = ProcessRef(child, int(Path(f"/proc/{child}/stat").read_text().split()[21]))

    killed = stop_all([ref], grace_s=5)

    assert killed == []
    assert _wait_exited(ref)
    assert not child_ref.alive()


def test_a_process_that_ignores_sigterm_is_killed_and_reported(tmp_path: Path) -> None:
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('ready', flush=True); time.sleep(60)"
    )
    ref = spawn([sys.executable, "-c", script], log_path=tmp_path / "p.log")
    deadline = time.monotonic() + 5
    while "ready" not in log_tail(tmp_path / "p.log") and time.monotonic() < deadline:
        time.sleep(0.02)

    killed = stop_all([ref], grace_s=0.5)

    assert killed == [ref]
    assert _wait_exited(ref)


def test_stopping_a_process_that_already_exited_is_harmless(tmp_path: Path) -> None:
    ref = spawn(["true"], log_path=tmp_path / "p.log")
    assert _wait_exited(ref)
    assert exit_code(ref) == 0
    assert stop_all([ref], grace_s=1) == []


def test_a_pid_reused_by_another_process_is_never_signalled(tmp_path: Path) -> None:
    ref = spawn(["sleep", "30"], log_path=tmp_path / "p.log")
    impostor = ProcessRef(ref.pid, ref.start_ticks + 1)  # same PID, another start time
    try:
        assert impostor.state() == "reused"
        assert signal_group(impostor, signal.SIGKILL) is False
        assert ref.alive()
    finally:
        stop_all([ref], grace_s=1)


def test_log_tail_reads_the_last_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("".join(f"line {i}\n" for i in range(100)))
    assert log_tail(path, lines=3) == "line 97\nline 98\nline 99"
    assert "no log" in log_tail(tmp_path / "missing.log")


def test_kill_group_returns_once_the_process_and_its_children_are_gone(tmp_path: Path) -> None:
    """A restart right after a kill must not find the dying process still alive."""
    ref = spawn(["bash", "-c", "sleep 60 & echo child $!; wait"], log_path=tmp_path / "k.log")
    deadline = time.monotonic() + 5
    while "child" not in log_tail(tmp_path / "k.log") and time.monotonic() < deadline:
        time.sleep(0.02)
    child = int(log_tail(tmp_path / "k.log").split()[-1])
    child_ref = ProcessRef(child, int(Path(f"/proc/{child}/stat").read_text().split()[21]))

    kill_group(ref)

    assert not ref.alive()  # at once: no polling here
    assert not child_ref.alive()
