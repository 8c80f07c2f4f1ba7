"""Building the Grafana dashboards: valid, deterministic JSON on the metrics catalog only."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import (
    Dashboard,
    InvalidDashboard,
    Panel,
    Query,
    Row,
    UnknownLabel,
    UnknownMetric,
    all_dashboards,
    build,
    build_command,
)
from dashboards.metrics import THIRD_PARTY
from dashboards.promql import share_within
from pipeline.telemetry import CATALOG

UIDS = {"gameday-overview", "gameday-internals", "gameday-chaos"}
SLO_RULES = {
    "slo:sli_error:ratio_rate5m",
    "slo:sli_error:ratio_rate1h",
    "slo:error_budget:ratio",
    "slo:objective:ratio",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("dashboards")
    build(out)
    return {path.stem: json.loads(path.read_text()) for path in out.glob("*.json")}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def exprs(dashboard: dict[str, Any]) -> list[str]:
    found = [t["expr"] for p in panels(dashboard) for t in p["targets"]]
    return found + [a["expr"] for a in dashboard["annotations"]["list"]]


def test_build_writes_one_file_per_dashboard_named_by_its_stable_uid(tmp_path: Path) -> None:
    paths = build(tmp_path)

    names = sorted(str(p.relative_to(tmp_path)) for p in paths)
    assert names == [
        "gameday-chaos.json",
        "gameday-internals.json",
        "gameday-overview.json",
        "provisioning/dashboards/gameday.yaml",
        "provisioning/datasources/prometheus.yaml",
    ]
    titles = {
        json.loads(p.read_text())["uid"]: json.loads(p.read_text())["title"]
        for p in paths
        if p.suffix == ".json"
    }
    assert titles == {
        "gameday-overview": "gameday / overview",
        "gameday-internals": "gameday / pipeline internals",
        "gameday-chaos": "gameday / chaos",
    }


def test_every_dashboard_is_tagged_refreshes_every_5s_and_shows_30_minutes(
    built: dict[str, dict[str, Any]],
) -> None:
    assert set(built) == UIDS
    for uid, dashboard in built.items():
        assert dashboard["uid"] == uid
        assert dashboard["tags"] == ["gameday"]
        assert dashboard["refresh"] == "5s"
        assert dashboard["time"] == {"from": "now-30m", "to": "now"}


def test_every_panel_has_a_title_a_unit_a_description_and_the_prometheus_datasource(
    built: dict[str, dict[str, Any]],
) -> None:
    for dashboard in built.values():
        for panel in panels(dashboard):
            where = f"{dashboard['title']} / {panel['title']!r}"
            assert panel["title"].strip(), where
            assert len(panel["description"]) > 40, where
            assert panel["fieldConfig"]["defaults"]["unit"], where
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, where
            assert panel["targets"], where
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "prometheus", where
                assert target["expr"].strip(), where


def test_panels_fit_the_grid_without_overlapping(built: dict[str, dict[str, Any]]) -> None:
    for dashboard in built.values():
        taken: set[tuple[int, int]] = set()
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0
            assert grid["x"] + grid["w"] <= 24
            cells = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not cells & taken, f"{panel['title']} overlaps another panel"
            taken |= cells
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(set(ids)) == len(ids)


def test_region_variable_lists_the_regions_with_connections(
    built: dict[str, dict[str, Any]],
) -> None:
    for dashboard in built.values():
        (region,) = dashboard["templating"]["list"]
        assert region["name"] == "region"
        assert region["query"] == "label_values(gameday_sse_connections, region)"
        assert region["includeAll"] is True
        assert region["allValue"] == ".*"


def test_every_gameday_metric_referenced_is_in_the_catalog(
    built: dict[str, dict[str, Any]],
) -> None:
    """Read straight from the JSON with a regex, independently of the build's own parser."""
    series = {
        name
        for dashboard in built.values()
        for expr in exprs(dashboard)
        for name in re.findall(r"\bgameday_[a-z0-9_]+", expr)
    }
    assert series
    bases = {re.sub(r"_(bucket|count|sum)$", "", name) for name in series}
    missing = {base for base in bases if base not in CATALOG}
    assert not missing
    for name in series:
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        if base in CATALOG and name != base:
            assert CATALOG[base].kind == "histogram", name


def test_the_overview_reads_latency_by_region_and_event_type_and_the_slo_buckets(
    built: dict[str, dict[str, Any]],
) -> None:
    overview = "\n".join(exprs(built["gameday-overview"]))
    for q in ("0.5", "0.95", "0.99"):
        assert (
            f"histogram_quantile({q}, sum by (le, region) "
            '(rate(gameday_event_latency_seconds_bucket{region=~"$region"}[1m])))'
        ) in overview
        assert f"histogram_quantile({q}, sum by (le, event_type) " in overview
    assert 'le=~"1|1\\\\.0"' in overview  # the 1 s goal threshold, written either way
    assert 'le=~"3|3\\\\.0"' in overview


