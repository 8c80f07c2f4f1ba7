"""What a page may report to an edge, and what it may not."""

from __future__ import annotations

import json

import pytest

from pipeline.clientreport import ClientReport

GOOD = {
    "match_id": "gha-pan",
    "visible": False,
    "page_load_ms": 420,
    "last_update_age_s": 3.5,
    "receipts": [
        {
            "seq": 17,
            "received_at_ms": 1_796_397_600_250,
            "occurred_at": "2026-12-04T15:20:00.000Z",
            "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        }
    ],
}


def test_a_report_gives_load_time_staleness_and_delay_per_receipt() -> None:
    report = ClientReport.parse(json.dumps(GOOD).encode())
    assert report.page_load_s == pytest.approx(0.42)
    assert report.staleness_s == 3.5
    assert report.visible is False
    assert report.receipts[0].seq == 17
    assert report.receipts[0].delay_s == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"match_id": "../../etc"}, "match_id"),
        ({"visible": "yes"}, "visible"),
        ({"page_load_ms": -1}, "page_load_ms"),
        ({"page_load_ms": "fast"}, "page_load_ms"),
        ({"last_update_age_s": 1e12}, "last_update_age_s"),
        ({"receipts": [{"seq": 0}]}, "seq"),
        ({"receipts": [{"seq": 1, "received_at_ms": 5, "occurred_at": "soon"}]}, "occurred_at"),
        ({"receipts": [GOOD["receipts"][0]] * 51}, "at most 50"),
        ({"labels": {"region": "mars"}}, "unknown field"),
    ],
)
def test_a_bad_report_is_refused_with_its_reason(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClientReport.parse(json.dumps({**GOOD, **change}).encode())


@pytest.mark.parametrize("body", [b"", b"[1]", b"{", b"[" * 5000])
def test_a_report_that_is_not_a_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError, match="JSON"):
        ClientReport.parse(body)
