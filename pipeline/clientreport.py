"""What a fan's page reports about itself (POST /v1/telemetry), validated.

    {"match_id": "gha-pan", "page_load_ms": 420, "visible": true,
     "last_update_age_s": 3.2,
     "receipts": [{"seq": 17, "received_at_ms": 1796400000000,
                   "occurred_at": "2026-12-04T15:02:11.123Z", "traceparent": "00-..."}]}

Everything is optional but `match_id`. Anything else is refused with a reason: a page
cannot put arbitrary labels or values into the edge's metrics.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from pipeline.model import MATCH_ID, parse_time

MAX_RECEIPTS = 50
TRACEPARENT_LEN = 55


@dataclass(frozen=True)
class BrowserReceipt:
    seq: int
    received_at_ms: float
    delay_s: float
    traceparent: str


@dataclass(frozen=True)
class ClientReport:
    match_id: str
    visible: bool
    page_load_s: float | None
    staleness_s: float | None
    receipts: tuple[BrowserReceipt, ...]

    @classmethod
    def parse(cls, body: bytes) -> ClientReport:
        try:
            raw = json.loads(body)
        except (ValueError, RecursionError):
            raise ValueError("the report is not JSON") from None
        if not isinstance(raw, dict):
            raise ValueError("the report must be a JSON object")
        unknown = set(raw) - {
            "match_id",
            "visible",
            "page_load_ms",
            "last_update_age_s",
            "receipts",
        }
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        match_id = raw.get("match_id")
        if not isinstance(match_id, str) or not MATCH_ID.match(match_id):
            raise ValueError("match_id is missing or not a match id")
        visible = raw.get("visible", True)
        if not isinstance(visible, bool):
            raise ValueError("visible must be true or false")
        load_ms = _number(raw, "page_load_ms", 0, 600_000)
        age_s = _number(raw, "last_update_age_s", 0, 86_400)
        receipts = raw.get("receipts") or []
        if not isinstance(receipts, list) or len(receipts) > MAX_RECEIPTS:
            raise ValueError(f"receipts must be a list of at most {MAX_RECEIPTS}")
        return cls(
            match_id,
            visible,
            None if load_ms is None else load_ms / 1000,
            age_s,
            tuple(_receipt(r) for r in receipts),
        )


def _number(raw: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number")
    if not low <= value <= high:
        raise ValueError(f"{name} must be within [{low}, {high}]")
    return float(value)


def _receipt(raw: Any) -> BrowserReceipt:
    if not isinstance(raw, dict):
        raise ValueError("each receipt must be an object")
    seq = raw.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValueError("receipt seq must be a positive integer")
    received = _number(raw, "received_at_ms", 0, 1e14)
    if received is None:
        raise ValueError("receipt received_at_ms is missing")
    try:
        occurred = parse_time(str(raw.get("occurred_at", "")))
    except ValueError:
        raise ValueError("receipt occurred_at is not an RFC 3339 time") from None
    traceparent = raw.get("traceparent") or ""
    if not isinstance(traceparent, str) or len(traceparent) > TRACEPARENT_LEN:
        raise ValueError("receipt traceparent is not a W3C traceparent")
    return BrowserReceipt(seq, received, received / 1000 - occurred.timestamp(), traceparent)
