"""Locust users and load shapes: fans on SSE, fans polling, goal spikes."""

__all__: list[str] = []
