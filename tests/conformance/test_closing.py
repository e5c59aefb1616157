"""Autobahn 7.x: the closing handshake, close codes and reasons, both roles."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
import trio
import trio.testing

from trio_ws import Close, ConnectionClosedError, ConnectionClosedOK, ProtocolError

from .peer import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    ROLES,
    Echo,
    RawPeer,
    echo_connection,
)

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
VALID_CODES += [3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


def assert_clean(echo: Echo, code: int, reason: str = "") -> None:
    """The handler saw the peer's close frame, echoed with the same payload."""
    closed = echo.closed
    assert closed is not None
    assert closed.rcvd == Close(code, reason)
    assert closed.sent == Close(code, reason)
    assert closed.rcvd_then_sent is True
    assert closed.__cause__ is None


async def close_echoed(
    role: str, data: Callable[[RawPeer], bytes], code: int | None, reason: bytes = b""
) -> Echo:
    """The peer sends ``data(peer)``: the only answer is its close frame
    (``code``, ``reason``; ``None``: empty) echoed, then the TCP close, and
    the handler saw a clean close."""
    async with echo_connection(role) as (peer, echo, _):
        await peer.send(data(peer))
        await peer.expect_close(code, reason)
        if peer.client:
            await peer.expect_eof()
        await peer.stream.aclose()
    assert_clean(echo, 1005 if code is None else code, reason.decode())
    return echo