def test_slo_panels_appear_only_when_asked_for(tmp_path: Path) -> None:
    def rules(*, with_slo_rules: bool) -> set[str]:
        out = tmp_path / str(with_slo_rules)
        build(out, with_slo_rules=with_slo_rules)
        text = (out / "gameday-overview.json").read_text()
        return set(re.findall(r"slo:[a-z_]+:[a-z0-9_]+", text))

    assert rules(with_slo_rules=False) == set()
    assert rules(with_slo_rules=True) == SLO_RULES


def test_allowed_empty_queries_give_their_reason_in_the_panel_description(
    built: dict[str, dict[str, Any]],
) -> None:
    described = {p["title"]: p["description"] for d in built.values() for p in panels(d)}
    for dashboard in all_dashboards():
        for panel in dashboard.panels():
            for query in panel.queries:
                if query.allow_empty:
                    assert query.allow_empty in described[panel.title]


def test_json_targets_are_exactly_the_queries_check_evaluates(
    built: dict[str, dict[str, Any]],
) -> None:
    for dashboard in all_dashboards():
        in_json = {
            p["title"]: [t["expr"] for t in p["targets"]] for p in panels(built[dashboard.uid])
        }
        in_spec = {p.title: [q.expr for q in p.queries] for p in dashboard.panels()}
        assert in_json == in_spec


def test_the_same_input_gives_byte_identical_files_across_processes(tmp_path: Path) -> None:
    """Separate interpreters with different hash seeds: no set or dict order leaks out."""
    code = (
        "import sys; from pathlib import Path; from dashboards import build; "
        "build(Path(sys.argv[1]), with_slo_rules=True)"
    )
    trees = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        subprocess.run(
            [sys.executable, "-c", code, str(out)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        )
        trees.append({p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()})
    assert trees[0] == trees[1]
    assert len(trees[0]) == 5


def test_provisioning_declares_the_prometheus_datasource_and_a_file_provider(
    tmp_path: Path,
) -> None:
    build(tmp_path)
    datasources = yaml.safe_load(
        (tmp_path / "provisioning/datasources/prometheus.yaml").read_text()
    )
    providers = yaml.safe_load((tmp_path / "provisioning/dashboards/gameday.yaml").read_text())

    (source,) = datasources["datasources"]
    assert datasources["apiVersion"] == 1
    assert source["uid"] == "prometheus"
    assert source["type"] == "prometheus"
    assert source["name"] == "Prometheus"
    assert source["url"] == "http://prometheus:9090"
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def _one_panel(expr: str) -> Dashboard:
    panel = Panel(
        "Bogus", "A panel that reads something that does not exist.", "short", (Query(expr),)
    )
    return Dashboard("bogus", "bogus", "", (Row("r", (panel,)),))


@pytest.mark.parametrize(
    ("expr", "error", "message"),
    [
        ("sum(rate(gameday_goals_scored_total[1m]))", UnknownMetric, "gameday_goals_scored_total"),
        ("rate(gameday_sse_frame_total[1m])", UnknownMetric, "not in the metrics catalog"),
        ("histogram_quantile(0.9, gameday_event_latency_seconds)", UnknownMetric, "_bucket"),
        ("kafka_server_bytes_in_total", UnknownMetric, "THIRD_PARTY"),
        ('gameday_sse_connections{regoin="us-east"}', UnknownLabel, "regoin"),
        ("sum by (partition) (gameday_sse_connections)", UnknownLabel, "partition"),
    ],
)
def test_a_query_naming_anything_the_catalog_lacks_fails_the_build_and_writes_nothing(
    tmp_path: Path, expr: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)) as raised:
        build(tmp_path, dashboards=[*all_dashboards(), _one_panel(expr)])

    assert "bogus / Bogus" in str(raised.value)
    assert not any(tmp_path.iterdir())


def test_a_share_under_a_threshold_needs_a_bucket_exactly_there() -> None:
    with pytest.raises(InvalidDashboard, match=r"no bucket at 1\.2 s"):
        share_within("gameday_event_latency_seconds", 1.2)


def test_third_party_metrics_are_listed_by_exact_name() -> None:
    assert "up" in THIRD_PARTY
    assert all(not name.startswith("gameday_") for name in THIRD_PARTY)
    assert not any(name.endswith("*") for name in THIRD_PARTY)


def test_build_command_prints_the_files_and_exits_0(tmp_path: Path) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    assert build_command(tmp_path / "out", stdout=stdout, stderr=stderr) == 0
    assert len(stdout.getvalue().splitlines()) == 5
    assert "wrote 5 files" in stderr.getvalue()


def test_build_command_exits_2_when_the_output_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    stderr = io.StringIO()
    assert build_command(blocker, stdout=io.StringIO(), stderr=stderr) == 2
    assert f"cannot write to {blocker}" in stderr.getvalue()
