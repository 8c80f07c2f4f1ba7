"""The edge's WebSocket framing against RFC 6455's own examples."""

from __future__ import annotations

import pytest

from pipeline.wsframe import CLOSE, PING, TEXT, accept_key, client_opcodes, frame, valid_key


def test_the_accept_key_is_the_rfc_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("dGhlIHNhbXBsZSBub25jZQ==", True),
        ("", False),
        ("abc", False),
        (None, False),
        ("!!!!", False),
    ],
)
def test_only_a_16_byte_base64_key_is_valid(key: str | None, ok: bool) -> None:
    assert valid_key(key) is ok


@pytest.mark.parametrize(("size", "header"), [(5, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)])
def test_a_server_frame_is_final_unmasked_and_sized(size: int, header: int) -> None:
    encoded = frame(b"x" * size)
    assert encoded[0] == 0x80 | TEXT
    assert encoded[1] & 0x80 == 0
    assert len(encoded) == header + size


def test_client_close_and_ping_frames_are_recognised_even_together() -> None:
    masked_hello = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
    ping = bytes([0x80 | PING, 0x80, 1, 2, 3, 4])
    close = bytes([0x80 | CLOSE, 0x82, 1, 2, 3, 4, 0x02, 0xE9])
    assert client_opcodes(masked_hello + ping + close) == [TEXT, PING, CLOSE]
    assert client_opcodes(close[:1]) == []
