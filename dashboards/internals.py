"""gameday / pipeline internals: each hop from the vendor to the edges, and what it runs on."""

from __future__ import annotations

from dashboards.edges import edges_row, infrastructure_row
from dashboards.model import Dashboard, Panel, Query, Row, ValueText
from dashboards.overview import REGION
from dashboards.promql import IN_REGION, increase, quantile, rate

UID = "gameday-internals"

FEED_MODE = (ValueText(0, "primary", "green"), ValueText(1, "fallback", "orange"))
CONNECTED = (ValueText(0, "disconnected", "red"), ValueText(1, "connected", "green"))

ONLY_INVALID = "only after the vendor sent a packet that is not a valid match event."
ONLY_DUPLICATES = "only after the vendor re-sent an event that was already ingested."
ONLY_FALLBACK = "only once ingest has switched to the fallback vendor."
ONLY_GAPS = "only when a seq went missing between ingest and the scorekeeper."
ONLY_REDELIVERY = "only when Kafka redelivers an applied event or a match's buffer overflows."
ONLY_DRIFT = "corrections only when Redis drifted from what was applied (after a failover)."
ONLY_FAILOVER = "only after a Redis failover or a broken link to Redis."


def _p(q: float, histogram: str, legend: str) -> Query:
    return Query(quantile(q, histogram), legend=legend)


def feed_panel(title: str, metric: str, states: tuple[ValueText, ...], text: str) -> Panel:
    return Panel(
        title,
        text,
        "none",
        (Query(f"max({metric})", legend=title),),
        kind="state_timeline",
        width=8,
        height=5,
        states=states,
    )


def kafka_row() -> Row:
    bytes_in = rate(
        "kafka_server_brokertopicmetrics_count",
        by=("topic",),
        where=('job="kafka"', 'name="BytesInPerSec"', 'topic!=""'),
    )
    return Row(
        "Kafka",
        (
            Panel(
                "Consumer lag by partition",
                "Messages in the score topic the scorekeeper has not consumed yet. It "
                "should sit at zero between events; a partition that keeps growing means "
                "the scorekeeper is stuck (paused, or blocked on Redis).",
                "short",
                (Query("max by (partition) (gameday_kafka_consumer_lag)", "{{partition}}"),),
                width=8,
            ),
            Panel(
                "Produce latency p50 / p99 (acks=all)",
                "Ingest's produce to acknowledgement from every in-sync replica, over the "
                "last minute. Expect milliseconds; a climb means a slow broker or disk.",
                "s",
                (
                    _p(0.5, "gameday_kafka_produce_seconds", "p50"),
                    _p(0.99, "gameday_kafka_produce_seconds", "p99"),
                ),
                width=8,
            ),
            Panel(
                "Broker bytes in by topic",
                "Bytes per second the broker accepts, per topic (JMX BytesInPerSec). "
                "match-events follows the match; __consumer_offsets is offset commits.",
                "Bps",
                (Query(bytes_in, "{{topic}}"),),
                width=8,
            ),
        ),
    )


def ingest_row() -> Row:
    return Row(
        "Ingest and the vendors",
        (
            Panel(
                "Vendor packets by feed and outcome",
                "Packets read per second: accepted went to Kafka, duplicate was dropped by "
                "event_id, rejected was not a valid event. Accepted from the fallback feed "
                "means fans are being served from the slower vendor.",
                "ops",
                (
                    Query(
                        rate("gameday_ingest_packets_total", by=("feed", "outcome")),
                        "{{feed}} {{outcome}}",
                    ),
                ),
                width=8,
            ),
            Panel(
                "Rejected packets by reason",
                "Invalid packets per second, by what was wrong with them. Any rate here "
                "is a vendor sending garbage: look at the ingest log for the packet.",
                "ops",
                (
                    Query(
                        rate("gameday_ingest_rejected_total", by=("reason",)),
                        "{{reason}}",
                        allow_empty=ONLY_INVALID,
                    ),
                ),
                width=8,
            ),
            Panel(
                "Duplicates dropped",
                "Valid events dropped per second because their event_id was already "
                "ingested. Vendors re-send; fans must never see the same event twice.",
                "ops",
                (
                    Query(
                        rate("gameday_ingest_duplicates_dropped_total", by=("feed",)),
                        "{{feed}}",
                        allow_empty=ONLY_DUPLICATES,
                    ),
                ),
                width=8,
            ),
            feed_panel(
                "Feed mode",
                "gameday_feed_mode",
                FEED_MODE,
                "Which vendor fans are served from. Fallback (orange) starts when the "
                "primary stream is silent or cut; updates are then delayed and flagged.",
            ),
            feed_panel(
                "Primary stream connected",
                "gameday_feed_primary_connected",
                CONNECTED,
                "Whether ingest holds the primary vendor's stream open. Red while a "
                "network fault cuts the vendor link or the vendor is down.",
            ),
            Panel(
                "Seconds since the primary last sent anything",
                "Age of the last packet or heartbeat from the primary vendor. It should "
                "stay around the heartbeat (1 s); past the silence threshold ingest "
                "switches to the fallback vendor.",
                "s",
                (Query("max(gameday_feed_last_packet_age_seconds)", "age"),),
                height=5,
                width=8,
            ),
            Panel(
                "Fallback polls by result",
                "Polls of the secondary (XML) vendor per second while in fallback mode. "
                "Errors mean both vendors are unreachable: fans get no updates at all.",
                "ops",
                (
                    Query(
                        rate("gameday_fallback_polls_total", by=("result",)),
                        "{{result}}",
                        allow_empty=ONLY_FALLBACK,
                    ),
                ),
                width=24,
                height=6,
            ),
        ),
    )


