"""The feed parser under fuzzing: valid events always pass and round-trip; anything else
is refused with one of the declared reasons, never with another exception; and ingest
keeps forwarding the valid events around a bad packet, counting each rejection."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from support import KafkaTwin

from pipeline.ingest import MAX_LINE, Ingest, IngestConfig, LineSplitter
from pipeline.model import (
    EVENT_TYPES,
    MAX_DEPTH,
    MAX_FUTURE,
    MAX_PACKET_BYTES,
    MAX_TEXT,
    NEEDS_REF,
    NEEDS_TEAM,
    REASONS,
    InvalidEvent,
    MatchEvent,
    format_time,
)
from pipeline.telemetry import Metrics

NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
GOOD: dict[str, Any] = {
    "event_id": "x1",
    "match_id": "gha-pan",
    "seq": 17,
    "type": "goal",
    "team": "GHA",
    "player": "A. Semenyo",
    "minute": 88,
    "occurred_at": "2026-12-04T14:58:11.123Z",
    "ref_event_id": None,
}
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def refused(packet: bytes | str | dict[str, Any]) -> str:
    """The reason `packet` is refused for (the test fails if it is accepted)."""
    with pytest.raises(InvalidEvent) as error:
        MatchEvent.parse(packet, now=NOW)
    assert str(error.value), "a rejection must say what was wrong"
    return error.value.reason


def parse_or_reason(packet: bytes) -> MatchEvent | str:
    """Whatever the packet, the parser's only way to say no is InvalidEvent."""
    try:
        return MatchEvent.parse(packet, now=NOW)
    except InvalidEvent as error:
        reason, message = error.reason, str(error)
    assert reason in REASONS
    assert reason != "internal_error"
    assert message
    return reason


# --- strategies ----------------------------------------------------------------------------

text = st.text(
    st.characters(min_codepoint=32, exclude_categories=["Cs"]), min_size=1, max_size=MAX_TEXT
).filter(lambda t: t.strip() != "")
teams = st.sampled_from(["gha", "pan", "bra", "arg", "ci", "usa123"])
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@st.composite
def valid_events(draw: st.DrawFn) -> MatchEvent:
    home, away = draw(st.lists(teams, min_size=2, max_size=2, unique=True))
    suffix = draw(st.none() | st.from_regex(r"[a-z0-9]{1,16}", fullmatch=True))
    kind = draw(st.sampled_from(sorted(EVENT_TYPES)))
    needs_team = kind in NEEDS_TEAM
    moment = draw(
        st.datetimes(
            min_value=datetime(2000, 1, 1),
            max_value=(NOW + MAX_FUTURE - timedelta(seconds=1)).replace(tzinfo=None),
            timezones=st.just(UTC),
        )
    )
    return MatchEvent(
        event_id=draw(text),
        match_id=f"{home}-{away}" + (f"-{suffix}" if suffix else ""),
        seq=draw(st.integers(1, 2**53 - 1)),
        type=kind,
        occurred_at=format_time(moment),
        team=draw(st.sampled_from([home.upper(), away.upper()]))
        if needs_team
        else draw(st.none() | st.just(home.upper())),
        player=draw(st.none() | text),
        minute=draw(st.none() | st.integers(0, 200)),
        ref_event_id=draw(text) if kind in NEEDS_REF else draw(st.none() | text),
    )


# --- properties ----------------------------------------------------------------------------


@FUZZ
@given(event=valid_events())
def test_every_valid_event_is_accepted_and_round_trips(event: MatchEvent) -> None:
    assert MatchEvent.parse(event.encode(), now=NOW) == event
    assert MatchEvent.parse(json.dumps(event.to_json()), now=NOW) == event  # ASCII escapes
    assert MatchEvent.parse(event.to_json(), now=NOW) == event


@FUZZ
@given(packet=st.binary(max_size=2048))
@example(packet=b"\xff\xfe")
@example(packet=b"[" * 100_000)
@example(packet=b'{"seq": 1e400}')
@example(packet=b'{"seq": ' + b"9" * 5000 + b"}")
def test_arbitrary_bytes_are_refused_only_with_a_declared_reason(packet: bytes) -> None:
    parse_or_reason(packet)


