"""What CI and people read from an SLO report: report.json, junit.xml, summary.md, report.html."""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from slo.report import console_table, render_html, render_summary, write_report
from slo.results import Point, Series, SloReport, SloResult, Window

T0 = 1_796_396_400.0  # 2026-12-04 15:00:00 UTC
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert(1)</script>"
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def series(label: str, values: list[float], step_s: float = 10.0) -> Series:
    return Series(label, tuple(Point(T0 + i * step_s, v) for i, v in enumerate(values)))


def slo(name: str, **changes: object) -> SloResult:
    fields: dict[str, object] = {
        "name": name,
        "service": "gameday-pipeline",
        "description": f"{name} holds.",
        "objective": 0.99,
        "observed": 0.995,
        "budget_spent": 0.5,
        "status": "pass",
        "key": False,
        "events": 1200.0,
        "burn_rate": (series("5m", [0.2, 0.4, 0.5, 0.3]), series("1h", [0.3, 0.3, 0.4, 0.4])),
    }
    fields.update(changes)
    return SloResult(**fields)  # type: ignore[arg-type]


def report(slos: list[SloResult], **changes: object) -> SloReport:
    fields: dict[str, object] = {
        "run_id": "run-7",
        "started_at": "2026-12-04T15:00:00Z",
        "finished_at": "2026-12-04T15:10:00Z",
        "target": "local",
        "time_scale": 10.0,
        "prometheus": "http://127.0.0.1:9090",
        "range_s": 600.0,
        "slos": slos,
        "latency": (
            series("p50 us-east", [0.2, 0.25, 0.9, 0.3]),
            series("p99 eu-west", [0.7, 0.8, 4.2, 0.9]),
        ),
        "windows": (Window("redis-failover", T0 + 15, T0 + 25),),
    }
    fields.update(changes)
    return SloReport(**fields)  # type: ignore[arg-type]


def passing() -> SloReport:
    return report([slo("goal-latency", key=True), slo("card-latency", objective=0.95)])


def failing() -> SloReport:
    goal = slo(
        "goal-latency",
        description=f"Goals reach fans within 1 s. {HOSTILE}",
        observed=0.971,
        budget_spent=2.9,
        status="fail",
        key=True,
        events=1234.0,
        detail="eu-west p99 reached 4.2 s while redis-failover was injected",
        burn_rate=(series("5m", [0.5, 20.0, 18.0, 2.0]),),
    )
    stream = slo(
        "stream-availability",
        objective=0.9999,
        observed=0.99985,
        budget_spent=1.5,
        status="warning",
        events=98765.0,
        detail="burning budget at 1.5x",
        burn_rate=(series("5m", [0.1, 400.0, 300.0, 0.2]),),
    )
    return report([goal, stream, slo("card-latency")])


def no_data() -> SloReport:
    empty = slo("goal-latency", observed=None, budget_spent=None, events=0.0, burn_rate=())
    blank = slo(
        "card-latency", observed=None, budget_spent=None, events=0.0, burn_rate=(Series("5m", ()),)
    )
    return report([empty, blank], latency=(Series("p99 eu-west", ()),), windows=())


