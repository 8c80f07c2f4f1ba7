"""Just enough WebSocket (RFC 6455) for the edge to push to WebSocket fans as it does to
SSE fans: the opening handshake, unmasked server frames, and reading the client's few
frames (close, ping) so a closing client is noticed.

The edge offers WebSocket next to SSE so that both can be measured on the same server
(memory per connection, fan-out): the same updates, the same JSON, one frame per update
encoded once for every WebSocket fan.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Final

GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
PING_FRAME: Final = bytes([0x80 | PING, 0])
CLOSE_FRAME: Final = bytes([0x80 | CLOSE, 2]) + struct.pack("!H", 1000)


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(key.strip().encode() + GUID).digest()).decode()  # noqa: S324 - the protocol's hash


def valid_key(key: str | None) -> bool:
    if not key:
        return False
    try:
        return len(base64.b64decode(key.strip(), validate=True)) == 16
    except ValueError:
        return False


def handshake(key: str) -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n"
    )


def frame(payload: bytes, opcode: int = TEXT) -> bytes:
    """One final, unmasked server frame."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 1 << 16:
        head = bytes([0x80 | opcode, 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x80 | opcode, 127]) + struct.pack("!Q", n)
    return head + payload


def client_opcodes(data: bytes) -> list[int]:
    """The opcodes of the (masked) client frames that start in `data`, as far as they can
    be told apart; a partial frame ends the list. Enough to see a close or a ping."""
    out, i = [], 0
    while i + 2 <= len(data):
        opcode, masked, length = data[i] & 0x0F, data[i + 1] & 0x80, data[i + 1] & 0x7F
        i += 2
        if length == 126:
            if i + 2 > len(data):
                break
            length = struct.unpack("!H", data[i : i + 2])[0]
            i += 2
        elif length == 127:
            if i + 8 > len(data):
                break
            length = struct.unpack("!Q", data[i : i + 8])[0]
            i += 8
        i += 4 if masked else 0  # the masking key
        out.append(opcode)
        i += length
    return out
