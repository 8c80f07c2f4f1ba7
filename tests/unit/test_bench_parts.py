"""Pieces of the benchmarks that must be right for their numbers to mean anything."""

from __future__ import annotations

import json
import socket
from array import array
from pathlib import Path

import pytest

from chaos.stats import quantile
from loadtests.bench.fanout import fanout_markdown, judge
from loadtests.bench.fanpool import Dechunker, FanPool, FanReceipts, _stamp
from pipeline import env
from pipeline.deploy import Tools


@pytest.mark.parametrize("step", [1, 2, 5, 1000])
def test_a_chunked_stream_is_put_back_together_whatever_the_reads(step: int) -> None:
    events = [b'id: %d\nevent: score\ndata: {"seq":%d}\n\n' % (i, i) for i in range(1, 4)]
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)
    dechunker = Dechunker()
    out = b"".join(dechunker.feed(encoded[i : i + step]) for i in range(0, len(encoded), step))
    assert out == b"".join(events)


def test_an_update_is_stamped_from_its_own_json() -> None:
    data = b'{"match_id":"gha-pan","seq":17,"occurred_at":"2026-12-04T15:02:11.123Z","x":1}'
    seq, latency = _stamp(data, 1796396531.623)  # 2026-12-04T15:02:11.623Z
    assert seq == 17
    assert latency == pytest.approx(0.5, abs=1e-3)
    assert _stamp(b'{"no":"stamp"}', 0.0) is None


def test_delivery_is_judged_per_fan() -> None:
    fine = FanReceipts(array("q", [1, 2, 3]))
    gaps = FanReceipts(array("q", [1, 3, 3, 2]))
    assert judge([fine], [1, 2, 3]) == (0, 0, 0)
    assert judge([fine, gaps], [1, 2, 3]) == (0, 1, 1)
    assert judge([FanReceipts(array("q", [1]))], [1, 2, 3]) == (2, 0, 0)


def test_the_quantile_is_the_nearest_rank_sample() -> None:
    samples = [float(i) for i in range(1, 101)]  # 1..100
    assert quantile(samples, 0.5) == 50.0
    assert quantile(samples, 0.99) == 99.0
    assert quantile(samples, 1.0) == 100.0
    assert quantile([7.0], 0.99) == 7.0
    assert quantile([], 0.5) is None


def test_a_server_that_never_answers_does_not_break_the_fan_pool() -> None:
    """Connecting times out; collect() still stops every worker and accounts for every fan
    (a slow server once left the pool writing to a closed pipe)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections queue in the kernel; no response ever comes
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        pool = FanPool([url], "gha-pan", 10, workers=2)
        with pytest.raises(TimeoutError, match="fan workers connected"):
            pool.wait_connected(timeout_s=1.0)
        receipts = pool.collect(timeout_s=20.0)
    assert len(receipts) == 10
    assert not any(r.connected for r in receipts)
    assert pool.collect() == []  # a second collect is a no-op, not an error


def test_every_section_says_how_to_reproduce_it_and_on_what(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = dict.fromkeys(Tools.__dataclass_fields__, str(tmp_path))
    tools |= {"kafka_version": "4.1.1", "redis_version": "7.0.15"}
    (tmp_path / "tools.json").write_text(json.dumps(tools))
    peers = {"nchan": {"version": "1:1.3.6+dfsg-2"}, "pushpin": {"version": "1.36.0-2"}}
    (tmp_path / "peers.json").write_text(json.dumps({"peers": peers, "missing": {}}))
    monkeypatch.setenv(env.CACHE_DIR, str(tmp_path))
    text = fanout_markdown([], {"centrifugo": "failed at 20000 fans"}, command="gameday bench x")
    assert "- command: `gameday bench x`" in text
    assert "cores" in text.split("- machine:")[1].splitlines()[0]
    versions = text.split("- versions:")[1].splitlines()[0]
    assert "Kafka 4.1.1" in versions
    assert "Redis 7.0.15" in versions
    assert "nchan 1:1.3.6+dfsg-2" in versions
    assert "pushpin 1.36.0-2" in versions
    assert "Not measured: centrifugo (failed at 20000 fans)." in text
