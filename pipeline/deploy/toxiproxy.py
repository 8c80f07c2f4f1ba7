"""A typed, async client for the Toxiproxy server's HTTP API (v2.x).

gameday talks to Toxiproxy directly over HTTP rather than through toxiproxy-python,
which keeps the server's address in class attributes (one server per process) and
depends on the Python 2 `future` shim.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

Stream = Literal["upstream", "downstream"]
ToxicType = Literal[
    "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"
]


class ToxiproxyError(Exception):
    """The Toxiproxy API refused a request; the message carries its answer."""


@dataclass(frozen=True)
class Toxic:
    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> Toxic:
        return cls(
            name=raw["name"],
            type=raw["type"],
            stream=raw.get("stream", "downstream"),
            toxicity=float(raw.get("toxicity", 1.0)),
            attributes=dict(raw.get("attributes") or {}),
        )


@dataclass(frozen=True)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> Proxy:
        return cls(
            name=raw["name"],
            listen=raw["listen"],
            upstream=raw["upstream"],
            enabled=bool(raw["enabled"]),
            toxics=tuple(Toxic.from_api(t) for t in raw.get("toxics") or ()),
        )


class Toxiproxy:
    """One Toxiproxy server. Use as `async with Toxiproxy(url) as tp:` or call aclose()."""

    def __init__(
        self, url: str, *, timeout_s: float = 5.0, client: httpx.AsyncClient | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self._client = client or httpx.AsyncClient(base_url=self.url, timeout=timeout_s)

    async def __aenter__(self) -> Toxiproxy:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        response = await self._client.request(method, path, json=json)
        if response.status_code >= 400:
            raise ToxiproxyError(
                f"{method} {self.url}{path} -> {response.status_code}: {response.text.strip()}"
            )
        if not response.content:
            return None
        return response.json()

    async def version(self) -> str:
        response = await self._client.get("/version")
        response.raise_for_status()
        text = response.text.strip()
        if text.startswith("{"):
            return str(response.json().get("version", text))
        return text

    async def proxies(self) -> dict[str, Proxy]:
        raw = await self._call("GET", "/proxies")
        return {name: Proxy.from_api(p) for name, p in raw.items()}

    async def proxy(self, name: str) -> Proxy:
        return Proxy.from_api(await self._call("GET", f"/proxies/{name}"))

    async def ensure_proxy(self, name: str, *, listen: str, upstream: str) -> Proxy:
        """Create the proxy unless one of that name already joins `listen` to `upstream`.

        An existing proxy keeps its toxics and its enabled state: only faults change those.
        """
        existing = (await self.proxies()).get(name)
        if existing is not None and (existing.listen, existing.upstream) == (listen, upstream):
            return existing
        if existing is not None:
            await self._call("DELETE", f"/proxies/{name}")
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": True}
        return Proxy.from_api(await self._call("POST", "/proxies", body))

    async def delete_proxy(self, name: str) -> None:
        await self._call("DELETE", f"/proxies/{name}")

    async def set_enabled(self, name: str, *, enabled: bool) -> Proxy:
        """A disabled proxy closes its connections and refuses new ones: the link is down."""
        return Proxy.from_api(await self._call("POST", f"/proxies/{name}", {"enabled": enabled}))

    async def add_toxic(
        self,
        proxy: str,
        type: ToxicType,
        *,
        name: str | None = None,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
        **attributes: int | float,
    ) -> Toxic:
        if not 0.0 <= toxicity <= 1.0:
            raise ValueError(f"toxicity must be within [0, 1], got {toxicity}")
        body = {
            "name": name or f"{type}_{stream}",
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes,
        }
        return Toxic.from_api(await self._call("POST", f"/proxies/{proxy}/toxics", body))

    async def remove_toxic(self, proxy: str, name: str) -> None:
        await self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        await self._call("POST", "/reset")


async def missing_proxies(url: str, names: list[str]) -> str | None:
    """Why the Toxiproxy server at `url` is not serving every proxy in `names`; None when
    it is (a stack's health check)."""
    try:
        async with Toxiproxy(url, timeout_s=1.0) as tp:
            proxies = await tp.proxies()
    except Exception as exc:
        return f"toxiproxy API at {url}: {exc.__class__.__name__}: {exc}"
    missing = [name for name in names if name not in proxies]
    return f"proxies missing: {', '.join(missing)}" if missing else None
