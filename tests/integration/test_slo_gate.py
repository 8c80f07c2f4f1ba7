"""A CI-style run: the SLO report passes on the healthy pipeline and fails, naming the SLO,
once latency is injected on the regions' links to Redis."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

from support import gameday, token, until

from chaos.fans import Fan, watch
from pipeline.deploy import Toxiproxy
from pipeline.feed.script import load_script, play
from pipeline.topology import REDIS_NODES, REGIONS, redis_link

SPEED = 1500.0


async def _play_to_fans(endpoints: dict[str, Any]) -> None:
    match_id = f"gha-pan-{uuid.uuid4().hex[:8]}"
    fans = [Fan(url, match_id) for url in endpoints["edges"].values()]
    stop = asyncio.Event()
    watching = asyncio.create_task(watch(fans, stop))
    await until(lambda: all(f.connected.is_set() for f in fans), 10, "fans to connect")
    script = replace(load_script("gha-pan"), match_id=match_id)
    sent = await play(
        script, control_url=endpoints["feed_control"], token=token(endpoints), speed=SPEED
    )
    await until(
        lambda: all(f.history.last_seq == sent[-1].seq for f in fans),
        30,
        "every fan to get the final whistle",
    )
    stop.set()
    await watching


def _report(stack_dir: Path, out: Path, started: float) -> tuple[int, dict[str, Any], ET.Element]:
    time.sleep(2.5)  # the last observations are scraped (every second) before judging
    # From just before the run: a counter's first increase needs the sample before it.
    since = f"{math.ceil(time.time() - started) + 2}s"
    result = gameday("slo", "report", "--since", since, "--out", str(out), run_dir=stack_dir)
    assert result.returncode in (0, 1), result.stderr
    report = json.loads((out / "report.json").read_text())
    return result.returncode, report, ET.parse(out / "junit.xml").getroot()


def test_the_slo_report_passes_on_the_healthy_pipeline(
    endpoints: dict[str, Any],
    stack_dir: Path,
    tmp_path: Path,
) -> None:
    time.sleep(4)  # nothing from earlier tests inside the judged range
    started = time.time()
    asyncio.run(_play_to_fans(endpoints))

    code, report, junit = _report(stack_dir, tmp_path / "healthy", started)

    slos = {s["name"]: s for s in report["slos"]}
    assert slos["goal-latency"]["status"] == "pass", slos["goal-latency"]
    assert slos["goal-latency"]["events"] > 0
    assert code == 0, report
    assert report["passed"] is True
    assert junit.findall(".//failure") == []
    assert len(junit.findall(".//testcase")) == len(report["slos"])
    for name in ("summary.md", "report.html"):
        assert (tmp_path / "healthy" / name).stat().st_size > 0


def test_the_slo_report_fails_naming_the_slo_once_latency_is_injected(
    endpoints: dict[str, Any],
    stack_dir: Path,
    tmp_path: Path,
) -> None:
    links = [redis_link(region, node) for region in REGIONS for node in REDIS_NODES]

    async def inject(on: bool) -> None:
        async with Toxiproxy(endpoints["toxiproxy_api"]) as tp:
            for link in links:
                if on:
                    await tp.add_toxic(link, "latency", name="slo-test", latency=1500)
                else:
                    await tp.remove_toxic(link, "slo-test")

    time.sleep(4)
    started = time.time()
    asyncio.run(inject(True))
    try:
        asyncio.run(_play_to_fans(endpoints))
    finally:
        asyncio.run(inject(False))

    code, report, junit = _report(stack_dir, tmp_path / "slow", started)

    assert code == 1
    assert report["passed"] is False
    failures = {case.get("name"): case.find("failure") for case in junit.iter("testcase")}
    assert failures["goal-latency"] is not None
    assert "goal-latency" in (failures["goal-latency"].get("message") or "")
    assert {s["name"]: s["status"] for s in report["slos"]}["goal-latency"] == "fail"