@pytest.fixture(autouse=True)
def every_plot_is_drawn(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A plot that fails becomes a placeholder in the report; in these tests none may fail."""
    with caplog.at_level(logging.ERROR, logger="slo.report"):
        yield
    failed = caplog.get_records("call")
    assert not failed, [r.getMessage() for r in failed]


def junit_cases(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    return {case.get("name", ""): case for case in root.iter("testcase")}


def pngs(html: str) -> list[bytes]:
    return [base64.b64decode(data, validate=True) for data in IMG.findall(html)]


def png_height(image: bytes) -> int:
    """Pixel height from the PNG header: placeholders are short strips, plots are tall."""
    return int.from_bytes(image[20:24], "big")


def test_write_report_writes_the_four_files_into_a_new_directory(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "slo"
    paths = write_report(passing(), out)
    assert paths == {
        "json": out / "report.json",
        "junit": out / "junit.xml",
        "markdown": out / "summary.md",
        "html": out / "report.html",
    }
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())


def test_report_json_round_trips_and_says_whether_the_run_passed(tmp_path: Path) -> None:
    for made, passed in ((passing(), True), (failing(), False)):
        paths = write_report(made, tmp_path / str(passed))
        text = paths["json"].read_text(encoding="utf-8")
        document = json.loads(text)
        assert document == made.to_json()
        assert document["passed"] is passed
        assert list(document) == list(made.to_json())  # field order kept, not sorted
        assert text.startswith('{\n  "run_id": "run-7"')


def test_junit_has_one_case_per_slo_and_fails_exactly_the_failed_ones(tmp_path: Path) -> None:
    paths = write_report(failing(), tmp_path)
    text = paths["junit"].read_text(encoding="utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    suite = ET.parse(paths["junit"]).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("name") == "gameday slo"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    assert suite.get("timestamp") == "2026-12-04T15:00:00"
    assert float(suite.get("time", "")) == 600.0

    cases = junit_cases(paths["junit"])
    assert list(cases) == ["goal-latency", "stream-availability", "card-latency"]
    assert {case.get("classname") for case in cases.values()} == {"slo.gameday-pipeline"}
    failed = {name for name, case in cases.items() if case.find("failure") is not None}
    assert failed == {"goal-latency"}

    failure = cases["goal-latency"].find("failure")
    assert failure is not None
    assert failure.get("type") == "SloFailed"
    assert failure.get("message") == "goal-latency: 97.10% good, objective 99.00% (key SLO)"
    body = failure.text or ""
    for expected in ("97.10%", "99.00%", "290.0%", "1,234", "redis-failover was injected"):
        assert expected in body
    assert HOSTILE in body  # ElementTree escaped it in the file and gave it back intact


def test_junit_warning_passes_but_says_why_and_no_data_is_skipped(tmp_path: Path) -> None:
    warned = junit_cases(write_report(failing(), tmp_path / "w")["junit"])["stream-availability"]
    assert warned.find("failure") is None
    out = warned.findtext("system-out") or ""
    assert "WARNING stream-availability" in out
    assert "burning budget at 1.5x" in out

    cases = junit_cases(write_report(no_data(), tmp_path / "n")["junit"])
    assert all(c.find("skipped") is not None and c.find("failure") is None for c in cases.values())


def test_summary_starts_with_the_verdict_and_tabulates_every_slo() -> None:
    lines = render_summary(failing()).splitlines()
    assert lines[0] == (
        "**FAIL**: 1 of 3 SLOs failed: goal-latency (key SLO); 1 warning: stream-availability"
    )
    rows = [line for line in lines if line.startswith("| ")]
    assert rows[0] == "| SLO | key | objective | observed | budget spent | events | status |"
    assert "| goal-latency | yes | 99.00% | 97.10% | 290.0% | 1,234 | FAIL |" in rows
    # A 99.99% objective gets a third decimal, so 99.985% is not shown as 99.99%.
    assert "| stream-availability | no | 99.990% | 99.985% | 150.0% | 98,765 | WARNING |" in rows
    assert "| card-latency | no | 99.00% | 99.50% | 50.0% | 1,200 | PASS |" in rows


def test_summary_explains_failures_and_warnings_without_live_html() -> None:
    text = render_summary(failing())
    assert "#### goal-latency: FAIL" in text
    assert "#### stream-availability: WARNING" in text
    assert "#### card-latency" not in text
    assert "eu-west p99 reached 4.2 s while redis-failover was injected" in text
    assert HOSTILE not in text
    assert "&lt;script&gt;" in text


def test_summary_of_a_passing_run_and_of_a_run_without_data() -> None:
    assert render_summary(passing()).splitlines()[0] == (
        "**PASS**: all 2 SLOs met their objectives"
    )
    text = render_summary(no_data())
    assert "| goal-latency | no | 99.00% | no data | n/a | 0 | PASS |" in text
    assert render_summary(report([])).splitlines()[0] == (
        "**FAIL**: no SLOs were evaluated, so none can be shown to hold"
    )


def test_console_table_lines_up_in_fixed_width_columns() -> None:
    lines = console_table(failing()).splitlines()
    header, rows, verdict = lines[0], lines[1:-1], lines[-1]
    assert header.split() == [
        "SLO",
        "key",
        "objective",
        "observed",
        "budget",
        "spent",
        "events",
        "status",
    ]
    status_column = header.index("status")
    assert [row[status_column:] for row in rows] == ["FAIL", "WARNING", "PASS"]
    assert [row.split()[0] for row in rows] == [
        "goal-latency",
        "stream-availability",
        "card-latency",
    ]
    assert verdict.startswith("FAIL: 1 of 3 SLOs failed: goal-latency (key SLO)")


def test_html_is_self_contained_with_a_table_and_a_plot_per_slo(tmp_path: Path) -> None:
    made = failing()
    html = write_report(made, tmp_path)["html"].read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert '<p class="verdict fail"><strong>FAIL</strong>' in html
    assert "<th>budget spent</th>" in html
    assert '<td class="num">97.10%</td>' in html
    images = pngs(html)
    assert len(images) >= 1 + len(made.slos)
    assert all(image.startswith(PNG_SIGNATURE) for image in images)
    assert "redis-failover" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_html_escapes_what_the_specs_and_faults_say(tmp_path: Path) -> None:
    made = failing()
    made.windows = (Window(f"{HOSTILE} & $x$ 🎉 \x1b[31m", T0 + 15, T0 + 25),)
    html = write_report(made, tmp_path)["html"].read_text(encoding="utf-8")
    assert HOSTILE not in html
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\x1b" not in html
    assert all(image.startswith(PNG_SIGNATURE) for image in pngs(html))


def test_a_report_without_data_still_renders_placeholders(tmp_path: Path) -> None:
    for made in (no_data(), report([], latency=(), windows=())):
        html = write_report(made, tmp_path / str(len(made.slos)))["html"].read_text(
            encoding="utf-8"
        )
        images = pngs(html)
        assert len(images) == 1 + len(made.slos)
        assert all(image.startswith(PNG_SIGNATURE) for image in images)
        assert all(png_height(image) < 200 for image in images)  # "no data" strips
    assert all(png_height(image) > 300 for image in pngs(render_html(failing())))


def test_latency_past_the_last_bucket_is_plotted_not_dropped() -> None:
    off_scale = report([], latency=(series("p99 eu-west", [math.inf, math.inf, math.nan]),))
    (image,) = pngs(render_html(off_scale))
    assert png_height(image) > 300


def test_values_that_are_not_numbers_never_reach_the_json(tmp_path: Path) -> None:
    odd = slo(
        "goal-latency",
        observed=math.nan,
        budget_spent=math.inf,
        status="fail",
        burn_rate=(series("5m", [math.nan, 2.0, math.inf, 1.0]),),
    )
    paths = write_report(report([odd]), tmp_path)
    document = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert document["slos"][0]["observed"] is None
    assert document["slos"][0]["budget_spent"] is None
    assert "no data" in render_summary(report([odd]))


def test_the_same_report_renders_the_same_files(tmp_path: Path) -> None:
    first = write_report(failing(), tmp_path / "a")
    second = write_report(failing(), tmp_path / "b")
    for kind in ("json", "junit", "markdown"):
        assert first[kind].read_bytes() == second[kind].read_bytes(), kind

    def text(path: Path) -> str:
        return IMG.sub("<img>", path.read_text(encoding="utf-8"))

    assert text(first["html"]) == text(second["html"])
