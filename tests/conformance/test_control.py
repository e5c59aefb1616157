"""Autobahn 2.x-5.x: pings and pongs, reserved bits, reserved opcodes, fragments.

Each case runs in both roles. A violation must be answered with a close frame
carrying the exact code, then the TCP close; messages completed before it are
still delivered (and echoed).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing

from trio_ws import ProtocolError

from .peer import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    ROLES,
    Echo,
    RawPeer,
    echo_connection,
)


def assert_failed_with(echo: Echo, code: int, cause: type[Exception]) -> None:
    """The handler saw the connection fail with ``code``, for ``cause``."""
    closed = echo.closed
    assert closed is not None
    assert closed.rcvd is None
    assert closed.sent is not None
    assert closed.sent.code == code
    assert isinstance(closed.__cause__, cause)


async def fails_with_1002(
    role: str,
    bad: Callable[[RawPeer], bytes],
    *,
    echoed_before: bytes | None = None,
    max_size: int | None = 2**20,
) -> Echo:
    """Send ``bad(peer)`` (after a text message ``echoed_before``, which comes
    back): the connection fails with 1002 for a ProtocolError."""
    async with echo_connection(role, max_size=max_size) as (peer, echo, _):
        if echoed_before is not None:
            await peer.send(peer.frame(OP_TEXT, echoed_before))
            assert await peer.receive_frame() == (OP_TEXT, True, 0, echoed_before)
        await peer.send(bad(peer))
        await peer.expect_failure(1002)
    assert_failed_with(echo, 1002, ProtocolError)
    return echo


async def expect_pong(peer: RawPeer, payload: bytes) -> None:
    assert await peer.receive_frame() == (OP_PONG, True, 0, payload)


# --- 2.x: pings and pongs ------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("size", [0, 1, 10, 125])
@pytest.mark.parametrize("trickle", [False, True], ids=["whole", "trickled"])
async def test_ping_answered_with_same_payload(
    autojump_clock: trio.testing.MockClock, role: str, size: int, trickle: bool
) -> None:
    """2.1-2.4, 2.6: a pong with the ping's payload, binary payloads too."""
    data = bytes(range(256))[-size:] if size else b""
    async with echo_connection(role) as (peer, _, limiter):
        if trickle:
            limiter.chunk = 1
        await peer.send(peer.frame(OP_PING, data))
        await expect_pong(peer, data)
        await peer.close()


