"""Locust users: fans on SSE streams and fans polling the snapshot.

Each runs against the stack `gameday load` names in its environment (`GAMEDAY_EDGES`, a
JSON object region -> edge URL, and `GAMEDAY_MATCH_ID`). Latency comes from the payload's
own timestamps (`occurred_at` at the source), never from request time, and is reported
as Locust request events, so Locust's tables and CSV carry it:

- `SSE <event type>`: one per update a fan received, response time = source -> fan;
- `SSE connect` / `SSE reconnect`: a stream opened (a reconnect resumes with
  Last-Event-ID); a refused or broken stream is a failure with the reason;
- `POLL snapshot`: the snapshot request itself; `POLL update`: a poller seeing a new
  state, response time = source -> poller (how late polling learns of an update, to
  hold against `SSE <event type>`).

Load tests report, they don't raise: every problem becomes a failure event.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import gevent
from locust import FastHttpUser, User, constant, task

EDGES: dict[str, str] = json.loads(os.environ.get("GAMEDAY_EDGES", "{}"))
MATCH_ID = os.environ.get("GAMEDAY_MATCH_ID", "gha-pan")
POLL_INTERVAL_S = float(os.environ.get("GAMEDAY_POLL_INTERVAL_S", "15"))
_next_edge = itertools.cycle(sorted(EDGES.items()) or [("local", "http://127.0.0.1:8080")])


def _age_ms(occurred_at: str) -> float:
    occurred = datetime.fromisoformat(occurred_at.replace("Z", "+00:00"))
    return max(0.0, (datetime.now(UTC) - occurred).total_seconds() * 1000)


class SseFan(User):
    """One fan holding the match's SSE stream, reconnecting like EventSource does."""

    weight = int(os.environ.get("GAMEDAY_SSE_WEIGHT", "9"))
    wait_time = constant(0)

    def on_start(self) -> None:
        self.region, base = next(_next_edge)
        self.url = urlsplit(base)
        self.last_event_id: int | None = None
        self.retry_s = 2.0
        self.connects = 0

    def _fire(self, name: str, started: float, length: int, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type="SSE",
            name=name,
            response_time=(time.time() - started) * 1000,
            response_length=length,
            exception=error,
            context={"region": self.region},
        )

    @task
    def watch(self) -> None:
        started = time.time()
        try:
            self._stream(started)
        except (OSError, ValueError) as exc:
            self._fire("SSE stream", started, 0, exc)
        gevent.sleep(self.retry_s)

    def _stream(self, started: float) -> None:
        host, port = self.url.hostname or "127.0.0.1", self.url.port or 80
        with socket.create_connection((host, port), timeout=30) as sock:
            head = [
                f"GET /v1/matches/{MATCH_ID}/stream HTTP/1.1",
                f"Host: {host}",
                "Accept: text/event-stream",
            ]
            if self.last_event_id is not None:
                head.append(f"Last-Event-ID: {self.last_event_id}")
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            reader = sock.makefile("rb")
            status = reader.readline()
            if b" 200 " not in status:
                raise ValueError(f"stream answered {status.decode(errors='replace').strip()}")
            while reader.readline() not in (b"\r\n", b""):
                pass
            self.connects += 1
            self._fire("SSE reconnect" if self.connects > 1 else "SSE connect", started, 0, None)
            self._read(reader)

    def _read(self, reader: Any) -> None:
        fields: dict[str, str] = {}
        while True:
            raw = reader.readline()
            if not raw:
                raise ConnectionResetError("stream closed by the edge")
            line = raw.decode().rstrip("\r\n")
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
                continue
            self._frame(fields)
            fields = {}

    def _frame(self, fields: dict[str, str]) -> None:
        if fields.get("retry", "").isdigit():
            self.retry_s = int(fields["retry"]) / 1000
        if fields.get("event") != "score" or "data" not in fields:
            return
        self.last_event_id = int(fields["id"])
        data = json.loads(fields["data"])
        self.environment.events.request.fire(
            request_type="SSE",
            name=str(data.get("event", {}).get("type", "update")),
            response_time=_age_ms(data["occurred_at"]),
            response_length=len(fields["data"]),
            exception=None,
            context={"region": self.region},
        )


class SnapshotPoller(FastHttpUser):
    """A fan without a stream: polls the snapshot every GAMEDAY_POLL_INTERVAL_S seconds."""

    weight = int(os.environ.get("GAMEDAY_POLL_WEIGHT", "1"))
    wait_time = constant(POLL_INTERVAL_S)

    def on_start(self) -> None:
        self.region, self.edge = next(_next_edge)
        self.etag: str | None = None

    @task
    def poll(self) -> None:
        headers = {"If-None-Match": self.etag} if self.etag else {}
        with self.client.get(
            f"{self.edge}/v1/matches/{MATCH_ID}",
            headers=headers,
            name="POLL snapshot",
            catch_response=True,
        ) as response:
            if response.status_code == 304:
                response.success()
            elif response.status_code == 404:
                response.success()  # before the kickoff there is no state yet
                return
            elif response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            else:
                self.etag = response.headers.get("ETag")
                state = response.json()
                self.environment.events.request.fire(
                    request_type="POLL",
                    name="update",
                    response_time=_age_ms(state["occurred_at"]),
                    response_length=len(response.content or b""),
                    exception=None,
                    context={"region": self.region},
                )
