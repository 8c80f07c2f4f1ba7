"""Hostile input against the real stack: bad packets at the feed, hostile clients at an
edge and at the control endpoints, all while a valid match flows. Every rejection is
counted, nothing answers 5xx, every service stays up, and every fan receives every
valid event exactly once."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import stat
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from support import gameday, metric_sum, post, stack_pids, token, until

from chaos.delivery import check_delivery
from chaos.fans import Fan, watch
from pipeline.edge import EdgeConfig
from pipeline.feed.script import load_script
from pipeline.httpwire import MAX_HEAD, MAX_REQUEST_LINE
from pipeline.ingest import MAX_LINE
from pipeline.model import MAX_FUTURE, MAX_PACKET_BYTES, MatchEvent, fold, format_time

OTHER = "127.0.0.2"
"""A loopback address the edges' per-address cap applies to (127.0.0.1 is exempt)."""
XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"


def five_xx(text: str) -> float:
    return sum(
        metric_sum(text, "gameday_http_requests_total", status=str(status))
        for status in range(500, 512)
    )


def scrape(url: str) -> str:
    return httpx.get(f"{url}/metrics", timeout=5).text


def hostile_packets(valid: MatchEvent) -> list[tuple[bytes, str]]:
    """(packet, the reason ingest counts it under); `valid` lends the well-formed fields."""
    good = valid.to_json()

    def variant(**changes: Any) -> bytes:
        return json.dumps({**good, "event_id": f"bad-{uuid.uuid4().hex[:8]}", **changes}).encode()

    far = format_time(datetime.now(UTC) + MAX_FUTURE + timedelta(hours=1))
    return [
        (b'{"pad": "' + b"x" * MAX_PACKET_BYTES + b'"}', "oversized"),
        (b"x" * (MAX_LINE + 5_000), "oversized"),  # over the stream's line limit
        (b'{"event_id": "\xff\xfe"}', "bad_utf8"),
        (b"[" * 5_000, "too_deep"),
        (variant(type="corner"), "unknown_type"),
        (variant(player={"name": "x"}), "wrong_type"),
        (variant(seq="three"), "bad_seq"),
        (variant(occurred_at=far), "future_timestamp"),
        (variant(occurred_at="9999-12-31T23:59:59-05:00"), "bad_timestamp"),
        (b"{not json", "not_json"),
    ]


