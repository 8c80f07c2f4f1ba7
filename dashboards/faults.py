"""gameday / chaos: fault windows over what fans get, so each fault's effect lines up in time."""

from __future__ import annotations

from dashboards.edges import targets_up
from dashboards.internals import FEED_MODE
from dashboards.model import Annotation, Dashboard, Panel, Query, Row
from dashboards.overview import LATENCY, REGION
from dashboards.promql import IN_REGION, quantile

UID = "gameday-chaos"

NO_FAULT = "no fault is being injected (the chaos runner exposes gameday_fault_active)."
NO_ALERT = "no alert fires on a healthy stack."

FAULTS = Annotation(
    name="Faults",
    expr="max by (fault, kind) (gameday_fault_active) > 0",
    title_format="{{fault}}",
    text_format="{{kind}} fault injected",
    tag_keys=("fault", "kind"),
    color="red",
    allow_empty=NO_FAULT,
)


def alerts_row() -> Row:
    return Row(
        "Alerts",
        (
            Panel(
                "Alerts firing over time",
                "Each alert while it fires, with how many of its series fire. Compare "
                "with the red fault windows: the right alert should start within its "
                "`for` of a fault and stop after the revert.",
                "short",
                (
                    Query(
                        'sum by (alertname) (ALERTS{alertstate="firing"})',
                        "{{alertname}}",
                        allow_empty=NO_ALERT,
                    ),
                ),
                kind="state_timeline",
                width=14,
            ),
            Panel(
                "Alerts firing now",
                "Every firing alert with all its labels (region, service, severity...).",
                "short",
                (
                    Query(
                        'ALERTS{alertstate="firing"}',
                        instant=True,
                        table=True,
                        allow_empty=NO_ALERT,
                    ),
                ),
                kind="table",
                width=10,
            ),
        ),
    )


def effects_row() -> Row:
    return Row(
        "What fans get during faults",
        (
            Panel(
                "Latency p99 by region",
                "Source to fan p99 over the last minute, per region. Region skew shows as "
                "one region rising alone; a Redis failover as a short spike everywhere.",
                "s",
                (
                    Query(
                        quantile(0.99, LATENCY, by=("region",), where=(IN_REGION,)),
                        "{{region}}",
                    ),
                ),
                width=12,
            ),
            Panel(
                "Feed mode",
                "Which vendor fans are served from: fallback (orange) during a primary "
                "feed fault, back to primary (green) once it is reverted.",
                "none",
                (Query("max(gameday_feed_mode)", "feed"),),
                kind="state_timeline",
                width=12,
                states=FEED_MODE,
            ),
            Panel(
                "SSE connections by region",
                "Fans connected per region. Faults should not disconnect fans; a dip that "
                "recovers is fans reconnecting with Last-Event-ID.",
                "short",
                (
                    Query(
                        f"sum by (region) (gameday_sse_connections{{{IN_REGION}}})",
                        "{{region}}",
                    ),
                ),
                width=12,
            ),
            Panel(
                "Kafka consumer lag",
                "Messages waiting for the scorekeeper, all partitions together. It grows "
                "while the scorekeeper is paused or blocked on Redis and must drain after.",
                "short",
                (Query("sum(gameday_kafka_consumer_lag)", "lag"),),
                width=12,
            ),
            targets_up(width=24),
        ),
    )


def rollout_row() -> Row:
    return Row(
        "Rollout",
        (
            Panel(
                "Canary share",
                "The share of the canary region's new fans the rollout controller sends to "
                "the canary edge. A drop to 0 during a drill is a rollback.",
                "percentunit",
                (Query("max(gameday_rollout_canary_share)", "canary share"),),
                width=8,
            ),
            Panel(
                "Rollout decisions",
                "What the rollout controller decided, and the alert behind it: rollback, "
                "drain, fallback, or rollback_disabled when configuration forbids acting.",
                "short",
                (
                    Query(
                        "sum by (decision, reason) "
                        "(increase(gameday_rollout_decisions_total[5m])) > 0",
                        "{{decision}} ({{reason}})",
                        allow_empty="no rollout decision in the last 5 minutes.",
                    ),
                ),
                width=8,
            ),
            Panel(
                "SSE connections by edge version",
                "Fans on the stable edges and on the canary. After a rollback the canary "
                "has none: its fans resumed on stable with Last-Event-ID.",
                "short",
                (Query("sum by (version) (gameday_sse_connections)", "{{version}}"),),
                width=8,
            ),
        ),
    )


def dashboard() -> Dashboard:
    return Dashboard(
        uid=UID,
        title="gameday / chaos",
        description="Fault windows (red) and firing alerts over latency, feed mode, "
        "connections and lag: what each fault did to fans, and whether the alerts saw it.",
        rows=(alerts_row(), effects_row(), rollout_row()),
        variables=(REGION,),
        annotations=(FAULTS,),
    )
