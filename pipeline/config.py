"""Typed service configuration read from JSON files, checked when loaded.

Each service takes `--config FILE`; `gameday up` writes those files. A wrong file fails
at start with a message naming the file and the key, never later in the hot path.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

C = TypeVar("C")


def load_config(cls: type[C], path: Path) -> C:
    """Build dataclass `cls` from the JSON object in `path`."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such config file") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return from_mapping(cls, raw, source=str(path))


def from_mapping(cls: type[C], raw: dict[str, Any], *, source: str) -> C:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in raw:
            no_default = (
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            )
            if no_default:
                raise ValueError(f"{source}: missing key {name}")
            continue
        values[name] = _coerce(raw[name], hints[name], f"{source}: {name}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:  # noqa: PLR0911 - one branch per type
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if hint is Path:
        return Path(_expect(value, str, where))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint in (int, str, bool):
        return _expect(value, hint, where)
    if origin is tuple:
        items = _expect(value, list, where)
        return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(items))
    if origin is dict:
        mapping = _expect(value, dict, where)
        return {
            _expect(k, str, where): _coerce(v, args[1], f"{where}.{k}") for k, v in mapping.items()
        }
    if typing.get_origin(hint) is typing.Literal:
        if value not in args:
            raise ValueError(f"{where} must be one of {list(args)}, got {value!r}")
        return value
    raise TypeError(f"{where}: unsupported config type {hint!r}")


def _expect(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{where} must be a {kind.__name__}, got {value!r}")
    return value


def to_json(config: object) -> dict[str, Any]:
    """The JSON object `load_config` reads back into an equal config."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):  # type: ignore[arg-type]
        value = getattr(config, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out