@pytest.mark.parametrize("role", ROLES)
async def test_close_after_message(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """7.1.1: echo, then close 1000 echoed; the server closes TCP first."""
    async with echo_connection(role) as (peer, echo, _):
        await peer.send(peer.frame(OP_TEXT, b"Hello"))
        assert await peer.receive_data() == "Hello"
        await peer.close(1000)
    assert trio.current_time() == 0  # nobody waited for a timeout
    assert_clean(echo, 1000)
    assert isinstance(echo.closed, ConnectionClosedOK)


@pytest.mark.parametrize("role", ROLES)
async def test_data_after_close_is_ignored(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """7.1.2-7.1.5: a second close, a ping, a message after the close frame:
    all ignored; the only answer is the echoed close frame."""
    echo = await close_echoed(
        role,
        lambda peer: (
            peer.close_frame(1000)
            + peer.close_frame(1001)
            + peer.frame(OP_PING, b"late")
            + peer.frame(OP_TEXT, b"late")
            + b"\xff\xff garbage that is not even a frame"
        ),
        1000,
    )
    assert echo.received == []


@pytest.mark.parametrize("role", ROLES)
async def test_close_mid_fragmented_message(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """7.1.6 (and RFC 6455 5.4): a close between fragments is answered
    with the same close (1000); the unfinished message is dropped."""
    echo = await close_echoed(
        role,
        lambda peer: peer.frame(OP_TEXT, b"frag", fin=False) + peer.close_frame(1000),
        1000,
    )
    assert echo.received == []


@pytest.mark.parametrize("role", ROLES)
async def test_empty_close_echoed_empty(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """7.3.1: a close frame without payload gets one without payload."""
    await close_echoed(role, lambda peer: peer.close_frame(None), None)


@pytest.mark.parametrize("role", ROLES)
async def test_one_byte_close_payload(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """7.3.2: a 1-byte close payload is a protocol error."""
    async with echo_connection(role) as (peer, echo, _):
        await peer.send(peer.frame(OP_CLOSE, b"\x03"))
        await peer.expect_close(1002, b"close frame with a 1-byte payload")
        await peer.expect_eof()
    assert echo.closed is not None
    assert echo.closed.sent == Close(1002, "close frame with a 1-byte payload")
    assert isinstance(echo.closed.__cause__, ProtocolError)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "reason", [b"", b"Hello World!", "\u00e9".encode() * 61 + b"x"]
)
async def test_close_reasons_echoed(
    autojump_clock: trio.testing.MockClock, role: str, reason: bytes
) -> None:
    """7.3.3-7.3.5: code only, with a reason, with a 123-byte reason."""
    await close_echoed(role, lambda peer: peer.close_frame(1000, reason), 1000, reason)


@pytest.mark.parametrize("role", ROLES)
async def test_close_reason_over_123_bytes(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """7.3.6: a 124-byte reason makes a 126-byte control frame: 1002."""
    async with echo_connection(role) as (peer, _, _):
        await peer.send(peer.close_frame(1000, b"x" * 124))
        await peer.expect_failure(1002)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "reason",
    [
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
        b"\xff",
        b"ok\xc3",
    ],
)
async def test_invalid_utf8_close_reason(
    autojump_clock: trio.testing.MockClock, role: str, reason: bytes
) -> None:
    """7.5.1: a close reason that is not UTF-8 is answered with 1007."""
    async with echo_connection(role) as (peer, echo, _):
        await peer.send(peer.close_frame(1000, reason))
        await peer.expect_failure(1007)
    assert echo.closed is not None
    assert echo.closed.rcvd is None
    assert isinstance(echo.closed, ConnectionClosedError)
    assert isinstance(echo.closed.__cause__, ProtocolError)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("code", VALID_CODES)
async def test_valid_close_codes_echoed(
    autojump_clock: trio.testing.MockClock, role: str, code: int
) -> None:
    """7.7.x: codes defined by RFC 6455, registered with IANA, or in the
    3000-4999 ranges are echoed."""
    await close_echoed(role, lambda peer: peer.close_frame(code, b"why"), code, b"why")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("code", INVALID_CODES)
async def test_invalid_close_codes(
    autojump_clock: trio.testing.MockClock, role: str, code: int
) -> None:
    """7.9.x, 7.13.x: reserved, local-only, unassigned, out of range: 1002."""
    async with echo_connection(role) as (peer, echo, _):
        await peer.send(peer.close_frame(code))
        await peer.expect_failure(1002)
    assert echo.closed is not None
    assert echo.closed.rcvd is None
    assert echo.closed.code == 1002


@pytest.mark.parametrize("role", ROLES)
async def test_failure_sends_close_frame_then_closes_tcp(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """RFC 6455 7.1.7, both roles: when trio_ws fails the connection, the
    exact close frame comes first, then the TCP close, with no delay."""
    async with echo_connection(role) as (peer, _, _):
        await peer.send(peer.frame(OP_BINARY, b"x", mask=not peer.client))
        data = b""
        while chunk := await peer.stream.receive_some():
            data += chunk
    reason = (
        b"server received unexpected unmasked frame"
        if role == "server"
        else b"client received unexpected masked frame"
    )
    payload = struct.pack("!H", 1002) + reason
    assert data[0] == 0x88
    if role == "server":
        assert data == bytes([0x88, len(payload)]) + payload
    else:  # the client masks its close frame
        assert data[1] == 0x80 | len(payload)
        key = data[2:6]
        assert bytes(b ^ key[i % 4] for i, b in enumerate(data[6:])) == payload
    assert trio.current_time() == 0


async def test_handler_close_exact_bytes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A server closing with 1000 writes 88 02 03 e8, waits for the answer,
    then closes TCP (RFC 6455 7.1.1)."""

    async def close_at_once(echo: Echo) -> None:
        await echo.ws.aclose()
        echo.done.set()

    async with echo_connection("server", handler=close_at_once) as (peer, _, _):
        assert await peer.stream.receive_some(4) == b"\x88\x02\x03\xe8"
        await peer.send(peer.close_frame(1000))
        await peer.expect_eof()
    assert trio.current_time() == 0


async def test_client_waits_for_server_eof_then_gives_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """RFC 6455 7.1.1: after the closing handshake the client waits for the
    server's TCP close, at most close_timeout (5 s here), then closes."""
    async with echo_connection("client") as (peer, echo, _):
        await peer.send(peer.close_frame(1000))
        await peer.expect_close(1000, b"")
        await peer.expect_eof()
        assert trio.current_time() == 5
    assert_clean(echo, 1000)


@pytest.mark.parametrize("role", ROLES)
async def test_fragments_then_close_then_continuation(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """Frames after a close frame are never parsed, even invalid ones."""
    echo = await close_echoed(
        role,
        lambda peer: (
            peer.frame(OP_TEXT, b"a", fin=False)
            + peer.close_frame(1001, b"bye")
            + peer.frame(OP_CONT, b"\xff")  # would be 1007
            + peer.frame(OP_CONT, b"b")
        ),
        1001,
        b"bye",
    )
    assert echo.received == []


@pytest.mark.parametrize("role", ROLES)
async def test_failed_connection_not_held_by_a_peer_that_does_not_read(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """After a violation the close frame is written best effort: a peer that
    reads nothing holds the connection for 1 s at most, then TCP closes."""
    async with echo_connection(role, stream_pair=trio.testing.lockstep_stream_pair) as (
        peer,
        echo,
        _,
    ):
        await peer.send(peer.frame(OP_TEXT, b"\xff"))
        await echo.ws.wait_closed()
        assert trio.current_time() == 1
    assert echo.closed is not None
    assert echo.closed.sent is not None
    assert echo.closed.sent.code == 1007


@pytest.mark.parametrize("role", ROLES)
async def test_closing_handshake_not_held_by_a_peer_that_does_not_read(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """A peer that sends a close frame and reads nothing more: the echo is
    abandoned after close_timeout (5 s here) and TCP closes."""
    async with echo_connection(role, stream_pair=trio.testing.lockstep_stream_pair) as (
        peer,
        echo,
        _,
    ):
        await peer.send(peer.close_frame(1000))
        await echo.ws.wait_closed()
        assert trio.current_time() == 5
    assert echo.closed is not None
    assert echo.closed.rcvd == Close(1000, "")
