"""Score corrections on the real stack: roles over gRPC, stale corrections refused, and an
accepted correction reaching every fan through Kafka, the scorekeeper and the edges,
while the vendor's events keep flowing around it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
from confluent_kafka import Consumer, TopicPartition
from support import gameday, post, until

from chaos.fans import Fan, FanHistory, watch
from pipeline.audit import AuditLog
from pipeline.corrections import corrections_pb2 as pb
from pipeline.corrections import corrections_pb2_grpc as pb_grpc
from pipeline.corrections.auth import token_for
from pipeline.model import fold, format_time

Call = Callable[[str, Any, str | None], Awaitable[Any]]


def new_match() -> str:
    return f"gha-pan-{uuid.uuid4().hex[:10]}"


def events(match_id: str, start: datetime, *specs: tuple[int, str, str | None]) -> bytes:
    """Vendor events (seq, type, team), one second apart from `start`."""
    return json.dumps(
        [
            {
                "event_id": f"{match_id}-{seq}",
                "match_id": match_id,
                "seq": seq,
                "type": kind,
                "team": team,
                "minute": seq * 10,
                "occurred_at": format_time(start + timedelta(seconds=seq)),
            }
            for seq, kind, team in specs
        ]
    ).encode()


def caller(endpoints: dict[str, Any], stub: pb_grpc.CorrectionsAsyncStub) -> Call:
    files = {
        "admin_token_file": Path(endpoints["admin_token_file"]),
        "tokens_file": Path(endpoints["corrections_tokens_file"]),
    }

    async def call(method: str, request: Any, role: str | None) -> Any:
        token = token_for(role, **files) if role in ("viewer", "editor", "admin") else role  # type: ignore[arg-type]
        metadata = () if token is None else (("authorization", f"Bearer {token}"),)
        try:
            return await getattr(stub, method)(request, metadata=metadata, timeout=10)
        except grpc.aio.AioRpcError as exc:
            return exc

    return call


def code(outcome: Any) -> grpc.StatusCode:
    return outcome.code() if isinstance(outcome, grpc.aio.AioRpcError) else grpc.StatusCode.OK


def correct(match_id: str, home: int, away: int, moment: datetime) -> pb.CorrectScoreRequest:
    return pb.CorrectScoreRequest(
        match_id=match_id,
        home=home,
        away=away,
        reason="second goal credited to the wrong team",
        occurred_at=format_time(moment),
    )


def test_corrections_are_refused_by_role_and_age_and_reach_every_fan_through_kafka(
    stack_dir: Path, endpoints: dict[str, Any]
) -> None:
    match_id = new_match()
    start = datetime.now(UTC) - timedelta(minutes=1)
    deny, unauth = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED

    async def scenario(fans: list[Fan], call: Call) -> dict[str, Any]:
        def everyone_at(seq: int) -> Callable[[], bool]:
            return lambda: all(f.history.last_seq == seq for f in fans)

        await post(
            endpoints, match_id, events(match_id, start, (1, "kickoff", None), (2, "goal", "GHA"))
        )
        await until(everyone_at(2), 15, "every fan to reach seq 2")
        show = pb.GetMatchRequest(match_id=match_id)

        # Roles: each allowed and refused where it should be.
        assert code(await call("GetMatch", show, None)) == unauth
        assert code(await call("GetMatch", show, "not-the-token")) == unauth
        viewed = await call("GetMatch", show, "viewer")
        assert (viewed.seq, viewed.home_score, viewed.away_score) == (2, 1, 0)
        now = datetime.now(UTC)
        assert code(await call("CorrectScore", correct(match_id, 0, 1, now), "viewer")) == deny
        assert code(await call("CorrectScore", correct(match_id, 0, 1, now), None)) == unauth

        # Older than the goal: refused, and nothing reaches the fans.
        stale = await call("CorrectScore", correct(match_id, 0, 1, start), "editor")
        assert code(stale) == grpc.StatusCode.FAILED_PRECONDITION, stale
        assert "older than the last event" in stale.details()

        receipt = await call("CorrectScore", correct(match_id, 0, 1, now), "editor")
        assert code(receipt) == grpc.StatusCode.OK, receipt
        assert (receipt.applied, receipt.seq, receipt.official) == (True, 3, "editor")
        await until(everyone_at(3), 15, "every fan to receive the correction")

        # The vendor goes on in its own numbering; fans get the next seqs.
        await post(
            endpoints, match_id, events(match_id, start, (3, "goal", "PAN"), (4, "full_time", None))
        )
        await until(everyone_at(5), 15, "every fan to reach seq 5")

        revoke = pb.RevokeCorrectionRequest(
            match_id=match_id,
            correction_id=receipt.correction_id,
            reason="the goal was GHA's after all",
            occurred_at=format_time(datetime.now(UTC)),
        )
        assert code(await call("RevokeCorrection", revoke, "editor")) == deny
        after_whistle = correct(match_id, 0, 2, datetime.now(UTC))
        assert code(await call("CorrectScore", after_whistle, "editor")) == deny
        undone = await call("RevokeCorrection", revoke, "admin")
        assert (undone.applied, undone.seq, undone.official) == (True, 6, "admin")
        await until(everyone_at(6), 15, "every fan to receive the revocation")
        listed = await call(
            "ListCorrections", pb.ListCorrectionsRequest(match_id=match_id), "viewer"
        )
        assert [(c.kind, c.seq) for c in listed.corrections] == [
            ("score_correction", 3),
            ("correction_revoked", 6),
        ]
        return {"correction_id": receipt.correction_id}

    histories, outcome = asyncio.run(watched(endpoints, match_id, scenario))

    # Every fan: each seq once, in order, none skipped, the correction in its place.
    for history in histories:
        assert [r.seq for r in history.receipts] == [1, 2, 3, 4, 5, 6], history.fan_id
        scores = [(r.data["event"]["type"], r.data["score"]) for r in history.receipts]
        assert scores[2:] == [
            ("score_correction", {"GHA": 0, "PAN": 1}),
            ("goal", {"GHA": 0, "PAN": 2}),
            ("full_time", {"GHA": 0, "PAN": 2}),
            ("correction_revoked", {"GHA": 1, "PAN": 1}),
        ], history.fan_id

    # The audit trail has it, from Kafka; the last state is the fold of the trail.
    audit = AuditLog(stack_dir / "audit")
    records = audit.records(match_id)
    audit.close()
    last = histories[0].receipts[-1].data
    assert fold([e for e, _ in records], match_id).to_json()["score"] == last["score"]
    audited = {e.event_id: (e, context) for e, context in records}
    event, context = audited[outcome["correction_id"]]
    assert (event.type, event.seq, event.official) == ("score_correction", 3, "editor")
    assert context["offset"] >= 0
    assert [c.get("source_seq") for _, c in records] == [1, 2, None, 3, 4, None]
    record = kafka_record(endpoints, context["partition"], context["offset"])
    assert outcome["correction_id"] in record["value"]
    assert record["headers"]["source"] == "corrections"

    asyncio.run(refusals_counted(endpoints))
    cli_works(stack_dir, match_id, outcome["correction_id"])


async def watched(
    endpoints: dict[str, Any],
    match_id: str,
    scenario: Callable[[list[Fan], Call], Awaitable[dict[str, Any]]],
) -> tuple[list[FanHistory], dict[str, Any]]:
    fans = [
        Fan(url, match_id, region=region, fan_id=region)
        for region, url in endpoints["edges"].items()
    ]
    stop = asyncio.Event()
    watching = asyncio.create_task(watch(fans, stop))
    await until(lambda: all(f.connected.is_set() for f in fans), 10, "every fan to connect")
    try:
        async with grpc.aio.insecure_channel(endpoints["corrections"]) as channel:
            outcome = await scenario(fans, caller(endpoints, pb_grpc.CorrectionsStub(channel)))
    finally:
        stop.set()
        histories = await watching
    return histories, outcome


def kafka_record(endpoints: dict[str, Any], partition: int, offset: int) -> dict[str, Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": endpoints["kafka_bootstrap"],
            "group.id": f"test-corrections-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(endpoints["kafka_topic"], partition, offset)])
        message = consumer.poll(10)
        assert message is not None
        assert message.error() is None
        assert message.offset() == offset
        headers = {k: v.decode() for k, v in message.headers() or []}
        return {"value": (message.value() or b"").decode(), "headers": headers}
    finally:
        consumer.close()


async def refusals_counted(endpoints: dict[str, Any]) -> None:
    """Prometheus scrapes the service: its refusals are counted by reason."""
    query = 'sum by (outcome) (gameday_corrections_requests_total{outcome!="ok"})'
    seen: dict[str, float] = {}

    async with httpx.AsyncClient(timeout=5) as client:

        async def scrape() -> None:
            answer = await client.get(
                f"{endpoints['prometheus']}/api/v1/query", params={"query": query}
            )
            for row in answer.json()["data"]["result"]:
                seen[row["metric"]["outcome"]] = float(row["value"][1])

        async def counted() -> bool:
            await scrape()
            return all(
                seen.get(k, 0) >= 1 for k in ("stale", "permission_denied", "unauthenticated")
            )

        deadline = asyncio.get_running_loop().time() + 15
        while not await counted():
            assert asyncio.get_running_loop().time() < deadline, f"refusals not counted: {seen}"
            await asyncio.sleep(0.5)


def cli_works(stack_dir: Path, match_id: str, correction_id: str) -> None:
    listed = gameday("correct", "list", match_id, run_dir=stack_dir)
    assert listed.returncode == 0, listed.stderr
    assert correction_id in listed.stdout
    bad = gameday(
        "correct", "score", "GHA", "--home", "1", "--away", "0", "--reason", "x", run_dir=stack_dir
    )
    assert bad.returncode == 2
    assert "HOME-AWAY" in bad.stderr
    refused = gameday(
        "correct", "score", match_id, "--home", "1", "--away", "0", "--reason", "x",
        run_dir=stack_dir,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "only an admin" in refused.stderr
