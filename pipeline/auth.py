"""What the control endpoints (feed, rollout, edge and ingest admin) share: the bearer
token, and how they refuse a request.

The token is the stripped content of the file `gameday up` makes (mode 0600) and
`status --json` names as `admin_token_file`; comparisons take constant time.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from aiohttp import web


def read_token(path: Path) -> str:
    """The admin token: the stripped content of its file. An empty token is refused."""
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(f"admin token file {path} is empty")
    return token


def error(status: int, message: str) -> web.Response:
    """A JSON error body, so that every client can show the reason."""
    return web.json_response({"error": message}, status=status)


def bearer_ok(authorization: str | None, token: str) -> bool:
    """Whether an `Authorization` header value carries `token` as a bearer token."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