@pytest.mark.parametrize("role", ROLES)
async def test_ping_of_126_bytes(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """2.5: a control frame over 125 bytes is a protocol error, no pong."""
    await fails_with_1002(role, lambda peer: peer.frame(OP_PING, b"x" * 126))


@pytest.mark.parametrize("role", ROLES)
async def test_unsolicited_pongs_are_ignored(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """2.7, 2.8: pongs nobody asked for change nothing."""
    async with echo_connection(role) as (peer, echo, _):
        await peer.send(peer.frame(OP_PONG, b""))
        await peer.send(peer.frame(OP_PONG, b"unsolicited"))
        await peer.send(peer.frame(OP_TEXT, b"after"))
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"after")
        await peer.close()
    assert echo.received == ["after"]


@pytest.mark.parametrize("role", ROLES)
async def test_pings_answered_in_order(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """2.9, 2.10: ten pings in a row, ten pongs in the same order."""
    async with echo_connection(role) as (peer, _, _):
        await peer.send(b"".join(peer.frame(OP_PING, b"%d" % i) for i in range(10)))
        for i in range(10):
            await expect_pong(peer, b"%d" % i)
        await peer.close()


@pytest.mark.parametrize("role", ROLES)
async def test_ping_between_fragments_answered_at_once(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """5.6-5.8: a ping inside a fragmented message gets its pong before the end."""
    async with echo_connection(role) as (peer, echo, _):
        await peer.send(peer.frame(OP_TEXT, b"frag", fin=False))
        await peer.send(peer.frame(OP_PING, b"ping"))
        # The pong comes while the message is still open.
        await expect_pong(peer, b"ping")
        assert echo.received == []
        await peer.send(peer.frame(OP_CONT, b"ment"))
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"fragment")
        await peer.close()


@pytest.mark.parametrize("role", ROLES)
async def test_pong_between_fragments(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """5.7: an unsolicited pong inside a fragmented message is ignored."""
    async with echo_connection(role) as (peer, _, _):
        await peer.send(
            peer.frame(OP_BINARY, b"a", fin=False)
            + peer.frame(OP_PONG, b"p")
            + peer.frame(OP_CONT, b"b")
        )
        assert await peer.receive_frame() == (OP_BINARY, True, 0, b"ab")
        await peer.close()


# --- 3.x: reserved bits ----------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("rsv", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY, OP_PING])
async def test_reserved_bits_without_extension(
    autojump_clock: trio.testing.MockClock, role: str, rsv: int, opcode: int
) -> None:
    """3.1-3.7: any RSV bit without an extension is 1002; a valid message
    sent just before is still echoed."""
    echo = await fails_with_1002(
        role, lambda peer: peer.frame(opcode, b"x", rsv=rsv), echoed_before=b"before"
    )
    assert echo.received == ["before"]


@pytest.mark.parametrize("role", ROLES)
async def test_reserved_bit_in_the_same_read(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """3.2-3.4: message, bad frame and ping in one read: the message is
    delivered, the connection fails at once (no pong), and the handler's
    echo, too late, finds it closed."""
    echo = await fails_with_1002(
        role,
        lambda peer: (
            peer.frame(OP_TEXT, b"hello")
            + peer.frame(OP_TEXT, b"bad", rsv=2)
            + peer.frame(OP_PING, b"late")
        ),
    )
    assert echo.received == ["hello"]


# --- 4.x: reserved opcodes --------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
@pytest.mark.parametrize("payload", [b"", b"reserved"])
async def test_reserved_opcodes(
    autojump_clock: trio.testing.MockClock, role: str, opcode: int, payload: bytes
) -> None:
    """4.1.x (data) and 4.2.x (control): 1002; the message before is echoed."""
    await fails_with_1002(
        role, lambda peer: peer.frame(opcode, payload), echoed_before=b"ok"
    )


# --- 5.x: fragmentation ---------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
async def test_fragmented_control_frames(
    autojump_clock: trio.testing.MockClock, role: str, opcode: int
) -> None:
    """5.1, 5.2: control frames must not be fragmented."""
    await fails_with_1002(role, lambda peer: peer.frame(opcode, b"\x03\xe8", fin=False))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("fin", [True, False])
async def test_continuation_without_start(
    autojump_clock: trio.testing.MockClock, role: str, fin: bool
) -> None:
    """5.9-5.14: a continuation frame with nothing to continue: 1002."""
    # A complete message first: the continuation must not extend it,
    # nor count towards its size (which would read as 1009).
    await fails_with_1002(
        role,
        lambda peer: peer.frame(OP_CONT, b"y" * 5, fin=fin),
        echoed_before=b"x" * 10,
        max_size=10,
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("second", [OP_TEXT, OP_BINARY])
async def test_new_message_before_the_end(
    autojump_clock: trio.testing.MockClock, role: str, second: int
) -> None:
    """5.18, 5.19: a text or binary frame while a message is open: 1002."""
    echo = await fails_with_1002(
        role,
        lambda peer: peer.frame(OP_TEXT, b"a", fin=False) + peer.frame(second, b"b"),
    )
    assert echo.received == []


@pytest.mark.parametrize("role", ROLES)
async def test_fragments_with_pings_everywhere(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """5.19, 5.20: fragments interleaved with pings, sent frame by frame."""
    async with echo_connection(role) as (peer, _, _):
        parts = [b"f1", b"f2", b"f3", b"f4", b"f5"]
        for i, part in enumerate(parts):
            opcode = OP_TEXT if i == 0 else OP_CONT
            await peer.send(peer.frame(opcode, part, fin=i == len(parts) - 1))
            await peer.send(peer.frame(OP_PING, b"p%d" % i))
            if i < len(parts) - 1:
                await expect_pong(peer, b"p%d" % i)
        # The last ping races the echo of the whole message: RFC 6455 5.5.2
        # asks for a pong "as soon as is practical", in no order against
        # data frames, so either may leave first; both must.
        pong = (OP_PONG, True, 0, b"p%d" % (len(parts) - 1))
        echo = (OP_TEXT, True, 0, b"".join(parts))
        frames = [await peer.receive_frame(), await peer.receive_frame()]
        assert frames in ([pong, echo], [echo, pong])
        await peer.close()


@pytest.mark.parametrize("role", ROLES)
async def test_masking_rules(autojump_clock: trio.testing.MockClock, role: str) -> None:
    """RFC 6455 5.1: the server fails unmasked frames, the client masked ones."""
    await fails_with_1002(
        role, lambda peer: peer.frame(OP_TEXT, b"x", mask=not peer.client)
    )


@pytest.mark.parametrize("role", ROLES)
async def test_messages_after_pings_keep_flowing(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """Pings and messages in one read: replies in order, nothing lost."""
    async with echo_connection(role) as (peer, echo, _):
        await peer.send(
            peer.frame(OP_PING, b"1")
            + peer.frame(OP_TEXT, b"a")
            + peer.frame(OP_PING, b"2")
            + peer.frame(OP_BINARY, b"b")
        )
        await expect_pong(peer, b"1")
        await expect_pong(peer, b"2")
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"a")
        assert await peer.receive_frame() == (OP_BINARY, True, 0, b"b")
        await peer.close()
    assert echo.received == ["a", b"b"]


async def test_ping_flood_backpressure(autojump_clock: trio.testing.MockClock) -> None:
    """A peer that floods pings and reads nothing cannot grow trio_ws's memory:
    once a pong cannot be written, trio_ws stops reading."""
    async with echo_connection(
        "server", stream_pair=trio.testing.lockstep_stream_pair
    ) as (peer, echo, limiter):
        flood = peer.frame(OP_PING, b"") * 100_000  # 600 kB of pings
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.send, flood)
            await trio.testing.wait_all_tasks_blocked()
            # trio_ws read one buffer (64 KiB), and stopped there: the
            # pongs it owes wait for the peer to read.
            assert limiter.received == 65536
            nursery.cancel_scope.cancel()
        await peer.stream.aclose()
    assert echo.closed is not None
    assert echo.closed.code == 1006
