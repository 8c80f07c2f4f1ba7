"""Checking dashboards against Prometheus, with an in-memory twin of its query API.

The real Prometheus is in tests/integration/test_dashboards_live.py; here the twin pins
down how answers become results: variables substituted, statuses, allowed-empty.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from dashboards import (
    Dashboard,
    Panel,
    PrometheusUnavailable,
    Query,
    Row,
    Variable,
    check,
    check_command,
    render_table,
)
from dashboards.check import substitute, variables
from dashboards.metrics import references

Answer = Callable[[str], tuple[int, dict[str, Any]]]


def vector(*labels: dict[str, str], value: str = "1") -> tuple[int, dict[str, Any]]:
    result = [{"metric": m, "value": [0, value]} for m in labels]
    return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}


def twin(answer: Answer, seen: list[str] | None = None) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/status/buildinfo":
            return httpx.Response(200, json={"status": "success", "data": {}})
        assert request.url.path == "/api/v1/query"
        query = parse_qs(request.content.decode())["query"][0]
        if seen is not None:
            seen.append(query)
        status, body = answer(query)
        return httpx.Response(status, json=body)

    return httpx.Client(transport=httpx.MockTransport(handle))


def dashboard(*queries: Query) -> Dashboard:
    panel = Panel("Frames", "Frames written to fans per second.", "wps", queries)
    return Dashboard(
        "d",
        "dash",
        "",
        (Row("row", (panel,)),),
        (Variable("region", "gameday_sse_connections", "region"),),
    )


def test_grafana_variables_become_what_they_stand_for_at_a_30_minute_range() -> None:
    values = variables(dashboard(Query("up")))
    expr = (
        'rate(x{region=~"$region"}[$__rate_interval]) + y{r=~"${region}"} + z[$__range]'
        " + [[region]]"
    )
    assert substitute(expr, values) == 'rate(x{region=~".*"}[1m]) + y{r=~".*"} + z[30m] + .*'
    with pytest.raises(KeyError, match="nope"):
        substitute("x{a=~'$nope'}", values)


def test_each_target_is_ok_empty_or_error_and_only_allowed_empties_pass() -> None:
    def answer(query: str) -> tuple[int, dict[str, Any]]:
        if query.startswith("group by"):
            return vector({"region": "us-east"})
        if "frames" in query:
            return vector({"region": "us-east"}, {"region": "eu-west"})
        if "broken" in query:
            return 400, {"status": "error", "errorType": "bad_data", "error": "parse error"}
        return vector()

    board = dashboard(
        Query(
            'sum by (region) (rate(gameday_sse_frames_total{region=~"$region"}[$__rate_interval]))'
        ),
        Query("gameday_ingest_rejected_total", allow_empty="only with invalid packets."),
        Query("gameday_ingest_duplicates_dropped_total"),
        Query("broken(", allow_empty="errors still fail"),
        Query("x{region=~'$continent'}"),
    )
    seen: list[str] = []
    results = check("http://prometheus.test", [board], client=twin(answer, seen))

    assert [(r.panel, r.status, r.failed) for r in results] == [
        ("variable $region", "ok", False),
        ("Frames", "ok", False),
        ("Frames", "empty", False),
        ("Frames", "empty", True),
        ("Frames", "error", True),
        ("Frames", "error", True),
    ]
    assert results[1].detail == "2 series"
    assert results[2].detail == "no series; allowed: only with invalid packets."
    assert results[4].detail == "bad_data: parse error"
    assert results[5].detail == "unknown template variable $continent"
    assert results[1].expr.endswith("[$__rate_interval]))")  # reported as written
    assert seen[1] == 'sum by (region) (rate(gameday_sse_frames_total{region=~".*"}[1m]))'
    assert len(seen) == 5  # the unknown variable never reached Prometheus


def test_nan_results_are_ok_and_say_so() -> None:
    client = twin(lambda _q: vector({"region": "a"}, {"region": "b"}, value="NaN"))
    (_, result) = check("http://p.test", [dashboard(Query("up"))], client=client)
    assert result.status == "ok"
    assert result.detail == "2 series, 2 NaN (no samples in the window)"


def test_a_prometheus_that_cannot_be_reached_raises_with_what_to_do() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    with pytest.raises(PrometheusUnavailable, match=r"cannot reach Prometheus.*gameday up"):
        check("http://127.0.0.1:9", [dashboard(Query("up"))], client=client)


def test_something_that_is_not_prometheus_is_refused() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda _r: httpx.Response(404)))
    with pytest.raises(PrometheusUnavailable, match="HTTP 404"):
        check("http://example.test", [dashboard(Query("up"))], client=client)


def test_check_command_exits_2_with_a_clear_message_when_prometheus_is_down() -> None:
    stderr = io.StringIO()
    code = check_command(
        "http://127.0.0.1:9", json_output=True, stdout=io.StringIO(), stderr=stderr
    )
    assert code == 2
    assert "cannot reach Prometheus at http://127.0.0.1:9" in stderr.getvalue()


def test_the_table_shows_failures_with_their_query_and_a_summary() -> None:
    def answer(query: str) -> tuple[int, dict[str, Any]]:
        return vector({"a": "b"}) if query.startswith("group") else vector()

    board = dashboard(Query("gameday_sse_frames_total"), Query("up", allow_empty="why"))
    table = render_table(check("http://p.test", [board], client=twin(answer)))

    lines = table.splitlines()
    assert lines[0].split() == ["STATUS", "DASHBOARD", "PANEL", "DETAIL"]
    assert lines[2].startswith("EMPTY ")
    assert lines[3].strip() == "query: gameday_sse_frames_total"
    assert lines[4].startswith("empty*")
    assert lines[-1] == "3 targets: 1 ok, 2 empty (1 allowed, marked *), 0 error: 1 failed"
    json.dumps([r.to_json() for r in check("http://p.test", [board], client=twin(answer))])


@pytest.mark.parametrize(
    ("expr", "metrics", "grouping"),
    [
        (
            'histogram_quantile(0.99, sum by (le, region) (rate(m_bucket{region=~"$r"}[1m])))',
            [("m_bucket", ("region",))],
            ("le", "region"),
        ),
        ("a / on (x, y) group_left b", [("a", ()), ("b", ())], ("x", "y")),
        ('sum(x{a="1", b!~"2,3"}) without (c) or vector(0)', [("x", ("a", "b"))], ("c",)),
        ("max by (job) (up) > bool 0.5e3", [("up", ())], ("job",)),
        ("slo:sli_error:ratio_rate5m", [("slo:sli_error:ratio_rate5m", ())], ()),
    ],
)
def test_references_find_metrics_their_selected_labels_and_grouping(
    expr: str, metrics: list[tuple[str, tuple[str, ...]]], grouping: tuple[str, ...]
) -> None:
    refs = references(expr)
    assert [(s.metric, s.labels) for s in refs.selectors] == metrics
    assert refs.grouping == grouping
