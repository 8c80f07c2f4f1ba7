"""The small parts the pipeline's guarantees rest on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline.config import load_config, to_json
from pipeline.dedupe import BloomFilter, Deduper
from pipeline.httpwire import BadRequest, parse_head, response
from pipeline.offsets import OffsetTracker


def test_offsets_are_committed_only_below_every_message_still_in_flight() -> None:
    t = OffsetTracker()
    for offset in (10, 11, 12):
        t.started(0, offset)
    t.finished(0, 10)
    t.finished(0, 12)  # 11 is held behind a gap
    assert t.committable() == {0: 11}
    t.committed(0, 11)
    assert t.committable() == {}
    t.finished(0, 11)
    assert t.committable() == {0: 13}
    assert t.in_flight() == 0


def test_offsets_of_partitions_move_independently() -> None:
    t = OffsetTracker()
    t.started(0, 5)
    t.started(1, 7)
    t.finished(1, 7)
    assert t.committable() == {0: 5, 1: 8}


def test_dedupe_drops_a_seen_event_id_and_keeps_new_ones() -> None:
    d = Deduper(capacity=1000)
    assert [d.seen(i) for i in ("a", "b", "a", "c", "b")] == [False, False, True, False, True]


def test_dedupe_forgets_the_oldest_ids_beyond_its_capacity() -> None:
    d = Deduper(capacity=100)
    for i in range(250):
        assert not d.seen(f"id-{i}")
    assert d.forgotten == 150
    assert d.seen("id-249")
    assert not d.seen("id-0")  # forgotten: the scorekeeper's seq check is the backstop


def test_the_bloom_filter_has_no_false_negatives_and_few_false_positives() -> None:
    bloom = BloomFilter(10_000, error_rate=0.01)
    for i in range(10_000):
        bloom.add(f"in-{i}")
    assert all(f"in-{i}" in bloom for i in range(10_000))
    false_positives = sum(f"out-{i}" in bloom for i in range(10_000))
    assert false_positives < 300


@dataclass(frozen=True, kw_only=True)
class Sample:
    port: int
    name: str
    ratio: float = 1.0
    path: Path | None = None
    peers: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)


def test_a_config_round_trips_through_its_json_file(tmp_path: Path) -> None:
    config = Sample(port=1, name="x", ratio=2, path=tmp_path, peers=("a", "b"), labels={"k": "v"})
    path = tmp_path / "c.json"
    path.write_text(json.dumps(to_json(config)))
    assert load_config(Sample, path) == config


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"name": "x"}, "missing key port"),
        ({"port": 1, "name": "x", "colour": "red"}, "unknown key"),
        ({"port": "80", "name": "x"}, "port must be a int"),
        ({"port": True, "name": "x"}, "port must be a int"),
        ({"port": 1, "name": "x", "peers": "a"}, "peers must be a list"),
        ({"port": 1, "name": "x", "ratio": "fast"}, "ratio must be a number"),
    ],
)
def test_a_bad_config_names_the_file_and_the_key(
    tmp_path: Path, raw: dict[str, object], message: str
) -> None:
    path = tmp_path / "edge.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=message) as error:
        load_config(Sample, path)
    assert "edge.json" in str(error.value)


def test_an_http_request_head_is_parsed() -> None:
    request = parse_head(
        b"GET /v1/matches/gha-pan/stream?x=1 HTTP/1.1\r\nHost: a\r\n"
        b"Last-Event-ID: 17\r\nConnection: close"
    )
    assert (request.method, request.path, request.query) == (
        "GET",
        "/v1/matches/gha-pan/stream",
        {"x": "1"},
    )
    assert request.headers["last-event-id"] == "17"
    assert not request.keep_alive


@pytest.mark.parametrize(
    "head",
    [
        b"GARBAGE",
        b"GET http://evil/ HTTP/1.1",
        b"GET / SPDY/3",
        b"GET / HTTP/1.1\r\nno colon here",
        b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 100,
    ],
)
def test_a_malformed_request_head_is_refused_with_4xx(head: bytes) -> None:
    with pytest.raises(BadRequest) as error:
        parse_head(head)
    assert 400 <= error.value.status < 500


def test_a_304_carries_no_body() -> None:
    assert response(304, b"{}", headers={"ETag": '"1"'}).endswith(b'ETag: "1"\r\n\r\n')
    assert response(200, b"{}").endswith(b"\r\n\r\n{}")
