"""The score-correction service: match officials correct a score over gRPC.

`pipeline/corrections/corrections.proto` is the contract. Every call needs a bearer token
(`auth.py`): a missing or unknown one is UNAUTHENTICATED, a role too low
PERMISSION_DENIED. A correction is an event like any other: the service checks it
(`rules.py`), produces it to Kafka (idempotent producer, acks=all, keyed by
match id, as ingest does), and the scorekeeper applies it in order, to Redis and the
audit trail. The service never writes Redis: it reads what was applied from the audit
trail, read-only, to answer GetMatch/ListCorrections, to refuse a correction older than
the last accepted event before producing it, and to wait (`apply_wait_s`) until the
scorekeeper applied the one it produced, so that the official learns its seq. Should a
newer event beat the correction to the scorekeeper, the scorekeeper refuses it and so
does the answer (FAILED_PRECONDITION).

Errors: every refusal is a `Refused` (status + reason), counted in
`gameday_corrections_requests_total{method, outcome}`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from pipeline.corrections import corrections_pb2 as pb
from pipeline.corrections import corrections_pb2_grpc as pb_grpc
from pipeline.corrections.audit import AuditReader
from pipeline.corrections.auth import Principal, Role, Tokens
from pipeline.corrections.kafka import KafkaSender
from pipeline.corrections.replies import corrections_reply, match_reply, receipt
from pipeline.corrections.rules import (
    Refused,
    check,
    correction_id,
    official_event,
    refusal,
    valid_match_id,
)
from pipeline.model import MatchEvent, ScoreState
from pipeline.service import with_telemetry
from pipeline.telemetry import Metrics

log = logging.getLogger("corrections")
propagator = TraceContextTextMapPropagator()
T = TypeVar("T")
METHODS = ("GetMatch", "ListCorrections", "CorrectScore", "RevokeCorrection")


@dataclass(frozen=True, kw_only=True)
class CorrectionsConfig:
    port: int
    metrics_port: int
    kafka_bootstrap: str
    topic: str
    audit_dir: Path
    """The scorekeeper's audit trail, read here and never written."""
    admin_token_file: Path
    tokens_file: Path
    host: str = "127.0.0.1"
    trace_dir: Path | None = None
    apply_wait_s: float = 3.0
    """How long an answer waits for the scorekeeper to apply the correction."""
    produce_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.apply_wait_s < 0 or self.produce_timeout_s <= 0:
            raise ValueError("apply_wait_s must be >= 0 and produce_timeout_s > 0")


