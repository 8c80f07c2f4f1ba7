"""Faults, scenarios, the drill runner, the delivery checker and the `gameday` CLI."""

__all__: list[str] = []
