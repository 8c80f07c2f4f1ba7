"""Settings a stack's pipeline runs with: `gameday up --set SERVICE.FIELD=VALUE`.

A setting overrides one field of a service's config (`pipeline/<service>.py`'s config
dataclass) for the whole life of the stack, e.g. `edge.replay_enabled=false` to prove a
drill catches what Last-Event-ID replay guards, or `control.canary_share=0.2`. SERVICE
is a config name (`ingest`, `scorekeeper`, `control`, `edge-eu-west`, `edge-canary`) or
`edge` for every edge. Values are JSON (`false`, `0.5`, `"text"`); a bare word is a string.
Every key and value is checked against the config's types before anything restarts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from pipeline.config import from_mapping, to_json


class SettingError(ValueError):
    """A setting that names no service or field, or has a value of the wrong type."""


def parse_assignment(text: str) -> tuple[str, Any]:
    """'edge.replay_enabled=false' -> ('edge.replay_enabled', False)."""
    key, sep, raw = text.partition("=")
    if not sep or "." not in key or not key.split(".", 1)[1]:
        raise SettingError(f"setting {text!r}: expected SERVICE.FIELD=VALUE")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def targets(key: str, services: list[str]) -> list[str]:
    """The services a key's SERVICE part names (`edge` is every edge)."""
    service = key.split(".", 1)[0]
    if service == "edge":
        return [s for s in services if s.startswith("edge-")]
    if service in services:
        return [service]
    raise SettingError(
        f"setting {key}: no service {service!r}; settable: edge, {', '.join(sorted(services))}"
    )


def apply(configs: dict[str, object], settings: Mapping[str, Any]) -> dict[str, object]:
    """Return `configs` (service -> config dataclass) with `settings` applied, each checked."""
    out = dict(configs)
    for key, value in settings.items():
        field_name = key.split(".", 1)[1]
        for service in targets(key, list(configs)):
            config = out[service]
            names = {f.name for f in dataclasses.fields(config)}  # type: ignore[arg-type]
            if field_name not in names:
                raise SettingError(
                    f"setting {key}: {service} has no field {field_name!r}; "
                    f"fields: {', '.join(sorted(names))}"
                )
            raw = {**to_json(config), field_name: value}
            try:
                out[service] = from_mapping(type(config), raw, source=f"setting {key}")
            except ValueError as exc:
                raise SettingError(str(exc)) from None
    return out
