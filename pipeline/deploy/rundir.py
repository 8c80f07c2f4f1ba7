"""The run directory every target keeps its stack's files in: one `up`/`down` at a time
(an exclusive lock), and emptied for a fresh start only when gameday made it."""

from __future__ import annotations

import contextlib
import fcntl
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from pipeline import env
from pipeline.deploy.errors import DeployError

MARKER: Final = ".gameday-run"
LOCK: Final = ".lock"


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir`'s lock; DeployError at once if another gameday holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / LOCK).open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DeployError(
                f"another gameday up/down is working on {run_dir}; wait for it"
            ) from None
        yield


def empty(run_dir: Path) -> None:
    """Remove everything in `run_dir` but its lock and marker, and mark it as gameday's.
    Refuses a directory with files in it that gameday did not make."""
    run_dir.mkdir(parents=True, exist_ok=True)
    leftovers = [p for p in run_dir.iterdir() if p.name not in (LOCK, MARKER)]
    if leftovers and not (run_dir / MARKER).exists():
        raise DeployError(
            f"{run_dir} holds files that gameday did not make; point "
            f"{env.RUN_DIR} at an empty or gameday-made directory"
        )
    for path in leftovers:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    (run_dir / MARKER).write_text("made by gameday up; emptied by the next fresh up\n")
