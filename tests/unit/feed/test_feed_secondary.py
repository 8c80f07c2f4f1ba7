"""The secondary vendor's XML: late by its delay, well escaped, and readable back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from defusedxml.ElementTree import fromstring

from pipeline.feed import (
    FeedConfig,
    FeedServer,
    Vendor,
    match_xml,
    parse_match_xml,
    parse_matches_xml,
)
from pipeline.model import MatchEvent

AUTH = {"Authorization": "Bearer s3cret-token"}
OCCURRED = datetime.now(UTC) - timedelta(minutes=2)


def event(seq: int, **fields: Any) -> dict[str, Any]:
    document = {
        "event_id": f"ev-{seq}",
        "match_id": "gha-pan",
        "seq": seq,
        "type": "goal",
        "team": "GHA",
        "player": "A. Semenyo",
        "minute": 88,
        "occurred_at": (OCCURRED + timedelta(seconds=seq)).isoformat(),
    }
    return {**document, **fields}


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with http.get(url) as reply:
        return reply.status, await reply.read()


def test_events_show_only_after_the_delay_and_round_trip(
    make_config: Callable[..., FeedConfig],
) -> None:
    now = [1000.0]
    vendor = Vendor(clock=lambda: now[0])
    posted = [
        event(1, type="kickoff", team=None, player=None, minute=0),
        event(2, player="<script>&\"'</script> Ñandú ⚽"),
        event(3, type="var_review", team=None, player=None, ref_event_id="ev-2"),
    ]

    async def scenario() -> None:
        config = make_config(secondary_delay_s=3.0)
        async with FeedServer(config, vendor=vendor) as server, aiohttp.ClientSession() as http:
            control, secondary = server.url("control"), server.url("secondary")
            reply = await http.post(
                f"{control}/v1/matches/gha-pan/events", json=posted[:2], headers=AUTH
            )
            assert reply.status == 202
            now[0] += 2.0
            await http.post(f"{control}/v1/matches/gha-pan/events", json=posted[2], headers=AUTH)
            status, body = await _get(http, f"{secondary}/v1/matches/gha-pan.xml")
            assert status == 200
            assert parse_match_xml(body) == []
            now[0] += 1.0
            _, body = await _get(http, f"{secondary}/v1/matches/gha-pan.xml")
            assert parse_match_xml(body) == [MatchEvent.parse(p) for p in posted[:2]]
            now[0] += 2.0
            _, body = await _get(http, f"{secondary}/v1/matches/gha-pan.xml")
            assert parse_match_xml(body) == [MatchEvent.parse(p) for p in posted]
            assert b"&lt;script&gt;&amp;&quot;" in body
            kickoff = fromstring(body).find("event")
            assert kickoff is not None
            assert sorted(kickoff.attrib) == ["event_id", "minute", "occurred_at", "seq", "type"]
            _, listing = await _get(http, f"{secondary}/v1/matches.xml")
            assert parse_matches_xml(listing) == ["gha-pan"]
            assert b'home="GHA" away="PAN"' in listing
            status, _ = await _get(http, f"{secondary}/v1/matches/bra-arg.xml")
            assert status == 404

    asyncio.run(scenario())


def test_a_document_carries_match_teams_and_generation_time() -> None:
    generated = datetime(2026, 12, 4, 15, 2, 11, 123000, tzinfo=UTC)
    body = match_xml("gha-pan", [MatchEvent.parse(event(1))], generated)
    assert (
        b'<match id="gha-pan" home="GHA" away="PAN" generated_at="2026-12-04T15:02:11.123Z">'
        in body
    )
    assert b"ref_event_id" not in body  # None values are left out


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b"<match id='gha-pan'><event", "malformed"),
        (b"<matches/>", "expected <match>"),
        (b"<match/>", "no id"),
        (b"<match id='gha-pan'><goal/></match>", "expected <event>"),
        (
            b'<!DOCTYPE m [<!ENTITY a "aaaa">]><match id="gha-pan">&a;</match>',
            "malformed",
        ),
    ],
)
def test_malformed_documents_raise_value_error_naming_the_problem(
    document: bytes, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_match_xml(document)


def test_an_event_that_does_not_validate_is_named_by_its_position() -> None:
    good = MatchEvent.parse(event(1))
    attrs = " ".join(f'{k}="{v}"' for k, v in good.to_json().items() if v and k != "match_id")
    bad_seq = attrs.replace('seq="1"', 'seq="one"')
    bad_type = attrs.replace('type="goal"', 'type="corner"')
    with pytest.raises(ValueError, match="event 1 has seq='one'"):
        parse_match_xml(f'<match id="gha-pan"><event {attrs}/><event {bad_seq}/></match>'.encode())
    with pytest.raises(ValueError, match="event 0: type 'corner'"):
        parse_match_xml(f'<match id="gha-pan"><event {bad_type}/></match>'.encode())


def test_match_list_rejects_entries_without_a_match_id() -> None:
    assert parse_matches_xml(b"<matches/>") == []
    with pytest.raises(ValueError, match="element 0"):
        parse_matches_xml(b"<matches><match/></matches>")
    with pytest.raises(ValueError, match="element 0"):
        parse_matches_xml(b'<matches><match id="Not A Match"/></matches>')
