"""`gameday correct ...`: the corrections service from the command line.

    gameday correct show MATCH                      the match as applied (viewer)
    gameday correct list MATCH                      its corrections (viewer)
    gameday correct score MATCH --home N --away N --reason TEXT [--at TIME] (editor)
    gameday correct revoke MATCH CORRECTION_ID --reason TEXT [--at TIME]    (admin)

The service's address and the tokens come from the running stack (`status --json`:
`corrections`, `corrections_tokens_file`, `admin_token_file`): each action uses the token
of the least role it needs, or `--token-file F` (a file holding one bare token).
Exit 0 done; 1 refused by the service (no such match, stale, role too low) or the service
is down; 2 bad arguments, named, or no stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from pipeline.corrections import corrections_pb2 as pb
from pipeline.corrections import corrections_pb2_grpc as pb_grpc
from pipeline.corrections.auth import Role, token_for
from pipeline.deploy import open_deployment
from pipeline.model import MAX_SCORE, MAX_TEXT, format_time, parse_time, teams_of

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
NEEDS: dict[str, Role] = {"show": "viewer", "list": "viewer", "score": "editor", "revoke": "admin"}
BAD_INPUT = (grpc.StatusCode.INVALID_ARGUMENT,)


def _match_id(text: str) -> str:
    try:
        teams_of(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _goals(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= MAX_SCORE:
        raise argparse.ArgumentTypeError(f"a score is 0-{MAX_SCORE}, got {value}")
    return value


def _moment(text: str) -> str:
    try:
        return format_time(parse_time(text))
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 time with a zone, e.g. 2026-12-04T15:02:11Z"
        ) from None


def _reason(text: str) -> str:
    if not text.strip() or len(text) > MAX_TEXT or any(ord(c) < 32 for c in text):
        raise argparse.ArgumentTypeError(
            f"a reason is 1-{MAX_TEXT} characters without control characters"
        )
    return text


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    correct = sub.add_parser("correct", help="score corrections by match officials (gRPC)")
    actions = correct.add_subparsers(dest="correct_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="the match as the pipeline applied it")
    listed = actions.add_parser("list", help="the corrections of a match, in order")
    score = actions.add_parser("score", help="set the score (editor; admin after full time)")
    revoke = actions.add_parser("revoke", help="undo a correction (admin)")
    for action in (show, listed, score, revoke):
        action.add_argument("match_id", type=_match_id, metavar="MATCH")
        action.add_argument("--address", metavar="HOST:PORT", help="default: the stack's")
        action.add_argument(
            "--token-file",
            type=Path,
            metavar="F",
            help="a file holding the bearer token (default: the stack's token for the role)",
        )
        action.add_argument("--json", action="store_true", help="print JSON")
    revoke.add_argument("correction_id", metavar="CORRECTION_ID")
    score.add_argument("--home", type=_goals, required=True, metavar="N")
    score.add_argument("--away", type=_goals, required=True, metavar="N")
    score.add_argument("--id", default="", metavar="ID", help="make a retry harmless")
    for action in (score, revoke):
        action.add_argument("--reason", type=_reason, required=True, metavar="TEXT")
        action.add_argument(
            "--at",
            type=_moment,
            default=None,
            metavar="TIME",
            help="when the official decided, RFC 3339 (default: now)",
        )


def _target(args: argparse.Namespace) -> tuple[str, str]:
    """(address, token) from the arguments, else from the running stack."""
    if args.address and args.token_file:
        return args.address, _read(args.token_file)
    endpoints = open_deployment().endpoints()  # StackNotRunning: exit 2, named
    address = args.address or endpoints["corrections"]
    if args.token_file:
        return address, _read(args.token_file)
    token = token_for(
        NEEDS[args.correct_command],
        admin_token_file=Path(endpoints["admin_token_file"]),
        tokens_file=Path(endpoints["corrections_tokens_file"]),
    )
    return address, token


def _read(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read the token file {path} ({exc.strerror})") from None
    if not token:
        raise ValueError(f"the token file {path} is empty")
    return token


async def _request(
    stub: pb_grpc.CorrectionsAsyncStub, args: argparse.Namespace, token: str
) -> Message:
    at = getattr(args, "at", None) or format_time(datetime.now(UTC))
    auth = (("authorization", f"Bearer {token}"),)
    match args.correct_command:
        case "show":
            return await stub.GetMatch(pb.GetMatchRequest(match_id=args.match_id), metadata=auth)
        case "list":
            request = pb.ListCorrectionsRequest(match_id=args.match_id)
            return await stub.ListCorrections(request, metadata=auth)
        case "score":
            return await stub.CorrectScore(
                pb.CorrectScoreRequest(
                    match_id=args.match_id,
                    home=args.home,
                    away=args.away,
                    reason=args.reason,
                    occurred_at=at,
                    correction_id=args.id,
                ),
                metadata=auth,
            )
    return await stub.RevokeCorrection(
        pb.RevokeCorrectionRequest(
            match_id=args.match_id,
            correction_id=args.correction_id,
            reason=args.reason,
            occurred_at=at,
        ),
        metadata=auth,
    )


async def run(args: argparse.Namespace) -> int:
    address, token = _target(args)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.CorrectionsStub(channel)
        try:
            reply = await _request(stub, args, token)
        except grpc.aio.AioRpcError as exc:
            print(f"gameday correct: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return EXIT_BAD_INPUT if exc.code() in BAD_INPUT else EXIT_FAILED
    doc = MessageToDict(
        reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    print(json.dumps(doc, indent=2) if args.json else _render(args.correct_command, doc))
    return EXIT_OK


def _render(action: str, doc: dict[str, Any]) -> str:
    if action == "show":
        return (
            f"{doc['match_id']}: {doc['home']} {doc['home_score']}-{doc['away_score']} "
            f"{doc['away']} ({doc['status']}), seq {doc['seq']}, last event at "
            f"{doc['last_event_at']}, {doc['corrections']} correction(s) in force"
        )
    if action == "list":
        lines = [
            f"seq {c['seq']:>4}  {c['correction_id']}  {c['kind']}  "
            + (f"{c['home']}-{c['away']}  " if c["kind"] == "score_correction" else "")
            + f"by {c['official']} at {c['occurred_at']}: {c['reason']}"
            + (f"  [{c['ref_correction_id']}]" if c["ref_correction_id"] else "")
            for c in doc.get("corrections", [])
        ]
        return "\n".join(lines) or "no corrections"
    state = "applied as seq " + str(doc["seq"]) if doc["applied"] else "accepted, not applied yet"
    return f"{doc['correction_id']} ({doc['match_id']}) by {doc['official']}: {state}"
