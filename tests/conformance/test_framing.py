"""Autobahn 1.x, 9.x and 10.x: framing, sizes, limits, automatic fragmentation.

Every case runs against a trio_ws server (the peer masks, as a client) and a
trio_ws client (the peer plays the server); trio_ws echoes each message.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from .peer import OP_BINARY, OP_CONT, OP_TEXT, ROLES, echo_connection

SIZES = [0, 125, 126, 127, 128, 65535, 65536]
MIB = 2**20
#: Bytes trickled one at a time (the rest of large messages comes whole, to
#: keep the suite fast).
TRICKLED = 1024


_PRINTABLE = bytes(range(0x20, 0x7F))


def payload(size: int) -> bytes:
    # Printable ASCII, so that the same bytes make a valid text message.
    return (_PRINTABLE * (size // len(_PRINTABLE) + 1))[:size]


async def assert_fragments_echoed(
    role: str, data: bytes, fragment: int, *, max_size: int | None = 2**20
) -> None:
    """``data`` sent in fragments of ``fragment`` bytes is echoed whole."""
    async with echo_connection(role, max_size=max_size) as (peer, echo, _):
        await peer.send(peer.message(data, fragment=fragment))
        assert await peer.receive_data() == data
        await peer.close()
    assert echo.received == [data]


def length_header(opcode: int, size: int) -> bytes:
    """The unmasked header trio_ws must write (RFC 6455 5.2, shortest form)."""
    if size < 126:
        return bytes([0x80 | opcode, size])
    if size < 65536:
        return bytes([0x80 | opcode, 126]) + size.to_bytes(2, "big")
    return bytes([0x80 | opcode, 127]) + size.to_bytes(8, "big")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
@pytest.mark.parametrize("trickle", [False, True], ids=["whole", "trickled"])
async def test_message_sizes(
    autojump_clock: trio.testing.MockClock,
    role: str,
    size: int,
    opcode: int,
    trickle: bool,
) -> None:
    """1.1.x/1.2.x: echoed in one frame with the shortest length encoding."""
    data = payload(size)
    async with echo_connection(role) as (peer, echo, limiter):
        wire = peer.frame(opcode, data)
        if trickle:
            # Every read gets a single byte: the header (and the start of
            # large payloads) is split at every position.
            limiter.chunk = 1
            await peer.send(wire[:TRICKLED])
            await trio.testing.wait_all_tasks_blocked()
            assert limiter.received == min(len(wire), TRICKLED)
            limiter.chunk = None
            await peer.send(wire[TRICKLED:])
        else:
            await peer.send(wire)
        message = await peer.receive_message()
        assert message.opcode == opcode
        assert message.frames == [(opcode, True, 0, data)]
        await peer.close()
    expected = data.decode() if opcode == OP_TEXT else data
    assert echo.received == [expected]


async def test_server_frame_bytes_exact(autojump_clock: trio.testing.MockClock) -> None:
    """A server's frames are unmasked: header then payload, byte for byte."""
    async with echo_connection("server") as (peer, _, _):
        for size in SIZES:
            data = payload(size)
            await peer.send(peer.frame(OP_BINARY, data))
            header = length_header(OP_BINARY, size)
            received = await peer.stream.receive_some(len(header) + size)
            while len(received) < len(header) + size:
                received += await peer.stream.receive_some(len(header) + size)
            assert received == header + data
        await peer.close()


# 16 MiB cases are slow-ish: one per role, text on one side, binary on the other.
@pytest.mark.parametrize(
    ("role", "opcode"), [("server", OP_TEXT), ("client", OP_BINARY)]
)
async def test_16_mib_message(
    autojump_clock: trio.testing.MockClock, role: str, opcode: int
) -> None:
    """9.1.6/9.2.6: a 16 MiB message, max_size raised accordingly."""
    data = payload(16 * MIB)
    async with echo_connection(role, max_size=16 * MIB) as (peer, echo, _):
        await peer.send(peer.frame(opcode, data))
        message = await peer.receive_message()
        assert message.opcode == opcode
        assert message.payload == data
        await peer.close()
    assert len(echo.received) == 1


