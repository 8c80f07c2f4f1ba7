"""The corrections service's replies, built from what the scorekeeper applied."""

from __future__ import annotations

from pipeline.corrections import corrections_pb2 as pb
from pipeline.corrections.audit import AuditReader
from pipeline.model import OFFICIAL_TYPES, MatchEvent, ScoreState


def match_reply(state: ScoreState) -> pb.Match:
    score, last = state.score, state.last_event
    return pb.Match(
        match_id=state.match_id,
        seq=state.seq,
        home=state.home,
        away=state.away,
        home_score=score[state.home],
        away_score=score[state.away],
        status=state.status,
        last_event_at=last.occurred_at if last else "",
        corrections=sum(1 for c in state.corrections if c.revoked_by is None),
    )


def corrections_reply(reader: AuditReader, state: ScoreState) -> list[pb.Correction]:
    revoked_by = {c.event_id: c.revoked_by or "" for c in state.corrections}
    out = []
    for event, context in reader.records(state.match_id):
        if event.type not in OFFICIAL_TYPES:
            continue
        home, away = event.score or (0, 0)
        out.append(
            pb.Correction(
                correction_id=event.event_id,
                kind=event.type,
                seq=event.seq,
                home=home,
                away=away,
                reason=event.reason or "",
                official=event.official or "",
                occurred_at=event.occurred_at,
                published_at=str(context.get("published_at", "")),
                ref_correction_id=revoked_by.get(event.event_id, event.ref_event_id or ""),
            )
        )
    return out


def receipt(event: MatchEvent, seq: int) -> pb.Receipt:
    return pb.Receipt(
        correction_id=event.event_id,
        match_id=event.match_id,
        applied=seq > 0,
        seq=seq,
        official=event.official or "",
    )
