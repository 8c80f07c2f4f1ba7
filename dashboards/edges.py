"""Rows of the internals dashboard for the last hop (the edges) and the servers under all."""

from __future__ import annotations

from dashboards.model import Panel, Query, Row, ValueText
from dashboards.promql import IN_REGION, increase, rate

UP = (ValueText(0, "down", "red"), ValueText(1, "up", "green"))
ONLY_EDGE_GAPS = "only when an edge read an update before one it had not seen yet."


def edges_row() -> Row:
    return Row(
        "Edges",
        (
            Panel(
                "Updates read from Redis by outcome",
                "Updates each edge read from the Redis stream per second: new ones are "
                "delivered to fans, duplicate ones (seen already, e.g. re-read after a "
                "reconnect) are dropped. Every region should read the same new rate.",
                "ops",
                (
                    Query(
                        rate(
                            "gameday_edge_updates_total",
                            by=("region", "outcome"),
                            where=(IN_REGION,),
                        ),
                        "{{region}} {{outcome}}",
                    ),
                ),
                width=8,
            ),
            Panel(
                "Gap repairs at the edge per minute",
                "Missing updates an edge fetched from a match's stream in Redis because it "
                "read a later one first. Non-zero during Redis trouble; fans still get "
                "every seq in order.",
                "short",
                (
                    Query(
                        increase(
                            "gameday_edge_gap_repairs_total", by=("region",), where=(IN_REGION,)
                        ),
                        "{{region}}",
                        allow_empty=ONLY_EDGE_GAPS,
                    ),
                ),
                width=8,
            ),
            Panel(
                "Snapshot requests by result",
                "GET /v1/matches/{id} per second, by how it was answered: memory (the "
                "edge knew the state), redis (read once), coalesced (waited on a read "
                "already in flight). Mostly memory; a burst of redis is a cold edge.",
                "reqps",
                (
                    Query(
                        rate(
                            "gameday_snapshot_requests_total",
                            by=("region", "result"),
                            where=(IN_REGION,),
                        ),
                        "{{region}} {{result}}",
                    ),
                ),
                width=8,
            ),
            Panel(
                "Edge HTTP requests by route and status",
                "Requests per second to the edges by route and status code. 5xx or a "
                "rise in 4xx on the stream route is something fans notice.",
                "reqps",
                (
                    Query(
                        rate(
                            "gameday_http_requests_total",
                            by=("route", "status"),
                            where=(IN_REGION,),
                        ),
                        "{{route}} {{status}}",
                    ),
                ),
                width=24,
                height=6,
            ),
        ),
    )


def targets_up(*, width: int = 12) -> Panel:
    return Panel(
        "Scrape targets up",
        "Whether Prometheus could scrape each component (the job is the component). "
        "Red is a process that is down, paused or unreachable, and blind spots in every "
        "other panel for that component.",
        "none",
        (Query("min by (job) (up)", "{{job}}"),),
        kind="state_timeline",
        width=width,
        height=9,
        states=UP,
    )


def infrastructure_row() -> Row:
    toxiproxy = rate(
        "toxiproxy_proxy_received_bytes_total",
        by=("proxy", "direction"),
        where=('job="toxiproxy"',),
    )
    return Row(
        "Network links and scrape targets",
        (
            Panel(
                "Toxiproxy bytes per link, counted as connections close",
                "Bytes per second through each Toxiproxy link (vendor to reader, region's "
                "edge to each Redis); upstream is towards the server. Toxiproxy 2.12 adds "
                "a connection's bytes only when it closes, so long-lived connections (the "
                "edges' Redis reads, ingest's vendor stream) appear when a fault or a "
                "restart ends them: read a spike as connections on that link closing.",
                "Bps",
                (Query(toxiproxy, "{{proxy}} {{direction}}"),),
                width=12,
                height=9,
            ),
            targets_up(),
        ),
    )
