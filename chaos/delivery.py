"""The delivery checker: did every fan get every update, once, in order, ending at fold()?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.fans import FanHistory
from pipeline.model import MatchEvent, fold

COMPARED = ("seq", "score", "status", "minute", "provisional", "under_review", "goals")
"""The state fields a fan's final update must share with fold() of the source."""


@dataclass
class FanVerdict:
    fan_id: str
    region: str
    received: int
    lost: list[int]
    duplicated: list[int]
    out_of_order: list[int]
    final_matches: bool
    detail: str = ""

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order) and self.final_matches


@dataclass
class DeliveryReport:
    clients: int
    events: int
    lost: int
    duplicated: int
    out_of_order: int
    final_mismatches: int
    failures: list[FanVerdict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.clients > 0 and not (
            self.lost or self.duplicated or self.out_of_order or self.final_mismatches
        )

    def to_json(self) -> dict[str, Any]:
        """The `delivery` object of the drill report (DESIGN.md)."""
        return {
            "clients": self.clients,
            "events": self.events,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "out_of_order": self.out_of_order,
            "final_mismatches": self.final_mismatches,
        }


def judge(
    history: FanHistory,
    source: Sequence[MatchEvent],
    *,
    expect_from: int = 1,
) -> FanVerdict:
    """One fan's verdict against the source events of its match."""
    seqs = [r.seq for r in history.receipts]
    seen: set[int] = set()
    duplicated, out_of_order = [], []
    highest = 0
    for seq in seqs:
        if seq in seen:
            duplicated.append(seq)
        elif seq < highest:
            out_of_order.append(seq)
        seen.add(seq)
        highest = max(highest, seq)
    last = max((e.seq for e in source), default=0)
    lost = [s for s in range(expect_from, last + 1) if s not in seen]
    expected = fold(source, history.match_id).to_json()
    final = history.receipts[-1].data if history.receipts else {}
    diffs = [k for k in COMPARED if final.get(k) != expected.get(k)]
    return FanVerdict(
        history.fan_id,
        history.region,
        len(seqs),
        lost,
        duplicated,
        out_of_order,
        not diffs,
        f"final state differs in {', '.join(diffs)}" if diffs else "",
    )


def check_delivery(
    histories: Sequence[FanHistory], source: Sequence[MatchEvent], *, expect_from: int = 1
) -> DeliveryReport:
    verdicts = [judge(h, source, expect_from=expect_from) for h in histories]
    return DeliveryReport(
        clients=len(histories),
        events=len({e.seq for e in source}),
        lost=sum(len(v.lost) for v in verdicts),
        duplicated=sum(len(v.duplicated) for v in verdicts),
        out_of_order=sum(len(v.out_of_order) for v in verdicts),
        final_mismatches=sum(not v.final_matches for v in verdicts),
        failures=[v for v in verdicts if not v.ok][:20],
    )
