"""Pieces of the benchmarks that must be right for their numbers to mean anything."""

from __future__ import annotations

from array import array

import pytest

from chaos.stats import quantile
from loadtests.bench.fanout import judge
from loadtests.bench.fanpool import Dechunker, FanReceipts, _stamp


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