def scorekeeper_row() -> Row:
    return Row(
        "Scorekeeper and Redis",
        (
            Panel(
                "Apply latency p50 / p99",
                "Writing one event to Redis and WAITing for the replica, over the last "
                "minute. A climb means a slow or lagging replica; during a failover the "
                "p99 jumps for a few seconds and must come back.",
                "s",
                (
                    _p(0.5, "gameday_scorekeeper_apply_seconds", "p50"),
                    _p(0.99, "gameday_scorekeeper_apply_seconds", "p99"),
                ),
                width=8,
            ),
            Panel(
                "Events applied by type",
                "Events applied to Redis per second, by event type. It follows the match.",
                "ops",
                (
                    Query(
                        rate("gameday_scorekeeper_applied_total", by=("event_type",)),
                        "{{event_type}}",
                    ),
                ),
                width=8,
            ),
            Panel(
                "Events not applied, by reason",
                "Events the scorekeeper skipped: stale or duplicate (already applied, "
                "e.g. redelivered after a restart) or overflow (too far ahead of a gap).",
                "ops",
                (
                    Query(
                        rate("gameday_scorekeeper_rejected_total", by=("reason",)),
                        "{{reason}}",
                        allow_empty=ONLY_REDELIVERY,
                    ),
                ),
                width=8,
            ),
            Panel(
                "Gap fills per minute by result",
                "Events fetched from the vendor's replay to fill a gap in a match's seqs "
                "(gap: noticed in the stream; reconcile: found by the reconciler).",
                "short",
                (
                    Query(
                        increase("gameday_scorekeeper_gap_fills_total", by=("result",)),
                        "{{result}}",
                        allow_empty=ONLY_GAPS,
                    ),
                ),
                width=8,
            ),
            Panel(
                "Reconciler passes and corrections per minute",
                "Reconciler passes per minute (ok or error) and the drift they repaired, by "
                "kind. Passes should tick steadily; corrections after a failover show "
                "writes Redis lost and the scorekeeper re-applied.",
                "short",
                (
                    Query(increase("gameday_reconcile_runs_total", by=("result",)), "{{result}}"),
                    Query(
                        increase("gameday_reconcile_corrections_total", by=("kind",)),
                        "{{kind}}",
                        allow_empty=ONLY_DRIFT,
                    ),
                ),
                width=8,
            ),
            Panel(
                "Redis failovers and edge reconnects per minute",
                "Master changes each service followed, and edge reconnects to Redis "
                "(master_changed=true when it moved to a new master). After a failover "
                "every service should show exactly one change.",
                "short",
                (
                    Query(
                        increase("gameday_redis_failovers_followed_total", by=("service",)),
                        "followed {{service}}",
                        allow_empty=ONLY_FAILOVER,
                    ),
                    Query(
                        increase(
                            "gameday_edge_redis_reconnects_total",
                            by=("region", "master_changed"),
                            where=(IN_REGION,),
                        ),
                        "reconnect {{region}} master_changed={{master_changed}}",
                        allow_empty=ONLY_FAILOVER,
                    ),
                ),
                width=8,
            ),
        ),
    )


def dashboard() -> Dashboard:
    return Dashboard(
        uid=UID,
        title="gameday / pipeline internals",
        description="Each hop from the vendor to the edges (ingest, Kafka, scorekeeper, "
        "Redis, edges) and the servers under them.",
        rows=(kafka_row(), ingest_row(), scorekeeper_row(), edges_row(), infrastructure_row()),
        variables=(REGION,),
    )