@FUZZ
@given(value=json_values)
def test_arbitrary_json_is_refused_only_with_a_declared_reason(value: Any) -> None:
    parse_or_reason(json.dumps(value).encode())


@FUZZ
@given(
    field=st.sampled_from([*GOOD, "extra"]),
    value=json_values | st.text(max_size=300) | st.integers(-(2**70), 2**70),
)
def test_any_one_field_replaced_by_any_json_is_accepted_or_refused_with_a_reason(
    field: str, value: Any
) -> None:
    outcome = parse_or_reason(json.dumps({**GOOD, field: value}).encode())
    if isinstance(outcome, MatchEvent):
        assert outcome.to_json()[field] == value


@FUZZ
@given(data=st.data())
def test_a_valid_packet_with_bytes_flipped_is_accepted_or_refused_with_a_reason(
    data: st.DataObject,
) -> None:
    packet = bytearray(json.dumps(GOOD).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        packet[data.draw(st.integers(0, len(packet) - 1))] = data.draw(st.integers(0, 255))
    parse_or_reason(bytes(packet))


# --- each class of bad packet, one by one --------------------------------------------------


def test_an_oversized_packet_is_refused_before_it_is_parsed() -> None:
    good = json.dumps(GOOD).encode()
    padded = good + b" " * (MAX_PACKET_BYTES - len(good))
    assert MatchEvent.parse(padded, now=NOW).seq == 17  # exactly the limit is fine
    assert refused(padded + b" ") == "oversized"
    # Not JSON at all past the limit: refused for its size, so it was never parsed.
    assert refused(b"\xff" * (MAX_PACKET_BYTES + 1)) == "oversized"
    assert refused({**GOOD, "player": "x" * (MAX_TEXT + 1)}) == "oversized"


def test_invalid_utf8_is_refused_and_so_is_a_lone_surrogate() -> None:
    assert refused(json.dumps(GOOD).encode().replace(b"Semenyo", b"Semen\xc3\x28yo")) == "bad_utf8"
    assert refused(json.dumps(GOOD).replace("Semenyo", "Semen\ud800yo")) == "bad_utf8"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 100_000])
@pytest.mark.parametrize("opener", [b"[", b"{", b'{"a":['])
def test_deep_nesting_is_refused_without_recursion(depth: int, opener: bytes) -> None:
    packet = (opener * depth)[:MAX_PACKET_BYTES]
    assert refused(packet) == "too_deep"


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    name = '[[[[{{{{[[[[{{{{ \\" [[[['
    event = MatchEvent.parse({**GOOD, "player": name}, now=NOW)
    assert MatchEvent.parse(event.encode(), now=NOW).player == name
    assert refused(b'{"player": "[[[["' + b"[" * (MAX_DEPTH + 1)) == "too_deep"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"type": "corner"}, "unknown_type"),
        ({"type": ["goal"]}, "unknown_type"),
        ({"type": None}, "missing_field"),
        ({"seq": "17"}, "bad_seq"),
        ({"seq": 17.0}, "bad_seq"),
        ({"seq": 0}, "bad_seq"),
        ({"seq": 2**53}, "bad_seq"),
        ({"minute": "88"}, "bad_minute"),
        ({"minute": -1}, "bad_minute"),
        ({"player": 7}, "wrong_type"),
        ({"player": ["x"]}, "wrong_type"),
        ({"team": {"code": "GHA"}}, "wrong_type"),
        ({"event_id": "   "}, "wrong_type"),
        ({"match_id": 7}, "wrong_type"),
        ({"occurred_at": 1733324531}, "wrong_type"),
        ({"ref_event_id": False}, "wrong_type"),
        ({"player": "line\nbreak"}, "wrong_type"),
    ],
)
def test_unknown_types_and_wrong_field_types_are_refused(
    changes: dict[str, Any], reason: str
) -> None:
    assert refused({**GOOD, **changes}) == reason
    assert refused(json.dumps({**GOOD, **changes}).encode()) == reason


