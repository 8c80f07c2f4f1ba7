"""The corrections service without the stack: roles, validation, stale refusals, the
event model, and how the scorekeeper orders a correction among the vendor's events.

The gRPC server is the real one on 127.0.0.1; Kafka and the scorekeeper are replaced by
a twin that applies what is sent to an audit trail, as the scorekeeper does.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from pipeline.audit import AuditLog
from pipeline.corrections import CorrectionsConfig, CorrectionsService
from pipeline.corrections import corrections_pb2 as pb
from pipeline.corrections import corrections_pb2_grpc as pb_grpc
from pipeline.corrections import gen as corrections_gen
from pipeline.corrections.audit import AuditReader
from pipeline.corrections.auth import Tokens, make_tokens_file, token_for
from pipeline.corrections.rules import refusal
from pipeline.model import InvalidEvent, MatchEvent, fold, format_time
from pipeline.scorekeeper import Pending, Scorekeeper, ScorekeeperConfig
from pipeline.telemetry import Metrics

MATCH = "gha-pan"
T0 = datetime.now(UTC) - timedelta(minutes=10)


def at(seconds: float) -> str:
    return format_time(T0 + timedelta(seconds=seconds))


def vendor(seq: int, kind: str = "goal", team: str | None = "GHA", **extra: Any) -> MatchEvent:
    raw = {"event_id": f"v{seq}", "match_id": MATCH, "seq": seq, "type": kind}
    raw |= {"occurred_at": at(seq), "team": team if kind == "goal" else None, **extra}
    return MatchEvent.parse(raw)


def correction(seq: int, home: int, away: int, *, when: float, eid: str = "c1") -> MatchEvent:
    return MatchEvent.parse_any(
        {
            "event_id": eid,
            "match_id": MATCH,
            "seq": seq,
            "type": "score_correction",
            "occurred_at": at(when),
            "score": {"GHA": home, "PAN": away},
            "reason": "miscredited",
            "official": "editor",
        }
    )


# --- the stubs cannot drift from the .proto ------------------------------------------------


def test_regenerating_the_stubs_gives_the_committed_files() -> None:
    assert corrections_gen.stale() == []


# --- the model: a correction is an event fold() understands ----------------------------------


def test_a_correction_sets_the_score_later_goals_count_on_top_and_a_revocation_undoes_it() -> None:
    kickoff = vendor(1, "kickoff", team=None)
    events = [kickoff, vendor(2), correction(3, 0, 1, when=2.5), vendor(4, team="PAN")]
    state = fold(events, MATCH)
    assert state.score == {"GHA": 0, "PAN": 2}
    assert state.to_json()["corrections"][0]["delta"] == {"GHA": -1, "PAN": 1}
    revoked = MatchEvent.parse_any(
        {
            "event_id": "r1",
            "match_id": MATCH,
            "seq": 5,
            "type": "correction_revoked",
            "occurred_at": at(5),
            "ref_event_id": "c1",
            "reason": "wrong call",
            "official": "admin",
        }
    )
    assert fold([*events, revoked], MATCH).score == {"GHA": 1, "PAN": 1}
    assert "corrections" not in fold([kickoff, vendor(2)], MATCH).to_json()


def test_a_vendor_can_never_send_an_officials_event() -> None:
    packet = correction(3, 1, 0, when=3).encode()
    with pytest.raises(InvalidEvent) as refused:
        MatchEvent.parse(packet)
    assert refused.value.reason == "unknown_field"
    bare = {k: v for k, v in correction(3, 1, 0, when=3).to_json().items() if v is not None}
    for name in ("score", "reason", "official"):
        bare.pop(name)
    with pytest.raises(InvalidEvent) as unknown:
        MatchEvent.parse(bare)
    assert unknown.value.reason == "unknown_type"
    assert MatchEvent.parse_any(packet) == correction(3, 1, 0, when=3)


@pytest.mark.parametrize(
    ("score", "why"),
    [({"GHA": 1}, "wrong_type"), ({"GHA": 1, "PAN": -1}, "wrong_type"), (None, "missing_field")],
)
def test_a_malformed_correction_is_refused(score: object, why: str) -> None:
    raw = correction(3, 1, 0, when=3).to_json() | {"score": score}
    with pytest.raises(InvalidEvent) as refused:
        MatchEvent.parse_any(raw)
    assert refused.value.reason == why


def test_refusal_names_stale_duplicate_unknown_match_and_unknown_ref() -> None:
    state = fold([vendor(1, "kickoff", team=None), vendor(2)], MATCH)
    assert refusal(fold([], MATCH), correction(1, 1, 0, when=9)) == "unknown_match"
    assert refusal(state, correction(3, 1, 0, when=1.5)) == "stale"
    assert refusal(state, correction(3, 1, 0, when=2)) is None  # as old as the last: fine
    applied = state.apply(correction(3, 1, 0, when=3))
    assert refusal(applied, correction(4, 1, 0, when=3)) == "duplicate"
    revoke = MatchEvent.parse_any(
        {
            "event_id": "r9",
            "match_id": MATCH,
            "seq": 4,
            "type": "correction_revoked",
            "occurred_at": at(4),
            "ref_event_id": "nope",
            "reason": "x",
            "official": "admin",
        }
    )
    assert refusal(applied, revoke) == "unknown_ref"
    assert refusal(applied, replace(revoke, ref_event_id="c1")) is None


# --- tokens ----------------------------------------------------------------------------------


@pytest.fixture
def token_files(tmp_path: Path) -> tuple[Path, Path]:
    admin = tmp_path / "admin-token"
    admin.write_text("the-admin-token\n")
    tokens = tmp_path / "corrections-tokens.json"
    make_tokens_file(tokens)
    return admin, tokens


def test_the_tokens_file_is_private_and_never_overwritten(token_files: tuple[Path, Path]) -> None:
    admin, tokens = token_files
    assert tokens.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        make_tokens_file(tokens)
    os.chmod(tokens, 0o644)
    with pytest.raises(ValueError, match="readable by others"):
        Tokens.load(admin_token_file=admin, tokens_file=tokens)


def test_each_token_names_its_role_and_nothing_else_passes(token_files: tuple[Path, Path]) -> None:
    admin, tokens = token_files
    known = Tokens.load(admin_token_file=admin, tokens_file=tokens)
    for role in ("viewer", "editor", "admin"):
        token = token_for(role, admin_token_file=admin, tokens_file=tokens)
        who = known.who(f"Bearer {token}")
        assert who is not None
        assert who.role == role
    editor = token_for("editor", admin_token_file=admin, tokens_file=tokens)
    for bad in (None, "", "Bearer ", editor, f"Basic {editor}", f"Bearer {editor}x"):
        assert known.who(bad) is None


# --- the service: roles and validation --------------------------------------------------------


class PipelineTwin:
    """Kafka plus the scorekeeper, in memory: applies what is sent to the audit trail."""

    def __init__(self, audit_dir: Path) -> None:
        self.audit = AuditLog(audit_dir)
        self.reader = AuditReader(audit_dir)
        self.sent: list[MatchEvent] = []
        self.first: list[MatchEvent] = []
        """Vendor events that reach the scorekeeper before the next correction (a race)."""

    def vendor(self, *events: MatchEvent) -> None:
        for event in events:
            self.audit.append(event, published_at=at(event.seq))

    async def send(self, _topic: str, key: bytes, value: bytes, headers: dict[str, str]) -> None:
        event = MatchEvent.parse_any(value)
        assert key == event.match_id.encode()
        assert headers["source"] == "corrections"
        self.sent.append(event)
        self.vendor(*self.first)
        self.first.clear()
        state = self.reader.state(event.match_id)
        if refusal(state, event) is None:
            self.audit.append(replace(event, seq=state.seq + 1), published_at=at(99))


Call = Callable[..., Awaitable[Any]]


def served(
    tmp_path: Path,
    token_files: tuple[Path, Path],
    body: Callable[..., Awaitable[None]],
    **settings: Any,
) -> tuple[PipelineTwin, Metrics]:
    """Run `body(call, twin)` against a real gRPC server on 127.0.0.1."""
    admin, tokens = token_files
    twin, metrics = PipelineTwin(tmp_path / "audit"), Metrics()
    config = CorrectionsConfig(
        port=0,
        metrics_port=0,
        kafka_bootstrap="unused:9",
        topic="match-events",
        audit_dir=tmp_path / "audit",
        admin_token_file=admin,
        tokens_file=tokens,
        apply_wait_s=0.5,
        **settings,
    )
    service = CorrectionsService(
        config,
        tokens=Tokens.load(admin_token_file=admin, tokens_file=tokens),
        send=lambda *args: twin.send(*args),  # noqa: PLW0108 - late: a test may replace it
        metrics=metrics,
    )

    async def main() -> None:
        server = grpc.aio.server()
        pb_grpc.add_CorrectionsServicer_to_server(service, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.CorrectionsStub(channel)

                async def call(method: str, request: Any, role: str | None) -> Any:
                    token = (
                        token_for(role, admin_token_file=admin, tokens_file=tokens)  # type: ignore[arg-type]
                        if role in ("viewer", "editor", "admin")
                        else role
                    )
                    metadata = () if token is None else (("authorization", f"Bearer {token}"),)
                    return await getattr(stub, method)(request, metadata=metadata, timeout=5)

                await body(call, twin)
        finally:
            await server.stop(0)
            twin.audit.close()

    asyncio.run(main())
    return twin, metrics


def code_of(outcome: Any) -> grpc.StatusCode:
    return grpc.StatusCode.OK if not isinstance(outcome, grpc.aio.AioRpcError) else outcome.code()


async def attempt(call: Call, method: str, request: Any, role: str | None) -> Any:
    try:
        return await call(method, request, role)
    except grpc.aio.AioRpcError as exc:
        return exc


def score(home: int = 2, away: int = 0, *, when: float = 30, match: str = MATCH, **kw: Any) -> Any:
    return pb.CorrectScoreRequest(
        match_id=match, home=home, away=away, reason="miscredited", occurred_at=at(when), **kw
    )


OK, DENIED, UNAUTH = (
    grpc.StatusCode.OK,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (None, {"GetMatch": UNAUTH, "ListCorrections": UNAUTH, "CorrectScore": UNAUTH}),
        ("not-a-token", {"GetMatch": UNAUTH, "ListCorrections": UNAUTH, "CorrectScore": UNAUTH}),
        ("viewer", {"GetMatch": OK, "ListCorrections": OK, "CorrectScore": DENIED}),
        ("editor", {"GetMatch": OK, "ListCorrections": OK, "CorrectScore": OK}),
        ("admin", {"GetMatch": OK, "ListCorrections": OK, "CorrectScore": OK}),
    ],
)
def test_each_role_is_allowed_and_refused_where_it_should_be(
    tmp_path: Path,
    token_files: tuple[Path, Path],
    role: str | None,
    expected: dict[str, grpc.StatusCode],
) -> None:
    got: dict[str, grpc.StatusCode] = {}

    async def body(call: Call, twin: PipelineTwin) -> None:
        twin.vendor(vendor(1, "kickoff", team=None), vendor(2))
        got["GetMatch"] = code_of(
            await attempt(call, "GetMatch", pb.GetMatchRequest(match_id=MATCH), role)
        )
        got["ListCorrections"] = code_of(
            await attempt(call, "ListCorrections", pb.ListCorrectionsRequest(match_id=MATCH), role)
        )
        got["CorrectScore"] = code_of(await attempt(call, "CorrectScore", score(), role))

    twin, metrics = served(tmp_path, token_files, body)
    assert got == expected
    assert len(twin.sent) == (1 if expected["CorrectScore"] == OK else 0)
    refused = [c for c in expected.values() if c != OK]
    outcome = {UNAUTH: "unauthenticated", DENIED: "permission_denied"}
    for code in set(refused):
        total = sum(
            metrics.registry.get_sample_value(
                "gameday_corrections_requests_total", {"method": m, "outcome": outcome[code]}
            )
            or 0
            for m in expected
        )
        assert total == refused.count(code)


def test_revoking_is_for_admins_only_and_undoes_the_correction(
    tmp_path: Path, token_files: tuple[Path, Path]
) -> None:
    async def body(call: Call, twin: PipelineTwin) -> None:
        twin.vendor(vendor(1, "kickoff", team=None), vendor(2))
        receipt = await call("CorrectScore", score(0, 3), "editor")
        assert (receipt.applied, receipt.seq, receipt.official) == (True, 3, "editor")
        revoke = pb.RevokeCorrectionRequest(
            match_id=MATCH, correction_id=receipt.correction_id, reason="wrong", occurred_at=at(40)
        )
        for role in ("viewer", "editor"):
            assert code_of(await attempt(call, "RevokeCorrection", revoke, role)) == DENIED
        undone = await call("RevokeCorrection", revoke, "admin")
        assert (undone.applied, undone.seq, undone.official) == (True, 4, "admin")
        match = await call("GetMatch", pb.GetMatchRequest(match_id=MATCH), "viewer")
        assert (match.home_score, match.away_score, match.corrections) == (1, 0, 0)
        listed = await call("ListCorrections", pb.ListCorrectionsRequest(match_id=MATCH), "viewer")
        assert [(c.kind, c.seq, c.ref_correction_id) for c in listed.corrections] == [
            ("score_correction", 3, undone.correction_id),
            ("correction_revoked", 4, receipt.correction_id),
        ]
        again = await attempt(call, "RevokeCorrection", revoke, "admin")
        assert code_of(again) == grpc.StatusCode.FAILED_PRECONDITION

    served(tmp_path, token_files, body)


def test_after_full_time_only_an_admin_may_correct(
    tmp_path: Path, token_files: tuple[Path, Path]
) -> None:
    async def body(call: Call, twin: PipelineTwin) -> None:
        twin.vendor(vendor(1, "kickoff", team=None), vendor(2), vendor(3, "full_time", team=None))
        refused = await attempt(call, "CorrectScore", score(), "editor")
        assert code_of(refused) == DENIED
        assert "only an admin" in refused.details()
        assert (await call("CorrectScore", score(), "admin")).applied

    served(tmp_path, token_files, body)


def test_a_correction_older_than_the_last_accepted_event_is_refused_and_never_sent(
    tmp_path: Path, token_files: tuple[Path, Path]
) -> None:
    async def body(call: Call, twin: PipelineTwin) -> None:
        twin.vendor(vendor(1, "kickoff", team=None), vendor(2), vendor(3))
        stale = await attempt(call, "CorrectScore", score(when=2.9), "editor")
        assert code_of(stale) == grpc.StatusCode.FAILED_PRECONDITION
        assert "older than the last event" in stale.details()
        assert twin.sent == []
        first = await call("CorrectScore", score(1, 1, when=10), "editor")
        assert first.applied
        # A correction is an accepted event too: the next may not be older than it.
        older = await attempt(call, "CorrectScore", score(when=9), "editor")
        assert code_of(older) == grpc.StatusCode.FAILED_PRECONDITION
        assert len(twin.sent) == 1

    _, metrics = served(tmp_path, token_files, body)
    stale_count = metrics.registry.get_sample_value(
        "gameday_corrections_requests_total", {"method": "CorrectScore", "outcome": "stale"}
    )
    assert stale_count == 2


def test_the_scorekeeper_refusing_a_raced_correction_is_the_answer(
    tmp_path: Path, token_files: tuple[Path, Path]
) -> None:
    async def body(call: Call, twin: PipelineTwin) -> None:
        twin.vendor(vendor(1, "kickoff", team=None))
        twin.first.append(vendor(2, occurred_at=at(50)))  # a newer goal gets there first
        raced = await attempt(call, "CorrectScore", score(when=40), "editor")
        assert code_of(raced) == grpc.StatusCode.FAILED_PRECONDITION
        assert "scorekeeper" in raced.details()

    served(tmp_path, token_files, body)


@pytest.mark.parametrize(
    ("request_", "code", "words"),
    [
        (score(match="GHA-PAN"), grpc.StatusCode.INVALID_ARGUMENT, "HOME-AWAY"),
        (score(match="../etc"), grpc.StatusCode.INVALID_ARGUMENT, "HOME-AWAY"),
        (score(match="gha-pan-other"), grpc.StatusCode.NOT_FOUND, "no events"),
        (
            pb.CorrectScoreRequest(match_id=MATCH, home=1, reason="r", occurred_at=at(30)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "home and away",
        ),
        (
            pb.CorrectScoreRequest(match_id=MATCH, home=1, away=1, reason="r"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "occurred_at is required",
        ),
        (
            pb.CorrectScoreRequest(
                match_id=MATCH, home=1, away=1, reason="r", occurred_at="yesterday"
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "RFC 3339",
        ),
        (score(when=3600), grpc.StatusCode.INVALID_ARGUMENT, "future"),
        (
            pb.CorrectScoreRequest(match_id=MATCH, home=1, away=1, occurred_at=at(30)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "reason",
        ),
        (score(home=100), grpc.StatusCode.INVALID_ARGUMENT, "0-99"),
        (score(correction_id="NO"), grpc.StatusCode.INVALID_ARGUMENT, "correction_id"),
    ],
)
def test_bad_requests_are_refused_naming_the_problem(
    tmp_path: Path,
    token_files: tuple[Path, Path],
    request_: pb.CorrectScoreRequest,
    code: grpc.StatusCode,
    words: str,
) -> None:
    async def body(call: Call, twin: PipelineTwin) -> None:
        twin.vendor(vendor(1, "kickoff", team=None))
        refused = await attempt(call, "CorrectScore", request_, "editor")
        assert code_of(refused) == code
        assert words in refused.details()
        assert twin.sent == []

    served(tmp_path, token_files, body)


def test_a_retry_with_the_same_correction_id_is_answered_not_applied_twice(
    tmp_path: Path, token_files: tuple[Path, Path]
) -> None:
    async def body(call: Call, twin: PipelineTwin) -> None:
        twin.vendor(vendor(1, "kickoff", team=None))
        first = await call("CorrectScore", score(correction_id="retry-me-1"), "editor")
        again = await call("CorrectScore", score(correction_id="retry-me-1", when=31), "editor")
        assert (again.correction_id, again.seq, again.applied) == ("retry-me-1", first.seq, True)
        assert len(twin.sent) == 1

    served(tmp_path, token_files, body)


# --- the scorekeeper: one sequence for fans out of two sources ------------------------------


def keeper(tmp_path: Path) -> tuple[Scorekeeper, list[int]]:
    """A scorekeeper whose Redis writes are recorded instead of made."""
    config = ScorekeeperConfig(
        kafka_bootstrap="unused:9",
        topic="match-events",
        feed_topic="feed-status",
        sentinels=("127.0.0.1:1",),
        master_name="scores",
        replay_url="http://127.0.0.1:1",
        audit_dir=tmp_path / "audit",
        metrics_port=0,
    )
    sk = Scorekeeper(config, metrics=Metrics())
    written: list[int] = []

    async def durable_apply(_book: Any, seq: int) -> None:
        written.append(seq)

    sk._durable_apply = durable_apply  # type: ignore[method-assign]
    return sk, written


def test_a_correction_takes_the_next_seq_and_the_vendors_events_follow_it(tmp_path: Path) -> None:
    sk, written = keeper(tmp_path)
    offset = iter(range(100))

    async def feed(*events: MatchEvent) -> None:
        for event in events:
            await sk.handle(Pending(event, 0, next(offset), "primary", {}))

    async def main() -> list[int]:
        asked: list[int] = []

        async def vendor_events(_match: str, after: int) -> list[MatchEvent]:
            asked.append(after)
            return []

        sk.vendor_events = vendor_events  # type: ignore[method-assign]
        await feed(vendor(1, "kickoff", team=None), vendor(3))  # 3 waits behind a gap
        await feed(correction(2, 0, 1, when=1.5))  # applied at once, after 1
        await feed(correction(2, 0, 1, when=1.5))  # Kafka re-delivered it: dropped
        await feed(correction(2, 5, 5, when=0.5, eid="c-old"))  # stale: dropped
        await sk.fill(sk.book(MATCH), 3, "gap")  # the vendor is asked in its own numbering
        await feed(vendor(2, team="PAN"))  # fills the gap: 2 and 3 follow the correction
        return asked

    asked = asyncio.run(main())
    assert asked == [1]
    assert written == [1, 2, 3, 4]
    audited = sk.audit.records(MATCH)
    assert [(e.event_id, e.seq, c.get("source_seq")) for e, c in audited] == [
        ("v1", 1, 1),
        ("c1", 2, None),
        ("v2", 3, 2),
        ("v3", 4, 3),
    ]
    book = sk.book(MATCH)
    assert book.state == fold([e for e, _ in audited], MATCH)
    assert book.state.score == {"GHA": 1, "PAN": 2}
    assert (book.sequencer.last_seq, book.state.seq) == (3, 4)
    rejected = sk.metrics.registry.get_sample_value
    assert rejected("gameday_scorekeeper_rejected_total", {"reason": "correction_duplicate"}) == 1
    assert rejected("gameday_scorekeeper_rejected_total", {"reason": "correction_stale"}) == 1

    sk.audit.close()
    restarted, _ = keeper(tmp_path)
    restarted.load_audit()
    again = restarted.book(MATCH)
    restarted.audit.close()
    assert (again.sequencer.last_seq, again.state.seq) == (3, 4)
    assert again.state == book.state


def test_kafka_not_taking_a_correction_is_unavailable_and_says_so(
    tmp_path: Path, token_files: tuple[Path, Path]
) -> None:
    async def body(call: Call, twin: PipelineTwin) -> None:
        twin.vendor(vendor(1, "kickoff", team=None))

        async def never(*_args: Any) -> None:
            await asyncio.Event().wait()

        twin.send = never  # type: ignore[method-assign]
        refused = await attempt(call, "CorrectScore", score(), "editor")
        assert code_of(refused) == grpc.StatusCode.UNAVAILABLE
        assert "look at the match" in refused.details()

    served(tmp_path, token_files, body, produce_timeout_s=0.2)
