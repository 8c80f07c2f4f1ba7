"""When an official's correction may be applied: pure rules shared by the corrections
service (which answers the official at once) and the scorekeeper (which decides, in
Kafka order, so a race between the two cannot let a stale correction through).

A correction is refused when
- `unknown_match`: the match has no accepted event yet (there is nothing to correct);
- `stale`: its `occurred_at` is older than the last event the match accepted (a goal the
  official had not seen, or a newer correction);
- `duplicate`: its event id was applied already (Kafka re-delivers after a restart);
- `unknown_ref`: a revocation names no correction in force.
"""

from __future__ import annotations

from typing import Final

from pipeline.model import MatchEvent, ScoreState, parse_time

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
