"""Rules into a running Prometheus: written where its config looks, then a reload."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx

from pipeline.deploy.errors import DeployError


async def load_rules(rules_dir: Path, prometheus: str, files: Mapping[str, str]) -> list[str]:
    """Write each rule file (name -> YAML) into `rules_dir`, replacing one of the same name,
    and reload Prometheus at `prometheus`; returns the rule groups it then has."""
    rules_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        if "/" in name or not name.endswith(".yml"):
            raise DeployError(f"rule file name {name!r} must be a plain NAME.yml")
        (rules_dir / name).write_text(text)
    async with httpx.AsyncClient(timeout=10) as client:
        reload = await client.post(f"{prometheus}/-/reload")
        if reload.status_code != 200:
            raise DeployError(f"Prometheus refused the new rules: {reload.text.strip()}")
        groups = (await client.get(f"{prometheus}/api/v1/rules")).json()["data"]["groups"]
    return [str(g["name"]) for g in groups]
