"""Finds the third-party servers that infra/setup.sh installed, through its tools.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline import env
from pipeline.deploy.errors import ToolMissing


@dataclass(frozen=True, kw_only=True)
class Tools:
    java: Path
    kafka_version: str
    kafka_libs: Path
    jmx_agent: Path
    toxiproxy_version: str
    toxiproxy_server: Path
    redis_version: str
    redis_server: Path
    redis_sentinel: Path
    prometheus_version: str
    prometheus: Path
    promtool: Path
    alertmanager_version: str
    alertmanager: Path
    chromium: Path

    @classmethod
    def load(cls, cache_dir: Path | None = None) -> Tools:
        manifest = (cache_dir or env.cache_dir()) / "tools.json"
        try:
            raw = json.loads(manifest.read_text())
        except FileNotFoundError:
            raise ToolMissing(f"{manifest} does not exist: run `make install` first") from None
        except json.JSONDecodeError as exc:
            raise ToolMissing(f"{manifest} is not valid JSON ({exc}): run `make install`") from None
        fields = set(cls.__dataclass_fields__)
        missing = sorted(fields - raw.keys())
        if missing:
            raise ToolMissing(f"{manifest} lacks {', '.join(missing)}: run `make install`")
        values = {
            k: Path(v) if not k.endswith("_version") else str(v)
            for k, v in raw.items()
            if k in fields
        }
        tools = cls(**values)  # type: ignore[arg-type]
        tools.verify()
        return tools

    def verify(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, Path) and not value.exists():
                raise ToolMissing(f"{name} is not at {value}: run `make install`")
