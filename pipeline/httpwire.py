"""Just enough HTTP/1.1 for the edge: parse a request head, render a response.

The edge speaks HTTP on raw asyncio transports so that one encoded SSE frame can be
written to thousands of sockets without a framework in between. This module is the
whole of its HTTP: request line and headers in, status line and headers out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_REQUEST_LINE = 4 * 1024
"""A longer request line is refused with 414."""
MAX_HEAD = 8 * 1024
"""A longer request head (request line and headers) is refused with 431."""
MAX_HEADERS = 64
"""More header lines are refused with 431."""
MAX_BODY = 16 * 1024
"""A longer request body is refused with 413."""


UNIQUE_HEADERS = frozenset({"content-length", "transfer-encoding", "host", "last-event-id"})
"""Headers whose repetition makes a request ambiguous (request smuggling): refused."""


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    version: str = "HTTP/1.1"
    body: bytes = b""

    def body_length(self) -> int:
        """The declared body length of a request that carries one; BadRequest if unusable."""
        if "transfer-encoding" in self.headers:
            raise BadRequest(411, "chunked request bodies are not accepted; send Content-Length")
        raw = self.headers.get("content-length")
        if raw is None:
            if self.method in ("POST", "PUT"):
                raise BadRequest(411, "Content-Length is required")
            return 0
        if not (raw.isascii() and raw.isdigit()):
            raise BadRequest(400, f"Content-Length {raw[:20]!r} is not a number")
        if int(raw) > MAX_BODY:
            raise BadRequest(413, f"request body over {MAX_BODY} bytes")
        return int(raw)

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


def parse_head(head: bytes) -> Request:
    """Parse the bytes before the blank line. Raises BadRequest naming the problem."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
        raise BadRequest(400, "request head is not text") from None
    lines = text.split("\r\n")
    if len(lines[0]) > MAX_REQUEST_LINE:
        raise BadRequest(414, f"request line over {MAX_REQUEST_LINE} bytes")
    if len(head) > MAX_HEAD:
        raise BadRequest(431, f"request head over {MAX_HEAD} bytes")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, f"malformed request line {lines[0][:80]!r}")
    method, target, version = parts
    if not target.startswith("/"):
        raise BadRequest(400, "request target must be an absolute path")
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest(431, f"more than {MAX_HEADERS} header lines")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400, f"malformed header line {line[:80]!r}")
        key = name.lower()
        if key in UNIQUE_HEADERS and key in headers:
            raise BadRequest(400, f"{name} given twice")
        headers[key] = value.strip()
    split = urlsplit(target)
    query = dict(parse_qsl(split.query, keep_blank_values=True))
    return Request(method, unquote(split.path), query, headers, version)


def response(
    status: int,
    body: bytes = b"",
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    keep_alive: bool = True,
    head_only: bool = False,
) -> bytes:
    reason = HTTPStatus(status).phrase
    lines = [f"HTTP/1.1 {status} {reason}"]
    if status != 304:
        lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only or status == 304 else head + body


def json_error(
    status: int,
    message: str,
    *,
    keep_alive: bool = False,
    headers: dict[str, str] | None = None,
) -> bytes:
    body = json.dumps({"error": message}).encode()
    return response(status, body, keep_alive=keep_alive, headers=headers)
