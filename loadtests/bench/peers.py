"""Peers for the fan-out benchmark: other SSE servers fed the same updates as the edge.

- nchan (nginx + libnginx-mod-nchan from Debian): subscribers on
  `/v1/matches/{id}/stream` (`nchan_subscriber eventsource`), updates published to
  `/pub?id={match}`;
- Pushpin (Debian): fans' requests go through Pushpin to a tiny origin that answers with
  GRIP hold headers; updates are published to Pushpin's HTTP publish API;
- Centrifugo (go install): unidirectional SSE, each fan subscribing in its connect
  request; updates published to its HTTP API.

Each is started by the benchmark on 127.0.0.1 with its own config in a temporary
directory, fed by a bridge (`python -m loadtests.bench.bridge`) that reads the same Redis
update stream as the edges and publishes each update once, and stopped by PID. Their
latency includes the bridge's hop; their fan-out is the peer's own CPU time.
`infra/setup-peers.sh` (`make bench-peers`) installs them and lists them in peers.json.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from loadtests.bench.fanpool import CONNECT_CONCURRENCY
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
    connect_concurrency = CONNECT_CONCURRENCY
    """Connections each fan worker opens at a time against this peer."""
    one_process = False
    """Serves every fan from one process, so it can hold no more fans than a process may
    have open files (`fan_limit()`)."""

    @classmethod
    def fan_limit(cls) -> int | None:
        """The most fans it can hold here, or None when it spreads them over processes."""
        if not cls.one_process:
            return None
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return int(hard) - 100  # its own files: logs, listeners, the bridge's connection

    def __init__(self, work_dir: Path, redis_link: str) -> None:
        self.dir = work_dir / self.name
        shutil.rmtree(self.dir, ignore_errors=True)  # a fresh start for every run
        self.dir.mkdir(parents=True)
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
        self.server_pids = [master.pid, *_descendants(master.pid)]
        self._bridge(f"{base}/pub?id={{match}}", "nchan")
        self.urls = [base]
        time.sleep(1.0)


class Pushpin(Peer):
    name = "pushpin"
    # Pushpin's proxy hands each new request to zurl over a ZeroMQ socket that queues about
    # a hundred; beyond that it answers 502 at once ("unavailable"). 4 workers x 25 stays
    # under it (measured: 10,000 fans connected, where 4 x 200 lost a third of them).
    connect_concurrency = 25
    SETTINGS = (
        "rundir",
        "logdir",
        "ipc_prefix",
        "http_port",
        "routesfile",
        "push_in_spec",
        "push_in_sub_specs",
        "push_in_http_port",
        "command_spec",
        "services",
        "log_level",
        "message_rate",
        "message_hwm",
    )
    ZURL = (  # the proxy's way out to the origin: a zurl the runner starts, in our rundir
        "zurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in\n"
        "zurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream\n"
        "zurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out\n"
    )

    def start(self, spec: dict[str, Any], *, workers: int) -> None:
        del workers  # Pushpin runs its own set of processes
        ports = free_ports(["http", "origin", "in", "sub", "publish", "command"])
        (self.dir / "run").mkdir(exist_ok=True)
        (self.dir / "log").mkdir(exist_ok=True)
        (self.dir / "routes").write_text(f"* 127.0.0.1:{ports['origin']}\n")
        values = {
            "rundir": self.dir / "run",
            "logdir": self.dir / "log",
            "ipc_prefix": "gameday-",
            "http_port": f"127.0.0.1:{ports['http']}",
            "routesfile": self.dir / "routes",
            "push_in_spec": f"tcp://127.0.0.1:{ports['in']}",
            "push_in_sub_specs": f"tcp://127.0.0.1:{ports['sub']}",
            "push_in_http_port": ports["publish"],
            "command_spec": f"tcp://127.0.0.1:{ports['command']}",
            "services": "condure,zurl,pushpin-proxy,pushpin-handler",
            "log_level": 1,  # warnings: an INFO line per subscriber would be the benchmark
            # The packaged limits (2,500 messages a second) would be what is measured.
            "message_rate": 10_000_000,
            "message_hwm": 10_000_000,
        }
        lines = []
        for line in Path(spec.get("config", "/etc/pushpin/pushpin.conf")).read_text().splitlines():
            key = line.split("=", 1)[0]
            lines.append(f"{key}={values[key]}" if "=" in line and key in values else line)
            if line.strip() == "[proxy]":
                lines.append(self.ZURL.rstrip())
        conf = self.dir / "pushpin.conf"
        conf.write_text("\n".join(lines) + "\n")
        grip = [sys.executable, "-m", "loadtests.bench.grip", "--port", str(ports["origin"])]
        self._spawn(grip, "origin.log")
        runner = self._spawn(
            [spec["pushpin"], "--config", str(conf), "--port", f"127.0.0.1:{ports['http']}"],
            "pushpin.log",
        )
        base = f"http://127.0.0.1:{ports['http']}"
        _wait_http(f"{base}/v1/matches/warmup/stream", timeout_s=20, stream=True)
        self.server_pids = [runner.pid, *_descendants(runner.pid)]
        self._bridge(f"http://127.0.0.1:{ports['publish']}/publish/", "pushpin")
        self.urls = [base]
        time.sleep(1.0)


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (nginx's workers, Pushpin's services), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    out, frontier = [], {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        out += sorted(frontier)
    return out


def _wait_http(
    url: str, *, method: str = "GET", timeout_s: float = 15.0, stream: bool = False
) -> None:
    """Until `url` answers at all (the headers of a stream are enough)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if stream:
                with httpx.stream(method, url, timeout=1.0):
                    return
            httpx.request(method, url, timeout=1.0)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout_s:g}s") from None
            time.sleep(0.1)


class Centrifugo(Peer):
    """Centrifugo's unidirectional SSE: each fan subscribes in its connect request (client
    insecure mode allows it), updates are published to its HTTP API."""

    name = "centrifugo"
    one_process = True
    CONNECT = '{"subs":{"{match}":{}}}'

    def start(self, spec: dict[str, Any], *, workers: int) -> None:
        del workers  # one Go process using every core
        ports = free_ports(["http", "internal"])
        config = {
            "http_server": {
                "address": "127.0.0.1",
                "port": ports["http"],
                "internal_address": "127.0.0.1",
                "internal_port": str(ports["internal"]),
            },
            "client": {"insecure": True},
            "uni_sse": {"enabled": True},
            "http_api": {"key": "gameday-bench"},
            "log": {"level": "error"},
            "usage_stats": {"disabled": True},
            "health": {"enabled": True},
        }
        path = self.dir / "config.json"
        path.write_text(json.dumps(config, indent=2))
        server = self._spawn([spec["centrifugo"], "--config", str(path)], "centrifugo.log")
        _wait_http(f"http://127.0.0.1:{ports['internal']}/health")
        self.server_pids = [server.pid]
        self._bridge(f"http://127.0.0.1:{ports['internal']}/api/publish", "centrifugo")
        query = quote(self.CONNECT, safe="").replace("%7Bmatch%7D", "{match}")  # each fan's
        self.urls = [f"http://127.0.0.1:{ports['http']}/connection/uni_sse?cf_connect={query}"]
        time.sleep(1.0)


PEERS: dict[str, type[Peer]] = {"nchan": Nchan, "pushpin": Pushpin, "centrifugo": Centrifugo}
