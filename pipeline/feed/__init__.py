"""Simulated data vendors: a primary JSON stream, a secondary polled XML document, a control.

Everything posted to the control goes out on the primary stream exactly as posted; valid
events are replayed by the primary and shown, late, by the secondary (DESIGN.md, "Match
events" and "Injecting"). Scripted matches play a whole game against the control.
"""

from pipeline.feed.config import FeedConfig
from pipeline.feed.script import (
    Clock,
    PlaybackError,
    Script,
    ScriptEntry,
    Stutter,
    SystemClock,
    available_scripts,
    load_script,
    parse_script,
    play,
)
from pipeline.feed.secondary import (
    match_xml,
    matches_xml,
    parse_match_xml,
    parse_matches_xml,
    read_match_xml,
)
from pipeline.feed.server import FeedServer
from pipeline.feed.vendor import FeedMetrics, Mode, PostResult, Rejected, Subscription, Vendor

__all__ = [
    "Clock",
    "FeedConfig",
    "FeedMetrics",
    "FeedServer",
    "Mode",
    "PlaybackError",
    "PostResult",
    "Rejected",
    "Script",
    "ScriptEntry",
    "Stutter",
    "Subscription",
    "SystemClock",
    "Vendor",
    "available_scripts",
    "load_script",
    "match_xml",
    "matches_xml",
    "parse_match_xml",
    "parse_matches_xml",
    "parse_script",
    "play",
    "read_match_xml",
]
