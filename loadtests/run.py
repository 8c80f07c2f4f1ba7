"""`gameday load`: Locust fans against the running stack while a scripted match plays.

Locust runs headless in its own processes (it patches the standard library with gevent,
so never in this one): one, or a master and `--workers N` workers bound to 127.0.0.1 for
loads beyond one core. Its CSV (`load_stats.csv`, `load_stats_history.csv`...) and HTML
report land in `--out`; the summary printed here is read back from the CSV. Every
process started is stopped by PID (its process group), on every path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import signal
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.deploy import open_deployment
from pipeline.deploy.ports import free_ports
from pipeline.feed import load_script, play
from pipeline.model import SCORING

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
LEAD_S = 5.0
"""Users connect this long before the kickoff."""


def add_parser(sub: Any) -> None:
    load = sub.add_parser("load", help="Locust fans (SSE and polling) while a match plays")
    load.add_argument("--users", type=int, default=100, help="concurrent fans (default 100)")
    load.add_argument("--spawn-rate", type=float, default=50.0, help="fans started per second")
    load.add_argument(
        "--shape",
        choices=["steady", "goal-spike"],
        default="steady",
        help="goal-spike: 50x the fans within seconds of the first goal",
    )
    load.add_argument(
        "--spike-factor", type=int, default=50, help="goal-spike: how many times the fans"
    )
    load.add_argument("--speed", type=float, default=60.0, help="match speed (default 60)")
    load.add_argument("--script", default="gha-pan", help="match script (default gha-pan)")
    load.add_argument("--poll-interval", type=float, default=15.0, metavar="S")
    load.add_argument("--workers", type=int, default=0, help="Locust worker processes")
    load.add_argument("--out", type=Path, default=Path("out/load"), metavar="DIR")


def _locust_argv(args: argparse.Namespace, run_time_s: float, host: str) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        host,
        "--csv",
        str(args.out / "load"),
        "--csv-full-history",
        "--html",
        str(args.out / "load.html"),
        "--run-time",
        f"{round(run_time_s)}s",
        "--stop-timeout",
        "5",
        "--loglevel",
        "WARNING",
    ]
    if args.shape == "steady":
        argv += ["--users", str(args.users), "--spawn-rate", str(args.spawn_rate)]
    return argv


async def _spawn(argv: list[str], env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=out, stderr=out, start_new_session=True
        )


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def run(args: argparse.Namespace) -> int:
    if args.users < 1 or args.speed <= 0 or args.workers < 0 or args.spike_factor < 1:
        raise ValueError("--users and --spike-factor must be >= 1, --speed > 0, --workers >= 0")
    endpoints = open_deployment().endpoints()
    args.out.mkdir(parents=True, exist_ok=True)
    match_id = f"gha-pan-{uuid.uuid4().hex[:8]}"
    script = replace(load_script(args.script), match_id=match_id)
    match_s = script.duration_s / args.speed
    run_time_s = LEAD_S + match_s + 5
    first_goal = next(e.at_s for e in script.entries if e.type in SCORING)
    env = {
        **os.environ,
        "GAMEDAY_EDGES": json.dumps(endpoints["edges"]),
        "GAMEDAY_MATCH_ID": match_id,
        "GAMEDAY_POLL_INTERVAL_S": str(args.poll_interval),
        "GAMEDAY_SHAPE": args.shape,
        "GAMEDAY_BASE_USERS": str(args.users),
        "GAMEDAY_SPIKE_AT_S": str(LEAD_S + first_goal / args.speed),
        "GAMEDAY_RUN_TIME_S": str(run_time_s),
        "GAMEDAY_SPIKE_FACTOR": str(args.spike_factor),
    }
    argv = _locust_argv(args, run_time_s, next(iter(endpoints["edges"].values())))
    log = args.out / "locust.log"
    log.write_text("")
    processes: list[asyncio.subprocess.Process] = []
    try:
        if args.workers:
            port = free_ports(["locust-master"])["locust-master"]
            master = [
                *argv,
                "--master",
                "--master-bind-host=127.0.0.1",
                f"--master-bind-port={port}",
                f"--expect-workers={args.workers}",
            ]
            processes.append(await _spawn(master, env, log))
            worker = [*argv[:8], "--worker", "--master-host=127.0.0.1", f"--master-port={port}"]
            for _ in range(args.workers):
                processes.append(await _spawn(worker, env, log))
        else:
            processes.append(await _spawn(argv, env, log))
        print(
            f"gameday load: {args.shape}, {args.users} fans, match {match_id} "
            f"({match_s:.0f}s at {args.speed:g}x), Locust log {log}",
            file=sys.stderr,
        )
        await asyncio.sleep(LEAD_S)
        token = Path(endpoints["admin_token_file"]).read_text().strip()
        await play(script, control_url=endpoints["feed_control"], token=token, speed=args.speed)
        code = await processes[0].wait()
    finally:
        for process in processes:
            await _stop(process)
    rows = summary(args.out / "load_stats.csv")
    print_summary(rows)
    updates = sum(int(r["Request Count"]) for r in rows if _is_update(r))
    if code not in (0, 1) or updates == 0:  # Locust exits 1 when a request failed
        print(f"gameday load: no update reached a fan (Locust exit {code}); see {log}")
        return 1
    print(f"gameday load: {args.out / 'load.html'}", file=sys.stderr)
    return 0


def _is_update(row: dict[str, str]) -> bool:
    return row["Type"] == "SSE" and not row["Name"].startswith("SSE ")


def summary(path: Path) -> list[dict[str, str]]:
    """Locust's per-request rows (the Aggregated row left out)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [row for row in csv.DictReader(f) if row["Name"] != "Aggregated"]


def print_summary(rows: list[dict[str, str]]) -> None:
    print(f"{'type':<5} {'name':<24} {'count':>7} {'fail':>5} {'p50 ms':>8} {'p99 ms':>8}")
    for row in rows:
        print(
            f"{row['Type']:<5} {row['Name'][:24]:<24} {row['Request Count']:>7} "
            f"{row['Failure Count']:>5} {row['50%']:>8} {row['99%']:>8}"
        )
