"""Judging an SLO from counts, and from what the fans themselves measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.fans import FanHistory, Receipt, receipts_json
from pipeline.model import parse_time
from slo.evaluate import ClientSample, client_counts, judge, load_client_samples
from slo.spec import default_specs, load

SLOS = {s.name: s for s in load(default_specs())}


def test_at_the_objective_with_budget_to_spare_passes() -> None:
    status, observed, spent, events, _ = judge(SLOS["goal-latency"], {(): (998.0, 1000.0)})
    assert (status, observed, events) == ("pass", 0.998, 1000.0)
    assert spent == pytest.approx(0.2)


def test_spending_most_of_the_budget_warns_and_going_below_fails() -> None:
    assert judge(SLOS["goal-latency"], {(): (992.0, 1000.0)})[0] == "warning"
    assert judge(SLOS["goal-latency"], {(): (950.0, 1000.0)})[0] == "fail"


def test_no_events_fails_a_key_slo_and_warns_on_another() -> None:
    assert judge(SLOS["goal-latency"], {})[0] == "fail"
    assert judge(SLOS["card-sub-latency"], {(): (0.0, 0.0)})[0] == "warning"


def test_the_worst_region_decides_a_grouped_slo() -> None:
    status, observed, *_, detail = judge(
        SLOS["region-latency"], {("us-east",): (100.0, 100.0), ("eu-west",): (90.0, 100.0)}
    )
    assert status == "fail"
    assert observed == 0.9
    assert "eu-west: 90.0000%" in detail


def test_the_fans_receipts_are_counted_by_the_slos_selector_and_threshold() -> None:
    samples = [
        ClientSample("goal", "eu-west", 0.4),
        ClientSample("goal", "us-east", 1.4),
        ClientSample("penalty_goal", "us-east", 0.2),
        ClientSample("substitution", "x", 9),
    ]
    assert client_counts(SLOS["goal-latency"], samples) == {(): (2.0, 3.0)}
    assert client_counts(SLOS["region-latency"], samples) == {
        ("eu-west",): (1.0, 1.0),
        ("us-east",): (2.0, 2.0),
        ("x",): (0.0, 1.0),
    }
    assert client_counts(SLOS["stream-availability"], samples) is None


def test_fans_histories_round_trip_into_client_samples(tmp_path: Path) -> None:
    data = {"seq": 1, "occurred_at": "2026-12-04T15:00:00.000Z", "event": {"type": "goal"}}
    history = FanHistory(
        "f1", "eu-west", "gha-pan", [Receipt(1, data, parse_time("2026-12-04T15:00:00.250Z"))]
    )
    path = tmp_path / "receipts.json"
    path.write_text(json.dumps(receipts_json([history])))
    assert load_client_samples(path) == [ClientSample("goal", "eu-west", 0.25)]
    path.write_text('{"receipts": [{"region": "x"}]}')
    with pytest.raises(ValueError, match="not a list of fan receipts"):
        load_client_samples(path)
