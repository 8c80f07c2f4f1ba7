"""The harness's client of the rollout controller (pipeline/control.py): the drill's load
balancer for fans, and how a drill starts and ends a rollout and reads its decisions."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx


class RolloutClient:
    def __init__(self, url: str, token: str, *, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._http = httpx.AsyncClient(timeout=timeout_s)

    async def __aenter__(self) -> RolloutClient:
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def route(self, region: str, fan: str) -> str:
        """The edge URL the controller assigns this fan (a `chaos.fans.Router`). Errors are
        OSError, so a fan treats an unreachable controller like an unreachable edge."""
        try:
            answer = await self._http.get(
                f"{self.url}/v1/assign", params={"region": region, "fan": fan}
            )
            answer.raise_for_status()
            return str(answer.json()["url"])
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise OSError(f"rollout controller: {exc}") from None

    async def set_share(self, share: float) -> dict[str, Any]:
        answer = await self._http.post(
            f"{self.url}/v1/rollout", json={"share": share}, headers=self._headers
        )
        answer.raise_for_status()
        state: dict[str, Any] = answer.json()
        return state

    async def state(self) -> dict[str, Any]:
        answer = await self._http.get(f"{self.url}/v1/rollout")
        answer.raise_for_status()
        state: dict[str, Any] = answer.json()
        return state
