"""Peers for the fan-out benchmark: other SSE servers fed the same updates as the edge.

- nchan (nginx + libnginx-mod-nchan from Debian): subscribers on
  `/v1/matches/{id}/stream` (`nchan_subscriber eventsource`), updates published to
  `/pub?id={match}`;
- Pushpin (Debian): fans' requests go through Pushpin to a tiny origin that answers with
  GRIP hold headers; updates are published to Pushpin's HTTP publish API.

Each is started by the benchmark on 127.0.0.1 with its own config in a temporary
directory, fed by a bridge (`python -m loadtests.bench.bridge`) that reads the same Redis
update stream as the edges and publishes each update once, and stopped by PID. Their
latency includes the bridge's hop; their fan-out is the peer's own CPU time.
`infra/setup-peers.sh` (`make bench-peers`) installs them and lists them in peers.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from pipeline import env
from pipeline.deploy.ports import free_ports

NGINX_CONF = """\
load_module {module};
daemon off;
worker_processes {workers};
worker_rlimit_nofile 20000;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  nchan_shared_memory_size 256m;
  server {{
    listen 127.0.0.1:{port};
    location ~ ^/v1/matches/([a-z0-9-]+)/stream$ {{
      nchan_subscriber eventsource;
      nchan_channel_id $1;
      nchan_subscriber_first_message newest;
    }}
    location = /pub {{
      nchan_publisher;
      nchan_channel_id $arg_id;
      nchan_message_buffer_length 64;
    }}
  }}
}}
"""


def available() -> tuple[dict[str, Any], dict[str, str]]:
    """(peers that can be run, peers that cannot and why), from setup-peers.sh's list."""
    path = env.cache_dir() / "peers.json"
    if not path.exists():
        return {}, {"all": "run `make bench-peers` (infra/setup-peers.sh) first"}
    listed = json.loads(path.read_text())
    return listed.get("peers", {}), listed.get("missing", {})


class Peer:
    """A running peer: the fans' URLs, the server's PIDs (for CPU time), stop()."""

    name = "peer"

    def __init__(self, work_dir: Path, redis_link: str) -> None:
        self.dir = work_dir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        self.server_pids: list[int] = []
        self.redis_link = redis_link

    def start(self, spec: dict[str, Any], *, workers: int) -> None:
        """Start the server (`workers` processes where it can) and its bridge; fill in
        `urls` and `server_pids`."""
        raise NotImplementedError

    def _spawn(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        out = (self.dir / log).open("ab")
        process = subprocess.Popen(argv, stdout=out, stderr=out, start_new_session=True)
        self.processes.append(process)
        return process

    def _bridge(self, publish: str, kind: str) -> None:
        self._spawn(
            [
                sys.executable,
                "-m",
                "loadtests.bench.bridge",
                "--redis",
                self.redis_link,
                "--publish",
                publish,
                "--kind",
                kind,
            ],
            "bridge.log",
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


class Nchan(Peer):
    name = "nchan"

    def start(self, spec: dict[str, Any], *, workers: int) -> None:
        port = free_ports(["nchan"])["nchan"]
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / sub).mkdir(exist_ok=True)
        conf = self.dir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(module=spec["module"], workers=workers, dir=self.dir, port=port)
        )
        master = self._spawn(
            [spec["nginx"], "-c", str(conf), "-e", str(self.dir / "error.log")], "nginx.log"
        )
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/pub?id=warmup", method="GET")
        self.server_pids = [master.pid, *_children(master.pid)]
        self._bridge(f"{base}/pub?id={{match}}", "nchan")
        self.urls = [base]
        time.sleep(1.0)


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (nginx's workers), from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _wait_http(url: str, *, method: str = "GET", timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.request(method, url, timeout=1.0)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout_s:g}s") from None
            time.sleep(0.1)


PEERS: dict[str, type[Peer]] = {"nchan": Nchan}
