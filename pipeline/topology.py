"""Names the whole system agrees on: regions, the Redis master name, the Kafka topic, links."""

from __future__ import annotations

from typing import Final

REGIONS: Final = ("us-east", "eu-west", "ap-southeast")
"""The regions an SSE edge serves fans in."""

REDIS_MASTER_NAME: Final = "scores"
"""The name Sentinel monitors the score-state Redis under."""

REDIS_NODES: Final = ("redis-a", "redis-b")
"""The Redis servers. Roles move on failover, so they are named by letter, not by role."""

SENTINELS: Final = ("sentinel-1", "sentinel-2", "sentinel-3")

SCORE_TOPIC: Final = "match-events"
"""The Kafka topic holding every accepted match event, keyed by match_id."""

SCORE_TOPIC_PARTITIONS: Final = 3

FEED_TOPIC: Final = "feed-status"
"""Ingest's word on which vendor fans are served from (primary or fallback)."""

VENDOR_LINKS: Final = {
    "ingest.vendor-primary": "feed-primary",
    "ingest.vendor-secondary": "feed-secondary",
    "scorekeeper.vendor-primary": "feed-primary",
}
"""Toxiproxy links to the data vendors, by the port (service) they lead to."""


REDIS_CLIENTS: Final = ("scorekeeper", *REGIONS)
"""Who reaches Redis through its own Toxiproxy links: the writer, and each region's edges."""

CANARY_REGION: Final = "eu-west"
"""Where the canary edge (the new version a rollout tries on a share of fans) runs."""


def redis_link(client: str, node: str) -> str:
    """The Toxiproxy link `client` (the scorekeeper, or a region's edges) uses to reach
    Redis server `node`."""
    return f"{client}.{node}"


def redis_links() -> list[str]:
    return [redis_link(c, n) for c in REDIS_CLIENTS for n in REDIS_NODES]
