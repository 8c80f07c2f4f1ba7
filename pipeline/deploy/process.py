"""Starting and stopping OS processes by PID, safely across PID reuse.

Every process is started in a session of its own, so its PID is also its process
group id and a signal to the group reaches anything it forked. A process is named
by (pid, start time): a PID that now belongs to somebody else is never signalled.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessRef:
    """A process this stack started: its PID and its start time in clock ticks since boot."""

    pid: int
    start_ticks: int

    def state(self) -> str:
        """'running', 'exited', or 'reused' (the PID now names another process)."""
        stat = _read_stat(self.pid)
        if stat is None or stat[0] in ("Z", "X"):
            return "exited"
        return "running" if stat[1] == self.start_ticks else "reused"

    def alive(self) -> bool:
        return self.state() == "running"


def _read_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) from /proc/PID/stat, or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


_children: dict[int, subprocess.Popen[bytes]] = {}
"""The processes this Python process started, by PID, so their exit is reaped and known."""


@atexit.register
def _reap_all() -> None:
    """Collect children that were stopped by another process (`gameday down`)."""
    for proc in _children.values():
        proc.poll()


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ProcessRef:
    """Start `argv` in a session of its own, stdout and stderr appended to `log_path`.

    The process outlives this one (so `gameday up` can return); `gameday down` stops it.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    stat = _read_stat(proc.pid)
    return ProcessRef(proc.pid, stat[1] if stat else 0)


def exit_code(ref: ProcessRef) -> int | None:
    """The exit code of a process this Python process started, once it has exited."""
    proc = _children.get(ref.pid)
    return None if proc is None else proc.poll()


def signal_group(ref: ProcessRef, sig: signal.Signals) -> bool:
    """Send `sig` to the process group `ref` leads. False when nothing of it is left.

    When the leader has exited, its group id cannot have been handed to anyone else while
    members remain (Linux does not reuse a PID still in use as a group id), so signalling
    the group reaches only our orphans. A PID reused by another process is left alone.
    """
    state = ref.state()
    if state == "reused":
        return False
    try:
        os.killpg(ref.pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def _reap(pid: int) -> None:
    """Collect the exit status if `pid` is our own child, so it does not linger as a zombie."""
    proc = _children.get(pid)
    if proc is not None:
        proc.poll()


def _group_gone(ref: ProcessRef) -> bool:
    _reap(ref.pid)
    if ref.state() == "reused":
        return True
    try:
        os.killpg(ref.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return True
    # Only zombies left in the group count as gone.
    return all((_read_stat(pid) or ("Z", 0))[0] in ("Z", "X") for pid in _group_members(ref.pid))


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def kill_group(ref: ProcessRef, *, timeout_s: float = 5.0) -> None:
    """SIGKILL the group `ref` leads and return once nothing of it is left, so that what
    follows (a restart, a health check) never sees the dying process as alive."""
    signal_group(ref, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while not _group_gone(ref) and time.monotonic() < deadline:
        time.sleep(0.01)


def stop_all(refs: Sequence[ProcessRef], *, grace_s: float = 15.0) -> list[ProcessRef]:
    """SIGTERM every group, wait up to `grace_s`, then SIGKILL what is left.

    Returns the processes that had to be killed. Safe to call on exited processes.
    """
    for ref in refs:
        signal_group(ref, signal.SIGCONT)  # a paused process cannot act on SIGTERM
        signal_group(ref, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    pending = [ref for ref in refs if not _group_gone(ref)]
    while pending and time.monotonic() < deadline:
        time.sleep(0.05)
        pending = [ref for ref in pending if not _group_gone(ref)]
    for ref in pending:
        signal_group(ref, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while any(not _group_gone(ref) for ref in pending) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pending


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])
