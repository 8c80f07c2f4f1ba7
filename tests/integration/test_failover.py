"""A Redis failover during a played match: every fan still gets every update, once, in
order, and the recovery time is measured."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from support import token, until

from chaos.delivery import check_delivery
from chaos.fans import Fan, watch
from chaos.faults import Fault, RedisFailover, ServiceDown, injected, master_address
from pipeline.deploy import LocalDeployment
from pipeline.feed.script import load_script, play
from pipeline.topology import REDIS_NODES


def _master_service(endpoints: dict[str, Any], stack_dir: Path) -> str:
    address = asyncio.run(master_address(list(endpoints["redis_sentinels"]), "scores"))
    ports = json.loads((stack_dir / "state.json").read_text())["ports"]
    return next(node for node in REDIS_NODES if address.endswith(f":{ports[node]}"))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["sentinel failover", "master killed"])
def test_a_redis_failover_during_a_match_loses_duplicates_and_reorders_nothing(
    endpoints: dict[str, Any],
    stack_dir: Path,
    how: str,
) -> None:
    match_id = f"gha-pan-{uuid.uuid4().hex[:8]}"
    script = replace(load_script("gha-pan"), match_id=match_id)
    fans = [
        Fan(url, match_id, region=region, fan_id=f"{region}-{i}")
        for region, url in endpoints["edges"].items()
        for i in range(2)
    ]
    fault: Fault
    if how == "sentinel failover":
        fault = RedisFailover(list(endpoints["redis_sentinels"]), endpoints["redis_master_name"])
    else:
        fault = ServiceDown(
            LocalDeployment(run_dir=stack_dir), _master_service(endpoints, stack_dir)
        )

    async def scenario() -> tuple[list[Any], Any]:
        stop = asyncio.Event()
        watching = asyncio.create_task(watch(fans, stop))
        await until(lambda: all(f.connected.is_set() for f in fans), 10, "fans to connect")
        playing = asyncio.create_task(
            play(script, control_url=endpoints["feed_control"], token=token(endpoints), speed=400)
        )
        await until(
            lambda: all((f.history.last_seq or 0) >= 8 for f in fans),
            30,
            "the first third of the match",
        )
        async with injected(fault) as record:
            if how == "master killed":  # Sentinel notices (1 s) and elects a new master
                await until(
                    lambda: all(
                        f.history.last_seq == (fans[0].history.last_seq or 0) for f in fans
                    ),
                    5,
                    "fans to settle",
                )
                await asyncio.sleep(4)
        source = await playing
        await until(
            lambda: all(f.history.last_seq == source[-1].seq for f in fans),
            45,
            "every fan to get the final whistle after the failover",
        )
        stop.set()
        return await watching, (source, record)

    histories, (source, record) = asyncio.run(scenario())

    if isinstance(fault, RedisFailover):
        assert fault.moved_to != fault.moved_from
    report = check_delivery(histories, source)
    assert (report.lost, report.duplicated, report.out_of_order, report.final_mismatches) == (
        0,
        0,
        0,
        0,
    ), report.failures
    injected_at = datetime.fromisoformat(record.injected_at.replace("Z", "+00:00"))
    recovery = []
    for history in histories:
        before = [r.received_at for r in history.receipts if r.received_at <= injected_at]
        after = [r.received_at for r in history.receipts if r.received_at > injected_at]
        assert before
        assert after
        recovery.append((after[0] - before[-1]).total_seconds())
    print(f"recovery (last update before the failover -> first after): max {max(recovery):.2f}s")
