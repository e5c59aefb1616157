"""Autobahn 6.x: UTF-8 handling, fail-fast on invalid text, both roles.

Invalid text must fail the connection with 1007 as soon as the byte that
makes it invalid arrives (RFC 6455 8.1), not when the message ends. The
expected position comes from Table 3-7 of the Unicode standard, implemented
here independently of the decoder trio_ws relies on.
"""

from __future__ import annotations

import pytest
import trio.testing

from trio_ws import ProtocolError, State

from .peer import OP_CONT, OP_TEXT, ROLES, echo_connection

#: Well-formed sequences: boundaries of each length, noncharacters, U+0000.
VALID = [
    "κόσμε".encode(),  # 6.2.x
    b"Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!",  # 6.5
    b"\x00",
    b"\xc2\x80",
    b"\xe0\xa0\x80",
    b"\xf0\x90\x80\x80",  # 6.6.x: first of each length
    b"\x7f",
    b"\xdf\xbf",
    b"\xef\xbf\xbf",
    b"\xf4\x8f\xbf\xbf",  # 6.7.x: last of each length
    b"\xed\x9f\xbf",
    b"\xee\x80\x80",
    b"\xef\xbf\xbd",  # 6.8.x: around the surrogates, U+FFFD
    b"\xef\xbf\xbe",
    b"\xf0\x9f\xbf\xbf",
    b"\xf3\xbf\xbf\xbf",  # 6.21-6.22: noncharacters are valid
]

#: Ill-formed sequences (6.3, 6.8-6.21).
INVALID = [
    "κόσμε".encode() + b"\xed\xa0\x80edited",  # 6.3.1
    b"\x80",
    b"\xbf",
    b"\x80\xbf",
    b"\x80\xbf\x80\xbf",  # lone continuation bytes
    b"\xc0 ",
    b"\xdf ",
    b"\xe0 ",
    b"\xef ",
    b"\xf0 ",
    b"\xf7 ",
    b"\xf8 ",
    b"\xfc ",  # lonely start characters
    b"\xc0",
    b"\xe0\x80",
    b"\xf0\x80\x80",
    b"\xdf",
    b"\xef\xbf",
    b"\xf4\x8f\xbf",  # last byte missing
    b"\xfe",
    b"\xff",
    b"\xfe\xfe\xff\xff",  # impossible bytes
    b"\xc0\xaf",
    b"\xe0\x80\xaf",
    b"\xf0\x80\x80\xaf",
    b"\xf8\x80\x80\x80\xaf",
    b"\xc1\xbf",
    b"\xe0\x9f\xbf",
    b"\xf0\x8f\xbf\xbf",
    b"\xc0\x80",
    b"\xe0\x80\x80",  # overlong forms
    b"\xed\xa0\x80",
    b"\xed\xad\xbf",
    b"\xed\xae\x80",
    b"\xed\xbf\xbf",
    b"\xed\xa0\x80\xed\xb0\x80",  # surrogates, single and paired
    b"\xf4\x90\x80\x80",
    b"\xf5\x80\x80\x80",  # beyond U+10FFFF
    b"ok\xf0\x9f\x98",  # valid start, message ends mid-character
]


def bad_byte(data: bytes) -> int | None:
    """Index of the byte that makes ``data`` ill-formed (Unicode Table 3-7),
    or ``None`` if ``data`` is a prefix of well-formed UTF-8."""
    i = 0
    while i < len(data):
        lead = data[i]
        if lead < 0x80:
            i += 1
            continue
        tail = (0x80, 0xBF)
        if 0xC2 <= lead <= 0xDF:
            ranges = [tail]
        elif lead == 0xE0:
            ranges = [(0xA0, 0xBF), tail]
        elif lead == 0xED:
            ranges = [(0x80, 0x9F), tail]
        elif 0xE1 <= lead <= 0xEF:
            ranges = [tail, tail]
        elif lead == 0xF0:
            ranges = [(0x90, 0xBF), tail, tail]
        elif 0xF1 <= lead <= 0xF3:
            ranges = [tail, tail, tail]
        elif lead == 0xF4:
            ranges = [(0x80, 0x8F), tail, tail]
        else:
            return i
        for k, (low, high) in enumerate(ranges, start=1):
            if i + k >= len(data):
                return None
            if not low <= data[i + k] <= high:
                return i + k
        i += 1 + len(ranges)
    return None