@pytest.mark.parametrize("role", ROLES)
async def test_16_mib_in_64_kib_fragments(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """9.4.x/9.6.x: a 16 MiB message in 256 fragments of 64 KiB."""
    await assert_fragments_echoed(role, payload(16 * MIB), 65536, max_size=16 * MIB)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
async def test_many_small_fragments(
    autojump_clock: trio.testing.MockClock, role: str, opcode: int
) -> None:
    """9.x limits: 16384 fragments of 1 byte; no cap but max_size."""
    data = payload(16384)
    async with echo_connection(role, max_size=16384) as (peer, echo, _):
        frames = [peer.frame(opcode, data[:1], fin=False)]
        frames += [
            peer.frame(OP_CONT, data[i : i + 1], fin=False) for i in range(1, 16383)
        ]
        frames.append(peer.frame(OP_CONT, data[-1:]))
        await peer.send(b"".join(frames))
        message = await peer.receive_message()
        assert message.payload == data
        await peer.close()
    assert len(echo.received) == 1


@pytest.mark.parametrize("role", ROLES)
async def test_empty_fragments(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """Empty fragments, first, middle and last, make one message."""
    async with echo_connection(role) as (peer, echo, _):
        await peer.send(
            peer.frame(OP_TEXT, b"", fin=False)
            + peer.frame(OP_CONT, b"a", fin=False)
            + peer.frame(OP_CONT, b"", fin=False)
            + peer.frame(OP_CONT, b"b", fin=False)
            + peer.frame(OP_CONT, b"")
        )
        assert await peer.receive_data() == "ab"
        await peer.close()
    assert echo.received == ["ab"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("fragment", [64, 1300, 4096])
async def test_automatic_fragmentation(
    autojump_clock: trio.testing.MockClock, role: str, fragment: int
) -> None:
    """10.1.1: a 65536-byte message auto-fragmented by the peer."""
    await assert_fragments_echoed(role, payload(65536), fragment)


@pytest.mark.parametrize("role", ROLES)
async def test_max_size_exact_fits_and_one_more_fails(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """9.x: max_size is inclusive; one byte more is 1009, before the payload."""
    async with echo_connection(role, max_size=1000) as (peer, echo, limiter):
        fits = peer.frame(OP_BINARY, b"x" * 1000)
        await peer.send(fits)
        assert await peer.receive_data() == b"x" * 1000
        header = peer.frame(OP_BINARY, b"y" * 1001)[:-1001]
        await peer.send(header)
        await peer.expect_failure(1009)
        # Refused on the header alone.
        assert limiter.received == len(fits) + len(header)
    assert echo.closed is not None
    assert echo.closed.sent is not None
    assert echo.closed.sent.code == 1009


@pytest.mark.parametrize("role", ROLES)
async def test_thousand_messages_in_one_write(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """9.7.x/9.8.x: 1000 small messages at once, past max_queue: all echoed,
    in order."""
    messages = [payload(i % 130) for i in range(1000)]
    async with echo_connection(role, max_queue=4) as (peer, echo, _):
        await peer.send(b"".join(peer.frame(OP_BINARY, m) for m in messages))
        for m in messages:
            assert await peer.receive_data() == m
        await peer.close()
    assert echo.received == messages


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"\x82\x7e\x00\x05", id="16-bit-length-for-5"),
        pytest.param(
            b"\x82\x7f" + (200).to_bytes(8, "big"), id="64-bit-length-for-200"
        ),
        pytest.param(
            b"\x82\x7f" + (2**63 + 1).to_bytes(8, "big"), id="64-bit-length-msb"
        ),
    ],
)
async def test_invalid_length_encodings(
    autojump_clock: trio.testing.MockClock, role: str, header: bytes
) -> None:
    """RFC 6455 5.2: the length takes the fewest bytes and the 64-bit form
    has its top bit clear; anything else is 1002."""
    async with echo_connection(role, max_size=None) as (peer, echo, _):
        if peer.client:  # set the mask bit and add a key
            header = header[:1] + bytes([header[1] | 0x80]) + header[2:] + b"\x00" * 4
        await peer.send(header + b"x" * 5)
        await peer.expect_failure(1002)
    assert echo.closed is not None
    assert echo.closed.code == 1002