@pytest.mark.parametrize(
    ("occurred_at", "reason"),
    [
        (format_time(NOW + MAX_FUTURE + timedelta(seconds=1)), "future_timestamp"),
        ("2100-01-01T00:00:00Z", "future_timestamp"),
        ("9999-12-31T23:59:59-05:00", "bad_timestamp"),  # overflows when made UTC
        ("0001-01-01T00:00:00+01:00", "bad_timestamp"),
        ("2026-12-04T14:58:11", "bad_timestamp"),  # no zone
        ("2026-13-45T99:00:00Z", "bad_timestamp"),
    ],
)
def test_timestamps_far_ahead_or_out_of_range_are_refused(occurred_at: str, reason: str) -> None:
    assert refused({**GOOD, "occurred_at": occurred_at}) == reason


def test_a_timestamp_within_the_declared_tolerance_is_accepted() -> None:
    ahead = format_time(NOW + MAX_FUTURE - timedelta(seconds=1))
    assert MatchEvent.parse({**GOOD, "occurred_at": ahead}, now=NOW).occurred_at == ahead


@pytest.mark.parametrize(
    "name",
    ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>", "'; DROP TABLE goals; --"],
)
def test_markup_in_a_player_name_is_accepted_and_kept_as_plain_text(name: str) -> None:
    event = MatchEvent.parse({**GOOD, "player": name}, now=NOW)
    assert event.player == name
    assert json.loads(event.encode())["player"] == name


# --- the stream reader ---------------------------------------------------------------------