class CorrectionsService(pb_grpc.CorrectionsServicer):
    def __init__(
        self,
        config: CorrectionsConfig,
        *,
        tokens: Tokens,
        send: Callable[[str, bytes, bytes, dict[str, str]], Awaitable[None]],
        reader: AuditReader | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.tokens = tokens
        self.send = send
        self.reader = reader or AuditReader(config.audit_dir)
        self.metrics = metrics or Metrics()
        self.tracer = trace.get_tracer("gameday.corrections")
        requests = self.metrics.counter("gameday_corrections_requests_total")
        for method in METHODS:  # at 0, so the first refusal is an increase
            requests.labels(method=method, outcome="ok")

    # --- the calls ------------------------------------------------------------------

    async def GetMatch(
        self, request: pb.GetMatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Match:
        async def work(_who: Principal) -> pb.Match:
            return match_reply(self._known(request.match_id))

        return await self._call("GetMatch", context, "viewer", work)

    async def ListCorrections(
        self, request: pb.ListCorrectionsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListCorrectionsResponse:
        async def work(_who: Principal) -> pb.ListCorrectionsResponse:
            state = self._known(request.match_id)
            return pb.ListCorrectionsResponse(corrections=corrections_reply(self.reader, state))

        return await self._call("ListCorrections", context, "viewer", work)

    async def CorrectScore(
        self, request: pb.CorrectScoreRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Receipt:
        async def work(who: Principal) -> pb.Receipt:
            state = self._known(request.match_id)
            if state.status == "full_time" and not who.may("admin"):
                raise Refused(
                    "PERMISSION_DENIED",
                    "permission_denied",
                    f"{request.match_id} is over: only an admin may correct its score now",
                )
            if not (request.HasField("home") and request.HasField("away")):
                raise Refused("INVALID_ARGUMENT", "bad_field", "home and away are both required")
            event = official_event(
                {
                    "event_id": correction_id(request.correction_id),
                    "match_id": request.match_id,
                    "seq": state.seq + 1,
                    "type": "score_correction",
                    "occurred_at": request.occurred_at,
                    "score": {state.home: request.home, state.away: request.away},
                    "reason": request.reason or None,
                    "official": who.name,
                }
            )
            return await self._submit(state, event)

        return await self._call("CorrectScore", context, "editor", work)

    async def RevokeCorrection(
        self, request: pb.RevokeCorrectionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Receipt:
        async def work(who: Principal) -> pb.Receipt:
            state = self._known(request.match_id)
            event = official_event(
                {
                    "event_id": correction_id(""),
                    "match_id": request.match_id,
                    "seq": state.seq + 1,
                    "type": "correction_revoked",
                    "occurred_at": request.occurred_at,
                    "ref_event_id": request.correction_id or None,
                    "reason": request.reason or None,
                    "official": who.name,
                }
            )
            return await self._submit(state, event)

        return await self._call("RevokeCorrection", context, "admin", work)

    # --- shared steps ---------------------------------------------------------------

    async def _call(
        self,
        method: str,
        context: grpc.aio.ServicerContext[Any, Any],
        role: Role,
        work: Callable[[Principal], Awaitable[T]],
    ) -> T:
        """Authorize, run, count; a Refused becomes the gRPC status it names."""
        try:
            result = await work(self.authorize(_authorization(context), role))
        except Refused as exc:
            self._count(method, exc.reason)
            log.info("%s refused (%s): %s", method, exc.reason, exc)
            await context.abort(getattr(grpc.StatusCode, exc.status), str(exc))
        self._count(method, "ok")
        return result

    def authorize(self, authorization: str | None, role: Role) -> Principal:
        who = self.tokens.who(authorization)
        if who is None:
            raise Refused(
                "UNAUTHENTICATED",
                "unauthenticated",
                "a valid bearer token is required (authorization: Bearer <token>)",
            )
        if not who.may(role):
            raise Refused(
                "PERMISSION_DENIED",
                "permission_denied",
                f"{who.name} is a {who.role}; this call needs the {role} role",
            )
        return who

    def _count(self, method: str, outcome: str) -> None:
        self.metrics.counter("gameday_corrections_requests_total").labels(
            method=method, outcome=outcome
        ).inc()

    def _known(self, match_id: str) -> ScoreState:
        state = self.reader.state(valid_match_id(match_id))
        if state.seq == 0:
            raise Refused("NOT_FOUND", "unknown_match", f"{match_id} has no events yet")
        return state

    async def _submit(self, state: ScoreState, event: MatchEvent) -> pb.Receipt:
        """Check, produce to Kafka, wait for the scorekeeper to apply it."""
        applied = self.reader.applied(event.match_id, event.event_id)
        if applied is not None:  # a retry of one already applied: its receipt again
            return receipt(event, applied)
        check(state, event)
        with self.tracer.start_as_current_span(
            "corrections.produce", attributes={"match_id": event.match_id}
        ):
            carrier: dict[str, str] = {}
            propagator.inject(carrier)
            headers = {**carrier, "source": "corrections", "official": event.official or ""}
            try:
                await asyncio.wait_for(
                    self.send(self.config.topic, event.match_id.encode(), event.encode(), headers),
                    self.config.produce_timeout_s,
                )
            except TimeoutError:
                raise Refused(
                    "UNAVAILABLE",
                    "kafka_unavailable",
                    f"Kafka did not take the correction within {self.config.produce_timeout_s:g}s;"
                    " it may still be applied: look at the match before resending",
                ) from None
        log.warning(
            "%s: %s %s by %s (%s) produced",
            event.match_id,
            event.type,
            event.event_id,
            event.official,
            event.reason,
        )
        return receipt(event, await self._applied(event))

    async def _applied(self, event: MatchEvent) -> int:
        """The seq the scorekeeper applied `event` as, or 0 when it has not yet."""
        started = time.monotonic()
        deadline = started + self.config.apply_wait_s
        while True:
            seq = self.reader.applied(event.match_id, event.event_id)
            if seq is not None:
                self.metrics.histogram("gameday_corrections_apply_seconds").observe(
                    time.monotonic() - started
                )
                return seq
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        if refusal(self.reader.state(event.match_id), event) == "stale":
            raise Refused(
                "FAILED_PRECONDITION",
                "refused_by_scorekeeper",
                "a newer event reached the scorekeeper first and it refused the correction: "
                "look at the match again and resend",
            )
        return 0


def _authorization(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else value.decode()
    return None


async def ready(address: str, *, timeout_s: float = 1.0) -> str | None:
    """Health probe: None when the gRPC server at `address` accepts a connection."""
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout_s)
        except TimeoutError:
            return f"no gRPC server answering on {address}"
    return None


async def run(config: CorrectionsConfig, metrics: Metrics) -> None:
    tokens = Tokens.load(admin_token_file=config.admin_token_file, tokens_file=config.tokens_file)
    kafka = KafkaSender(config.kafka_bootstrap, timeout_s=config.produce_timeout_s)
    server = grpc.aio.server()
    pb_grpc.add_CorrectionsServicer_to_server(
        CorrectionsService(config, tokens=tokens, send=kafka.send, metrics=metrics), server
    )
    address = f"{config.host}:{config.port}"
    if server.add_insecure_port(address) != config.port:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    log.info("corrections: gRPC on %s", address)
    try:
        await server.wait_for_termination()
    finally:
        await server.stop(grace=2)
        kafka.close()


async def serve(config: CorrectionsConfig) -> None:
    metrics = Metrics()
    await with_telemetry(
        "corrections",
        trace_dir=config.trace_dir,
        metrics_port=config.metrics_port,
        host=config.host,
        registry=metrics.registry,
        work=run(config, metrics),
    )
