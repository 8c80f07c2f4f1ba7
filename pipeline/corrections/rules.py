"""When an official's correction may be applied: pure rules shared by the corrections
service (which answers the official at once) and the scorekeeper (which decides, in
Kafka order, so a race between the two cannot let a stale correction through).

A correction is refused when
- `unknown_match`: the match has no accepted event yet (there is nothing to correct);
- `stale`: its `occurred_at` is older than the last event the match accepted (a goal the
  official had not seen, or a newer correction);
- `duplicate`: its event id was applied already (Kafka re-delivers after a restart);
- `unknown_ref`: a revocation names no correction in force.

`check()` and the request helpers turn these, and malformed requests, into `Refused`
errors carrying the gRPC status the service answers with.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Final

from pipeline.model import InvalidEvent, MatchEvent, ScoreState, parse_time, teams_of

REFUSALS: Final = ("unknown_match", "stale", "duplicate", "unknown_ref")


def refusal(state: ScoreState, event: MatchEvent) -> str | None:
    """Why `event` (a score_correction or correction_revoked) may not follow `state`."""
    last = state.last_event
    if last is None:
        return "unknown_match"
    if any(event.event_id in (c.event_id, c.revoked_by) for c in state.corrections):
        return "duplicate"
    if parse_time(event.occurred_at) < parse_time(last.occurred_at):
        return "stale"
    if event.type == "correction_revoked" and not any(
        c.event_id == event.ref_event_id and c.revoked_by is None for c in state.corrections
    ):
        return "unknown_ref"
    return None


class Refused(Exception):
    """A request the corrections service turns down. `status` is the gRPC status name,
    `reason` the label it is counted under; the message says what to do."""

    def __init__(self, status: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


REFUSED_AS: Final = {
    "unknown_match": "NOT_FOUND",
    "stale": "FAILED_PRECONDITION",
    "duplicate": "ALREADY_EXISTS",
    "unknown_ref": "FAILED_PRECONDITION",
}
CORRECTION_ID: Final = re.compile(r"^[a-z0-9-]{8,64}$")


def check(state: ScoreState, event: MatchEvent) -> None:
    """Raise Refused when the scorekeeper would refuse `event` after `state`."""
    why = refusal(state, event)
    if why is None:
        return
    last = state.last_event
    messages = {
        "unknown_match": f"{event.match_id} has no events yet: nothing to correct",
        "stale": f"occurred_at {event.occurred_at} is older than the last event the match "
        f"accepted ({last.occurred_at if last else '-'}): look at the match again and resend",
        "duplicate": f"correction {event.event_id} was applied already",
        "unknown_ref": f"{event.ref_event_id!r} is no correction in force in {event.match_id}",
    }
    raise Refused(REFUSED_AS[why], why, messages[why])


def valid_match_id(match_id: str) -> str:
    try:
        teams_of(match_id)
    except InvalidEvent as exc:
        raise Refused("INVALID_ARGUMENT", "bad_match_id", str(exc)) from None
    return match_id


def correction_id(given: str) -> str:
    """The client's id (checked), or a fresh one."""
    if not given:
        return f"corr-{uuid.uuid4().hex[:20]}"
    if CORRECTION_ID.match(given) is None:
        raise Refused("INVALID_ARGUMENT", "bad_field", "correction_id must be 8-64 of [a-z0-9-]")
    return given


def official_event(raw: dict[str, Any]) -> MatchEvent:
    """An official's event from the request's fields, by the rules the pipeline applies
    to it in Kafka (`MatchEvent.parse_any`); a missing `occurred_at` is named."""
    valid_match_id(str(raw.get("match_id", "")))
    if not raw.get("occurred_at"):
        raise Refused(
            "INVALID_ARGUMENT", "bad_field", "occurred_at is required (RFC 3339 with a zone)"
        )
    try:
        return MatchEvent.parse_any(raw)
    except InvalidEvent as exc:
        raise Refused("INVALID_ARGUMENT", "bad_field", str(exc)) from None
