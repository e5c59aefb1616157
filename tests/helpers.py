"""Helpers shared by the tests: hand-built frames and a frame reader.

Tests assert exact bytes (RFC 6455 section 5.2), so frames are built here by
hand rather than with the code under test.
"""

from __future__ import annotations

import struct

MASK = b"\x37\xfa\x21\x3d"  # the RFC 6455 5.7 example key

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length: int | None = None,
) -> bytes:
    """Build one frame; ``mask`` makes it a client frame; ``length`` may lie."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        header = struct.pack("!BB", first, mask_bit | n)
    elif n < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, n)
    if mask is None:
        return header + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


def parse_frames(data: bytes) -> list[tuple[int, bool, int, bytes]]:
    """Split ``data`` into ``(opcode, fin, rsv, unmasked payload)`` tuples.

    Raises:
        ValueError: ``data`` ends in the middle of a frame.
    """
    frames = []
    i = 0
    while i < len(data):
        if len(data) - i < 2:
            raise ValueError("truncated frame header")
        first, second = data[i], data[i + 1]
        i += 2
        n = second & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", data[i : i + 2])
            i += 2
        elif n == 127:
            (n,) = struct.unpack("!Q", data[i : i + 8])
            i += 8
        key = None
        if second & 0x80:
            key = data[i : i + 4]
            i += 4
        payload = data[i : i + n]
        if len(payload) != n:
            raise ValueError("truncated frame payload")
        i += n
        if key is not None:
            payload = bytes(b ^ key[j % 4] for j, b in enumerate(payload))
        frames.append((first & 0x0F, bool(first & 0x80), (first >> 4) & 0x7, payload))
    return frames