async def exchange(url: str, request: bytes, *, source: str = "127.0.0.1") -> bytes:
    """One raw request to `url`'s host and port; the whole answer, until the edge closes."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(
        parts.hostname, parts.port, local_addr=(source, 0)
    )
    writer.write(request)
    try:
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:100]
    return int(answer[9:12])


class EdgeAttack:
    """Hostile clients against one edge; `answers` records what each got."""

    def __init__(self, edge: str, match_id: str) -> None:
        self.edge = edge
        self.match_id = match_id
        self.answers: dict[str, list[int]] = {}

    def got(self, name: str, answer: bytes) -> None:
        self.answers.setdefault(name, []).append(status_of(answer))

    async def slowloris(self) -> None:
        parts = urlsplit(self.edge)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        answer = asyncio.ensure_future(reader.read())
        head = f"GET /v1/matches/{self.match_id}/stream HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode()
        for index in range(600):  # a byte every 0.1 s: never done before the deadline
            if answer.done():
                break
            writer.write(head[index : index + 1] or b"a")
            await asyncio.sleep(0.1)
        self.got("slowloris", await asyncio.wait_for(answer, 30))
        writer.close()

    async def crowd(self) -> None:
        cap = EdgeConfig.max_connections_per_address
        parts = urlsplit(self.edge)
        held = [
            await asyncio.open_connection(parts.hostname, parts.port, local_addr=(OTHER, 0))
            for _ in range(cap)
        ]
        try:
            answer = await exchange(
                self.edge,
                f"GET /v1/matches/{self.match_id} HTTP/1.1\r\n\r\n".encode(),
                source=OTHER,
            )
            assert b"Retry-After: " in answer
            self.got("crowd", answer)
        finally:
            for _reader, writer in held:
                writer.close()

    async def malformed(self) -> None:
        stream = f"GET /v1/matches/{self.match_id}/stream HTTP/1.1\r\n"
        requests = {
            "bad_last_event_id": [
                f"{stream}Last-Event-ID: {raw}\r\n\r\n".encode("latin-1")
                for raw in ("abc", "-1", "9" * 40, "\u00b2")
            ],
            "request_line_too_long": [b"GET /" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1\r\n\r\n"],
            "head_too_large": [b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n"],
            "unknown_path": [b"GET /.env HTTP/1.1\r\nConnection: close\r\n\r\n"],
            "method_not_allowed": [b"DELETE / HTTP/1.1\r\n\r\n"],
            "malformed": [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"],  # TLS hello
            "unauthorized": [b"POST /v1/admin/drain HTTP/1.1\r\nContent-Length: 0\r\n\r\n"],
        }
        for name, batch in requests.items():
            for request in batch:
                self.got(name, await exchange(self.edge, request))


async def refused_without_token(endpoints: dict[str, Any], match_id: str) -> dict[str, int]:
    """Every control endpoint, called with a wrong token: their statuses."""
    calls = {
        "feed": f"{endpoints['feed_control']}/v1/matches/{match_id}/events",
        "rollout": f"{endpoints['rollout_control']}/v1/rollout",
        "ingest": f"{endpoints['ingest_control']}/v1/feed/fallback",
        "canary drain": f"{endpoints['canary_edge']}/v1/admin/drain",
    }
    out = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for name, url in calls.items():
            answer = await client.post(
                url, json={"share": 1}, headers={"Authorization": "Bearer x"}
            )
            assert "token" in answer.json()["error"]
            out[name] = answer.status_code
    return out


@pytest.mark.timeout(120)
def test_hostile_packets_and_clients_are_refused_and_counted_while_every_valid_event_arrives(
    stack_dir: Path, endpoints: dict[str, Any]
) -> None:
    status = stack_status(stack_dir)
    assert status["healthy"]
    match_id = f"gha-pan-{uuid.uuid4().hex[:10]}"
    script = replace(load_script("gha-pan"), match_id=match_id)
    events = script.to_events(datetime.now(UTC), uuid.uuid4().hex[:6], speed=3000.0)
    goal = next(i for i, e in enumerate(events) if e.type == "goal")
    events[goal] = replace(events[goal], player=XSS)  # markup: a valid name, shown as text
    hostile = hostile_packets(events[0])
    regression = replace(events[1], event_id="regression", type="goal", team="PAN", player="x")
    ingest_url = status["services"]["ingest"]["url"]
    scorekeeper_url = status["services"]["scorekeeper"]["url"]
    edge = endpoints["edges"]["us-east"]
    edges = [*endpoints["edges"].values()]
    before = {url: scrape(url) for url in [ingest_url, scorekeeper_url, *edges]}
    attack = EdgeAttack(edge, match_id)

    async def inject() -> None:
        """Valid events in order, a hostile packet after each of the first ones, and a seq
        regression once seq 2 is long applied; spread over the edge attack's duration."""
        step = max(1, len(events) // 12)
        for start in range(0, len(events), step):
            lines = []
            for index in range(start, min(start + step, len(events))):
                lines.append(events[index].encode())
                if index < len(hostile):
                    lines.append(hostile[index][0])
                if index == len(events) // 2:
                    lines.append(regression.encode())
            await post(endpoints, match_id, b"\n".join(lines) + b"\n", "text/plain")
            await asyncio.sleep(1.0)
        for packet, _reason in hostile[len(events) :]:
            await post(endpoints, match_id, packet + b"\n", "text/plain")

    async def scenario() -> tuple[list[Any], dict[str, int]]:
        fans = [
            Fan(url, match_id, region=region, fan_id=f"{region}-{i}")
            for region, url in endpoints["edges"].items()
            for i in range(2)
        ]
        stop = asyncio.Event()
        watching = asyncio.create_task(watch(fans, stop))
        await until(lambda: all(f.connected.is_set() for f in fans), 10, "every fan to connect")
        try:
            _, _, _, _, unauthorized = await asyncio.gather(
                inject(),
                attack.slowloris(),
                attack.crowd(),
                attack.malformed(),
                refused_without_token(endpoints, match_id),
            )
            await until(
                lambda: all(f.history.last_seq == len(events) for f in fans),
                30,
                f"every fan to reach seq {len(events)}",
            )
        finally:
            stop.set()
            histories = await watching
        return histories, unauthorized

    histories, unauthorized = asyncio.run(scenario())

    # Every fan got every valid event exactly once, in order; the state is their fold.
    report = check_delivery(histories, events)
    assert report.to_json() == {
        "clients": 6,
        "events": len(events),
        "lost": 0,
        "duplicated": 0,
        "out_of_order": 0,
        "final_mismatches": 0,
    }, report.failures
    final = histories[0].receipts[-1].data
    assert final["score"] == fold(events, match_id).score
    assert XSS in [g["player"] for g in final["goals"]]

    # Every hostile client got its 4xx.
    assert attack.answers == {
        "slowloris": [408],
        "crowd": [429],
        "bad_last_event_id": [400, 400, 400, 400],
        "request_line_too_long": [414],
        "head_too_large": [431],
        "unknown_path": [404],
        "method_not_allowed": [405],
        "malformed": [400],
        "unauthorized": [401],
    }
    assert unauthorized == {"feed": 401, "rollout": 401, "ingest": 401, "canary drain": 401}

    # Every rejection was counted, by its reason.
    after = {url: scrape(url) for url in before}
    expected: dict[str, int] = {}
    for _packet, reason in hostile:
        expected[reason] = expected.get(reason, 0) + 1
    for reason, count in expected.items():
        delta = metric_sum(
            after[ingest_url], "gameday_ingest_rejected_total", reason=reason
        ) - metric_sum(before[ingest_url], "gameday_ingest_rejected_total", reason=reason)
        assert delta == count, reason
    stale = metric_sum(after[scorekeeper_url], "gameday_scorekeeper_rejected_total", reason="stale")
    assert (
        stale
        - metric_sum(before[scorekeeper_url], "gameday_scorekeeper_rejected_total", reason="stale")
        >= 1
    )  # the seq regression
    for reason, answers in attack.answers.items():
        name = "header_timeout" if reason == "slowloris" else reason
        name = "per_address_cap" if reason == "crowd" else name
        delta = metric_sum(after[edge], "gameday_edge_rejected_total", reason=name) - metric_sum(
            before[edge], "gameday_edge_rejected_total", reason=name
        )
        assert delta >= len(answers), reason  # >=: other tests may share the stack

    # Nothing answered 5xx, and every service is still up.
    for url in edges:
        assert five_xx(after[url]) == five_xx(before[url]), url
    now = stack_status(stack_dir)
    assert now["healthy"], {k: v for k, v in now["services"].items() if not v["healthy"]}
    assert {k: v["pid"] for k, v in now["services"].items()} == {
        k: v["pid"] for k, v in status["services"].items()
    }  # nothing crashed and came back


def stack_status(stack_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(gameday("status", "--json", run_dir=stack_dir).stdout)
    return document


def listening_sockets() -> dict[int, str]:
    """Every listening TCP socket on this machine: inode -> local address (from /proc)."""
    found: dict[int, str] = {}
    for table, family in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 6)):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] != "0A":  # LISTEN
                continue
            raw = bytes.fromhex(fields[1].split(":")[0])
            if family == 4:
                address = str(ipaddress.IPv4Address(raw[::-1]))
            else:  # four little-endian 32-bit words
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                six = ipaddress.IPv6Address(words)
                address = str(six.ipv4_mapped or six)  # ::ffff:127.0.0.1 is 127.0.0.1
            found[int(fields[9])] = address
    return found


def socket_inodes(pid: int) -> set[int]:
    """The socket inodes process `pid` and its children hold."""
    inodes: set[int] = set()
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            for fd in Path(f"/proc/{current}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pids += [int(child) for child in children]
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return inodes


def test_every_listener_of_the_stack_is_on_loopback_and_the_token_file_is_private(
    stack_dir: Path, endpoints: dict[str, Any]
) -> None:
    sockets = listening_sockets()
    listening = [
        (name, sockets[inode])
        for name, pid in stack_pids(stack_dir).items()
        for inode in socket_inodes(pid)
        if inode in sockets
    ]
    assert len({name for name, _ in listening}) > 10, listening
    exposed = [entry for entry in listening if entry[1] not in ("127.0.0.1", "::1")]
    assert not exposed, exposed
    token_file = Path(endpoints["admin_token_file"])
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.stat().st_uid == os.getuid()
    assert len(token(endpoints)) >= 32
    repo = Path(__file__).resolve().parents[2]
    assert not token_file.resolve().is_relative_to(repo)  # the secret is not in the checkout