def test_an_over_long_line_is_cut_once_and_its_tail_never_read_as_a_packet() -> None:
    valid = json.dumps(GOOD).encode()
    splitter = LineSplitter()
    out: list[bytes] = []
    out += splitter.feed(valid + b"\n" + b"x" * (MAX_LINE // 2))
    out += splitter.feed(b"y" * MAX_LINE)  # the line is now over the limit: cut
    out += splitter.feed(b"z" * 100 + valid + b"\n")  # its tail, smuggling a valid event
    out += splitter.feed(valid + b"\n")
    assert out[0] == valid
    assert out[-1] == valid
    assert len(out) == 3
    assert len(out[1]) == MAX_LINE
    assert parse_or_reason(out[1]) == "oversized"


@given(chunks=st.lists(st.binary(max_size=300), max_size=30))
def test_the_line_splitter_loses_no_line_and_bounds_every_one(chunks: list[bytes]) -> None:
    splitter = LineSplitter()
    out = [line for chunk in chunks for line in splitter.feed(chunk)]
    whole = b"".join(chunks)
    assume(all(len(line) <= MAX_LINE for line in whole.split(b"\n")))
    assert out == whole.split(b"\n")[:-1]


# --- ingest: counted rejections, nothing valid lost ----------------------------------------


def test_ingest_forwards_every_valid_event_around_bad_packets_and_counts_each(
    tmp_path: Path,
) -> None:
    config = IngestConfig(
        primary_url="http://127.0.0.1:1",
        secondary_url="http://127.0.0.1:1",
        kafka_bootstrap="127.0.0.1:1",
        topic="match-events",
        feed_topic="feed-status",
        metrics_port=0,
    )
    ingest = Ingest(config, metrics=Metrics())
    kafka = KafkaTwin()
    ingest.kafka = kafka  # type: ignore[assignment]
    now = datetime.now(UTC)
    valid = [
        {**GOOD, "event_id": f"v{seq}", "seq": seq, "occurred_at": format_time(now)}
        for seq in range(1, 6)
    ]
    hostile: list[tuple[bytes, str]] = [
        (b"x" * (MAX_PACKET_BYTES + 1), "oversized"),
        (b"\xff\xfe{}", "bad_utf8"),
        (b"[" * 5_000, "too_deep"),
        (json.dumps({**valid[0], "type": "corner"}).encode(), "unknown_type"),
        (json.dumps({**valid[0], "seq": "2"}).encode(), "bad_seq"),
        (
            json.dumps({**valid[0], "occurred_at": "2999-01-01T00:00:00Z"}).encode(),
            "future_timestamp",
        ),
        (
            json.dumps({**valid[0], "occurred_at": "9999-12-31T23:59:59-05:00"}).encode(),
            "bad_timestamp",
        ),
    ]
    try:
        for index, event in enumerate(valid):
            assert ingest.accept(json.dumps(event).encode(), "primary")
            if index < len(hostile):
                packet, _ = hostile[index]
                assert not ingest.accept(packet, "primary")
        for packet, _ in hostile[len(valid) :]:
            assert not ingest.accept(packet, "primary")
        assert ingest.accept(
            json.dumps({**valid[-1], "event_id": "v6", "seq": 6}).encode(), "primary"
        )
    finally:
        asyncio.run(ingest._http.aclose())
    seqs = [json.loads(value)["seq"] for _topic, value in kafka.produced]
    assert seqs == [1, 2, 3, 4, 5, 6]
    registry = ingest.metrics.registry
    for _packet, reason in hostile:
        assert registry.get_sample_value("gameday_ingest_rejected_total", {"reason": reason}) == 1
    rejected = {"feed": "primary", "outcome": "rejected"}
    assert registry.get_sample_value("gameday_ingest_packets_total", rejected) == len(hostile)


def test_a_bad_event_or_document_at_the_fallback_vendor_holds_back_nothing_else(
    tmp_path: Path,
) -> None:
    now = format_time(datetime.now(UTC))
    good = [
        {**GOOD, "event_id": f"f{seq}", "seq": seq, "occurred_at": now, "type": "yellow_card"}
        for seq in (1, 2, 3)
    ]

    def attributes(event: dict[str, Any]) -> str:
        return " ".join(f'{k}="{v}"' for k, v in event.items() if v is not None)

    document = (
        '<match id="gha-pan">'
        f"<event {attributes(good[0])}/>"
        f"<event {attributes({**good[0], 'event_id': 'b1', 'seq': 'one'})}/>"
        f"<event {attributes({**good[0], 'event_id': 'b2', 'type': 'corner'})}/>"
        "<goal/>"
        f"<event {attributes(good[1])}/>"
        f"<event {attributes({**good[0], 'event_id': 'b3', 'seq': '9' * 5000})}/>"
        f"<event {attributes(good[2])}/>"
        "</match>"
    )
    pages = {
        "/v1/matches.xml": '<matches><match id="bra-arg"/><match id="gha-pan"/></matches>',
        "/v1/matches/bra-arg.xml": "<match id='bra-arg'><event",  # not XML
        "/v1/matches/gha-pan.xml": document,
    }

    async def serve(request: web.Request) -> web.Response:
        return web.Response(text=pages[request.path], content_type="application/xml")

    async def scenario() -> tuple[Ingest, KafkaTwin]:
        app = web.Application()
        app.router.add_get("/{tail:.*}", serve)
        async with TestServer(app) as server:
            url = str(server.make_url("")).rstrip("/")
            config = IngestConfig(
                primary_url=url,
                secondary_url=url,
                kafka_bootstrap="127.0.0.1:1",
                topic="match-events",
                feed_topic="feed-status",
                metrics_port=0,
            )
            ingest, kafka = Ingest(config, metrics=Metrics()), KafkaTwin()
            ingest.kafka = kafka  # type: ignore[assignment]
            await ingest.poll_secondary()
            await ingest._http.aclose()
            return ingest, kafka

    ingest, kafka = asyncio.run(scenario())
    assert [json.loads(value)["event_id"] for _topic, value in kafka.produced] == ["f1", "f2", "f3"]
    registry = ingest.metrics.registry
    for reason, count in {"bad_seq": 2, "unknown_type": 1, "wrong_type": 1}.items():
        labels = {"reason": reason}
        assert registry.get_sample_value("gameday_ingest_rejected_total", labels) == count
    polls = {"result": "error"}  # the unreadable document is reported, not hidden
    assert registry.get_sample_value("gameday_fallback_polls_total", polls) == 1
