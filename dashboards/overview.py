"""gameday / overview: what fans get. Latency from the source to every fan, the SLO shares,
who is connected, and (once slo/ generates them) the burn rates and error budgets."""

from __future__ import annotations

from dashboards.model import Dashboard, Panel, Query, Row, Variable
from dashboards.promql import (
    CARDS_AND_SUBSTITUTIONS,
    GOALS,
    IN_REGION,
    RANGE,
    one_of,
    quantile,
    rate,
    share_within,
)

UID = "gameday-overview"
LATENCY = "gameday_event_latency_seconds"
REGION = Variable("region", "gameday_sse_connections", "region")
PERCENTILES = (0.5, 0.95, 0.99)


def _percentiles(by: str) -> tuple[Query, ...]:
    """p50, p95 and p99 of source -> fan latency over the last minute, per `by`."""
    return tuple(
        Query(
            quantile(q, LATENCY, by=(by,), where=(IN_REGION,)),
            legend=f"p{q * 100:g} {{{{{by}}}}}",
        )
        for q in PERCENTILES
    )


def latency_row() -> Row:
    return Row(
        "Source -> fan latency",
        (
            Panel(
                "Latency p50 / p95 / p99 by region",
                "Time from the vendor's occurred_at to the edge writing the update to its "
                "fans, over the last minute. Look for p99 above 2 s (the latency alert) or "
                "one region pulling away from the others (a slow Redis link or edge).",
                "s",
                _percentiles("region"),
                width=12,
            ),
            Panel(
                "Latency p50 / p95 / p99 by event type",
                "The same latency split by event type, over the last minute. Goals should "
                "stay under 1 s and cards and substitutions under 3 s; a type that is slow "
                "alone points at the events that produce it (VAR reviews, gap fills).",
                "s",
                _percentiles("event_type"),
                width=12,
            ),
            _share(
                "Goals delivered within 1 s",
                GOALS,
                1.0,
                "Share of goal, own goal and penalty goal updates that reached fans within "
                "1 s of the source, over the dashboard's time range, per region: the goal "
                "latency SLI. Below the objective means fans learnt of goals late.",
            ),
            _share(
                "Cards and substitutions within 3 s",
                CARDS_AND_SUBSTITUTIONS,
                3.0,
                "Share of yellow card, red card and substitution updates that reached fans "
                "within 3 s of the source, over the dashboard's time range, per region.",
            ),
        ),
    )


def _share(title: str, event_types: tuple[str, ...], threshold_s: float, text: str) -> Panel:
    expr = share_within(
        LATENCY,
        threshold_s,
        by=("region",),
        where=(one_of("event_type", event_types), IN_REGION),
        window=RANGE,
    )
    return Panel(
        title,
        text,
        "percentunit",
        (Query(expr, legend="{{region}}", instant=True),),
        kind="stat",
        width=12,
        height=5,
    )


def fans_row() -> Row:
    return Row(
        "Fans",
        (
            Panel(
                "SSE connections by region and version",
                "Open score streams per edge region and edge version. A sudden drop is fans "
                "being disconnected (see disconnects by reason); during a canary the new "
                "version's share should grow as planned and never fall to zero.",
                "short",
                (
                    Query(
                        f"sum by (region, version) (gameday_sse_connections{{{IN_REGION}}})",
                        legend="{{region}} {{version}}",
                    ),
                ),
                width=8,
            ),
            Panel(
                "Update frames per second by region",
                "Score updates written to fans per second (one per fan and update). It "
                "follows the match and the audience; a region at zero while others write "
                "means that edge stopped receiving updates from Redis.",
                "wps",
                (
                    Query(
                        rate("gameday_sse_frames_total", by=("region",), where=(IN_REGION,)),
                        legend="{{region}}",
                    ),
                ),
                width=8,
            ),
            Panel(
                "Disconnects by reason",
                "SSE streams closed per second, by why: client_closed is normal churn; "
                "slow_client means fans fell behind their buffer; shutdown an edge "
                "restarting; request_timeout clients that never sent a request.",
                "ops",
                (
                    Query(
                        rate(
                            "gameday_sse_disconnects_total",
                            by=("region", "reason"),
                            where=(IN_REGION,),
                        ),
                        legend="{{region}} {{reason}}",
                    ),
                ),
                width=8,
            ),
        ),
    )


def slo_row() -> Row:
    """Panels on the recording rules slo/ generates (Sloth's names and labels)."""
    per_slo = "{{sloth_service}} / {{sloth_slo}}"
    on_slo = "on (sloth_service, sloth_slo) group_left"  # per-region SLOs: many series each
    return Row(
        "SLO burn and error budget",
        (
            Panel(
                "Burn rate, 5 m and 1 h",
                "How fast each SLO spends its error budget: 1 spends exactly the budget "
                "over the SLO period. Both windows high (14.4 and more) is a fast burn "
                "that pages; only the 5 m one high is a blip that is already over.",
                "short",
                (
                    Query(
                        f"slo:sli_error:ratio_rate5m / {on_slo} slo:error_budget:ratio",
                        legend=f"{per_slo} 5m",
                    ),
                    Query(
                        f"slo:sli_error:ratio_rate1h / {on_slo} slo:error_budget:ratio",
                        legend=f"{per_slo} 1h",
                    ),
                ),
                width=12,
            ),
            Panel(
                "Error ratio (1 h) against the budget",
                "The share of bad events over the last hour next to the error budget "
                "(1 - objective). The error ratio staying above its budget line means the "
                "SLO will be missed if nothing changes.",
                "percentunit",
                (
                    Query("slo:sli_error:ratio_rate1h", legend=f"{per_slo} error ratio"),
                    Query("slo:error_budget:ratio", legend=f"{per_slo} budget"),
                ),
                width=8,
            ),
            Panel(
                "Objectives",
                "The objective of each SLO, as declared in slo/.",
                "percentunit",
                (Query("slo:objective:ratio", legend=per_slo, instant=True),),
                kind="stat",
                width=4,
            ),
        ),
    )


def dashboard(*, with_slo_rules: bool = False) -> Dashboard:
    rows = [latency_row(), fans_row()]
    if with_slo_rules:
        rows.append(slo_row())
    return Dashboard(
        uid=UID,
        title="gameday / overview",
        description="What fans get: latency from the source to every fan, SLO shares, "
        "connections and disconnects.",
        rows=tuple(rows),
        variables=(REGION,),
    )