def test_reference_agrees_with_python() -> None:
    """The reference above and Python's strict decoder agree on our cases."""
    for data in VALID:
        assert bad_byte(data) is None
        data.decode()
    for data in INVALID:
        with pytest.raises(UnicodeDecodeError):
            data.decode()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("data", VALID, ids=lambda d: d.hex())
async def test_valid_text_split_at_every_byte(
    autojump_clock: trio.testing.MockClock, role: str, data: bytes
) -> None:
    """6.2.x-6.8.x: valid text, whole and split in two fragments at every
    byte boundary, is echoed intact."""
    async with echo_connection(role) as (peer, echo, _):
        await peer.send(peer.frame(OP_TEXT, data))
        assert await peer.receive_data() == data.decode()
        for k in range(1, len(data)):
            await peer.send(
                peer.frame(OP_TEXT, data[:k], fin=False) + peer.frame(OP_CONT, data[k:])
            )
            assert await peer.receive_data() == data.decode()
        await peer.close()
    assert echo.received == [data.decode()] * len(data)


@pytest.mark.parametrize("role", ROLES)
async def test_every_byte_fragmented(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """6.2.4: a multi-byte text sent one byte per fragment."""
    data = "κόσμε\U0001f600".encode()
    async with echo_connection(role) as (peer, _, _):
        frames = [peer.frame(OP_TEXT, data[:1], fin=False)]
        frames += [
            peer.frame(OP_CONT, data[i : i + 1], fin=False)
            for i in range(1, len(data) - 1)
        ]
        frames.append(peer.frame(OP_CONT, data[-1:]))
        await peer.send(b"".join(frames))
        assert await peer.receive_data() == data.decode()
        await peer.close()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("data", INVALID, ids=lambda d: d.hex())
async def test_invalid_text_fails_fast_one_byte_per_fragment(
    autojump_clock: trio.testing.MockClock, role: str, data: bytes
) -> None:
    """6.4.x and 6.3.x: one byte per fragment; 1007 right after the
    fragment holding the bad byte, before the message ends."""
    position = bad_byte(data)
    fail_at = len(data) - 1 if position is None else position
    async with echo_connection(role) as (peer, echo, _):
        for i in range(fail_at + 1):
            opcode = OP_TEXT if i == 0 else OP_CONT
            fin = i == len(data) - 1
            await peer.send(peer.frame(opcode, data[i : i + 1], fin=fin))
            await trio.testing.wait_all_tasks_blocked()
            expected = State.OPEN if i < fail_at else State.CLOSED
            assert echo.ws.state is expected, (i, fail_at)
        await peer.expect_failure(1007)
    assert echo.received == []
    assert echo.closed is not None
    assert echo.closed.sent is not None
    assert echo.closed.sent.code == 1007
    assert isinstance(echo.closed.__cause__, ProtocolError)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("data", INVALID, ids=lambda d: d.hex())
async def test_invalid_text_fails_fast_trickled(
    autojump_clock: trio.testing.MockClock, role: str, data: bytes
) -> None:
    """The same in a single frame whose payload trickles in a byte at a
    time: trio_ws fails before reading the rest of the payload."""
    position = bad_byte(data)
    fail_at = len(data) - 1 if position is None else position
    padding = b"" if position is None else b"x" * 100  # never read
    async with echo_connection(role) as (peer, _, limiter):
        limiter.chunk = 1
        wire = peer.frame(OP_TEXT, data + padding)
        header = len(wire) - len(data + padding)
        await peer.send(wire)
        await peer.expect_failure(1007)
        assert limiter.received == header + fail_at + 1


@pytest.mark.parametrize("role", ROLES)
async def test_fail_fast_across_frames(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """6.4.1: three fragments, the middle one holds a code point past
    U+10FFFF: 1007 before the third fragment is sent."""
    async with echo_connection(role) as (peer, echo, _):
        await peer.send(peer.frame(OP_TEXT, "κόσμε".encode(), fin=False))
        await peer.send(peer.frame(OP_CONT, b"\xf4\x90\x80\x80", fin=False))
        await peer.expect_failure(1007)
    assert echo.received == []


@pytest.mark.parametrize("role", ROLES)
async def test_binary_is_not_checked(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """Binary messages carry any bytes."""
    async with echo_connection(role) as (peer, _, _):
        blob = b"".join(INVALID)
        await peer.send(peer.message(blob))
        assert await peer.receive_data() == blob
        await peer.close()
