"""The secondary vendor: an XML document per match, polled, showing events after a delay.

Routes:
- `GET /v1/matches.xml`: `<matches><match id="gha-pan" home="GHA" away="PAN"/>...</matches>`
- `GET /v1/matches/{match_id}.xml`: `<match id home away generated_at><event .../>...</match>`
  with the valid events recorded at least `secondary_delay_s` ago, in seq order; an
  attribute whose value is None is left out. 404 for a match nobody posted to.
- `GET /healthz`.

`parse_match_xml()` and `parse_matches_xml()` read these documents back (defusedxml, every
event validated by `MatchEvent.parse`); the ingest fallback poller uses them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Final
from xml.etree import ElementTree as ET

from aiohttp import web
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from pipeline.auth import error
from pipeline.feed.control import healthz
from pipeline.feed.vendor import Vendor
from pipeline.model import MATCH_ID, InvalidEvent, MatchEvent, format_time, teams_of

XML_TYPE: Final = "application/xml"
INT_ATTRIBUTES: Final = frozenset({"seq", "minute"})
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot carry even escaped; they are replaced by U+FFFD."""
_DIGITS: Final = re.compile("[0-9]+")


def matches_xml(match_ids: Iterable[str]) -> bytes:
    """The list of matches this vendor covers."""
    root = ET.Element("matches")
    for match_id in match_ids:
        home, away = teams_of(match_id)
        ET.SubElement(root, "match", {"id": match_id, "home": home, "away": away})
    return _serialize(root)


def match_xml(match_id: str, events: Iterable[MatchEvent], generated_at: datetime) -> bytes:
    """One match's document. ElementTree escapes the attribute values."""
    home, away = teams_of(match_id)
    root = ET.Element(
        "match",
        {"id": match_id, "home": home, "away": away, "generated_at": format_time(generated_at)},
    )
    for event in events:
        attributes = {
            name: _NOT_XML.sub("\ufffd", str(value))
            for name, value in event.to_json().items()
            if value is not None and name != "match_id"
        }
        ET.SubElement(root, "event", attributes)
    return _serialize(root)


def _serialize(root: ET.Element) -> bytes:
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def _root(data: bytes, tag: str) -> ET.Element:
    """The document's root element, parsed without entities or DTDs; ValueError otherwise."""
    try:
        root = fromstring(data)
    except (ParseError, DefusedXmlException) as exc:
        raise ValueError(f"secondary XML is malformed: {exc}") from None
    if root.tag != tag:
        raise ValueError(f"secondary XML has root <{root.tag}>, expected <{tag}>")
    return root


def parse_matches_xml(data: bytes) -> list[str]:
    """The match ids of a `/v1/matches.xml` document."""
    ids = []
    for index, node in enumerate(_root(data, "matches")):
        match_id = node.get("id")
        if node.tag != "match" or not match_id or MATCH_ID.match(match_id) is None:
            raise ValueError(f"secondary XML: element {index} is not <match id='HOME-AWAY'/>")
        ids.append(match_id)
    return ids


def parse_match_xml(data: bytes) -> list[MatchEvent]:
    """The events of a `/v1/matches/{id}.xml` document, in document order, each validated.

    Raises ValueError (InvalidEvent for an event that does not validate) naming the problem.
    """
    out: list[MatchEvent] = []
    for item in read_match_xml(data):
        if isinstance(item, InvalidEvent):
            raise item
        out.append(item)
    return out


def read_match_xml(data: bytes) -> list[MatchEvent | InvalidEvent]:
    """Each event of a match document in document order, or why it is not a valid event:
    one bad event does not hide the good ones around it. Raises ValueError for a document
    that is not a match document at all."""
    root = _root(data, "match")
    match_id = root.get("id")
    if not match_id:
        raise ValueError("secondary XML: <match> has no id")
    out: list[MatchEvent | InvalidEvent] = []
    for index, node in enumerate(root):
        try:
            out.append(_event(match_id, index, node))
        except InvalidEvent as exc:
            out.append(exc)
    return out


def _event(match_id: str, index: int, node: ET.Element) -> MatchEvent:
    if node.tag != "event":
        raise InvalidEvent(
            "wrong_type", f"secondary XML: element {index} is <{node.tag}>, expected <event>"
        )
    fields: dict[str, object] = dict(node.attrib)
    if fields.setdefault("match_id", match_id) != match_id:
        raise InvalidEvent("wrong_match", f"secondary XML: event {index} names another match")
    for name in INT_ATTRIBUTES & fields.keys():
        text = str(fields[name])
        if _DIGITS.fullmatch(text) is None or len(text) > 16:
            raise InvalidEvent(
                f"bad_{name}", f"secondary XML: event {index} has {name}={text!r}, not an integer"
            )
        fields[name] = int(text)
    try:
        return MatchEvent.parse(fields)
    except InvalidEvent as exc:
        raise InvalidEvent(exc.reason, f"secondary XML: event {index}: {exc}") from None


class SecondaryApp:
    """Handlers of the secondary vendor: the shared record, seen `delay_s` late."""

    def __init__(self, vendor: Vendor, *, delay_s: float) -> None:
        self.vendor = vendor
        self.delay_s = delay_s

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/matches.xml", self.matches)
        app.router.add_get("/v1/matches/{match_id}.xml", self.match)
        app.router.add_get("/healthz", healthz)
        return app

    async def matches(self, _request: web.Request) -> web.Response:
        body = matches_xml(self.vendor.matches())
        return web.Response(body=body, content_type=XML_TYPE, charset="utf-8")

    async def match(self, request: web.Request) -> web.Response:
        match_id = request.match_info["match_id"]
        if not self.vendor.knows(match_id):
            return error(404, f"no match {match_id!r} at this vendor")
        events = self.vendor.events_older_than(match_id, self.delay_s)
        body = match_xml(match_id, events, self.vendor.utc_now())
        return web.Response(body=body, content_type=XML_TYPE, charset="utf-8")
