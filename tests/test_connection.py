"""The I/O layer: a connection against a raw peer, exact bytes, virtual time."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import sys
import zlib
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from trio_ws import (
    ClientConnection,
    Connection,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    PayloadTooBig,
    ProtocolError,
    ServerConnection,
    State,
)
from trio_ws._connection import ConnectionOptions
from trio_ws._extensions import DeflateParams

from .conftest import Peer, open_connection
from .helpers import (
    MASK,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    close_payload,
    frame,
)

if sys.version_info < (3, 11):  # pragma: no cover - trio installs the backport
    from exceptiongroup import BaseExceptionGroup


def close_frame(
    code: int | None = 1000, reason: str = ""
) -> tuple[int, bool, int, bytes]:
    payload = b"" if code is None else close_payload(code, reason)
    return (OP_CLOSE, True, 0, payload)


async def gated_fragments(
    gate: trio.Event, before: list[str], after: list[str]
) -> AsyncIterator[str]:
    """Fragments ``before``, then a wait for ``gate``, then ``after``."""
    for part in before:
        yield part
    await gate.wait()
    for part in after:
        yield part


async def closed_error(ws: Connection) -> ConnectionClosed:
    """The exception that ``recv`` raises now."""
    with pytest.raises(ConnectionClosed) as info:
        await ws.recv()
    return info.value


# --- send ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("café", (OP_TEXT, True, 0, "café".encode())),
        ("", (OP_TEXT, True, 0, b"")),
        (b"\x00\xff", (OP_BINARY, True, 0, b"\x00\xff")),
        (bytearray(b"ab"), (OP_BINARY, True, 0, b"ab")),
        (memoryview(b"xabcx")[1:4], (OP_BINARY, True, 0, b"abc")),
    ],
)
async def test_send_one_frame(
    autojump_clock: trio.testing.MockClock,
    connection_class: type[Connection],
    message: object,
    expected: object,
) -> None:
    async with open_connection(connection_class) as (ws, peer):
        await ws.send(message)  # type: ignore[arg-type]
        assert await peer.receive_frame() == expected


async def test_send_text_frame_bytes_exactly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        await ws.send("Hello")
        assert await peer.stream.receive_some(7) == b"\x81\x05Hello"  # RFC 6455 5.7


async def test_send_iterable_fragments(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(connection_class) as (ws, peer):
        await ws.send(["Hel", "lo", " you"])
        assert await peer.receive_frame() == (OP_TEXT, False, 0, b"Hel")
        assert await peer.receive_frame() == (OP_CONT, False, 0, b"lo")
        assert await peer.receive_frame() == (OP_CONT, True, 0, b" you")
        await ws.send(b for b in [b"\x01", bytearray(b"\x02"), memoryview(b"\x03")])
        assert await peer.receive_frame() == (OP_BINARY, False, 0, b"\x01")
        assert await peer.receive_frame() == (OP_CONT, False, 0, b"\x02")
        assert await peer.receive_frame() == (OP_CONT, True, 0, b"\x03")
        await ws.send(["single"])
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"single")
        await ws.send("after")
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"after")


async def test_send_empty_iterable(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    # No fragment, no message type: nothing is sent, the connection stays
    # usable.
    async def nothing() -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover - makes this an async generator

    async with open_connection(connection_class) as (ws, peer):
        for empty in ([], iter(()), nothing()):
            with pytest.raises(ValueError, match="an empty iterable is no message"):
                await ws.send(empty)
        await ws.send(["after"])
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"after")
        assert ws.state is State.OPEN


async def test_send_async_iterable_fragments(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fragments() -> AsyncIterator[str]:
        yield "a"
        await trio.sleep(1)
        yield "b"

    async with open_connection(ServerConnection) as (ws, peer):
        await ws.send(fragments())
        assert trio.current_time() == 1
        assert await peer.receive_frame() == (OP_TEXT, False, 0, b"a")
        assert await peer.receive_frame() == (OP_CONT, True, 0, b"b")


@pytest.mark.parametrize("message", [42, None, {"a": "b"}, 1.5])
async def test_send_unsupported_type(
    autojump_clock: trio.testing.MockClock, message: object
) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        with pytest.raises(TypeError, match="message has an unsupported type"):
            await ws.send(message)  # type: ignore[arg-type]
        await ws.send("still open")
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"still open")


@pytest.mark.parametrize(
    ("fragments", "error"),
    [
        (["a", b"b"], "fragments of one message must be all str or all bytes-like"),
        ([b"a", "b"], "fragments of one message must be all str or all bytes-like"),
        ([1, 2], "fragment has an unsupported type: int"),
        (["a", None, "b"], "fragment has an unsupported type: NoneType"),
    ],
)
async def test_send_bad_fragments_before_any_is_sent(
    autojump_clock: trio.testing.MockClock, fragments: list[object], error: str
) -> None:
    # Nothing reached the peer yet: the connection stays usable.
    async with open_connection(ServerConnection) as (ws, peer):
        with pytest.raises(TypeError, match=error):
            await ws.send(fragments)  # type: ignore[arg-type]
        await ws.send("next")
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"next")
        assert ws.state is State.OPEN


REASON = "error while sending a fragmented message"


@pytest.mark.parametrize(
    ("fragments", "error"),
    [
        (
            ["a", "b", b"c"],
            "fragments of one message must be all str or all bytes-like",
        ),
        (
            [b"a", b"b", "c"],
            "fragments of one message must be all str or all bytes-like",
        ),
        (["a", "b", 3], "fragment has an unsupported type: int"),
    ],
)
async def test_send_bad_fragment_after_the_first_fails_with_1011(
    autojump_clock: trio.testing.MockClock,
    connection_class: type[Connection],
    fragments: list[object],
    error: str,
) -> None:
    async with open_connection(connection_class) as (ws, peer):
        with pytest.raises(TypeError, match=error):
            await ws.send(fragments)  # type: ignore[arg-type]
        opcode = OP_TEXT if isinstance(fragments[0], str) else OP_BINARY
        assert await peer.receive_frame() == (opcode, False, 0, b"a")
        assert await peer.receive_frame() == close_frame(1011, REASON)
        await peer.receive_eof()
        assert trio.current_time() == 0  # no close_timeout wait
        assert ws.state is State.CLOSED
        with pytest.raises(ConnectionClosedError) as info:
            await ws.send("more")
        assert (
            str(info.value)
            == f"sent 1011 (internal error) {REASON}; no close frame received"
        )
        assert info.value.code == 1011


async def test_send_iterable_error_after_the_first_fragment_fails_with_1011(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def fragments() -> object:
        yield "a"
        yield "b"
        raise ZeroDivisionError

    async with open_connection(ServerConnection) as (ws, peer):
        with pytest.raises(ZeroDivisionError):
            await ws.send(fragments())  # type: ignore[arg-type]
        assert await peer.receive_frame() == (OP_TEXT, False, 0, b"a")
        assert await peer.receive_frame() == close_frame(1011, REASON)
        await peer.receive_eof()


async def test_send_cancelled_between_fragments_fails_with_1011(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fragments() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"
        await trio.sleep_forever()

    async with open_connection(ServerConnection) as (ws, peer):
        with trio.move_on_after(5):
            await ws.send(fragments())
        assert await peer.receive_frame() == (OP_BINARY, False, 0, b"a")
        assert await peer.receive_frame() == close_frame(1011, REASON)
        await peer.receive_eof()
        assert trio.current_time() == 5
        assert isinstance(await closed_error(ws), ConnectionClosedError)


async def test_send_fragments_after_the_peer_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The peer's close frame arrives between two fragments: the message
    # cannot be finished, the closing handshake already answered it.
    async def fragments() -> AsyncIterator[str]:
        yield "a"
        yield "b"
        await peer.send_close(1000)
        await trio.testing.wait_all_tasks_blocked()
        yield "c"

    async with open_connection(ServerConnection) as (ws, peer):
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.send(fragments())
        assert str(info.value) == "received 1000 (OK); then sent 1000 (OK)"
        assert await peer.receive_frame() == (OP_TEXT, False, 0, b"a")
        assert await peer.receive_frame() == close_frame(1000)
        await peer.receive_eof()


async def test_concurrent_sends_never_interleave(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(*parts: str) -> AsyncIterator[str]:
        for part in parts:
            yield part
            await trio.sleep(1)

    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as senders:
            senders.start_soon(ws.send, slow("a1", "a2", "a3"))
            await trio.testing.wait_all_tasks_blocked()
            senders.start_soon(ws.send, slow("b1", "b2"))
            await trio.testing.wait_all_tasks_blocked()
            senders.start_soon(ws.send, "c")
        assert [await peer.receive_frame() for _ in range(6)] == [
            (OP_TEXT, False, 0, b"a1"),
            (OP_CONT, False, 0, b"a2"),
            (OP_CONT, True, 0, b"a3"),
            (OP_TEXT, False, 0, b"b1"),
            (OP_CONT, True, 0, b"b2"),
            (OP_TEXT, True, 0, b"c"),
        ]
        assert trio.current_time() == 5


async def test_ping_may_slip_between_fragments(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # RFC 6455 5.4: control frames may be injected in a fragmented message.
    gate = trio.Event()
    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.send, gated_fragments(gate, ["a", "b"], ["c"]))
            await trio.testing.wait_all_tasks_blocked()
            await ws.pong(b"beat")
            gate.set()
        assert [await peer.receive_frame() for _ in range(4)] == [
            (OP_TEXT, False, 0, b"a"),
            (OP_PONG, True, 0, b"beat"),
            (OP_CONT, False, 0, b"b"),
            (OP_CONT, True, 0, b"c"),
        ]


async def test_send_cancelled_before(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.send("lost")
        assert scope.cancelled_caught
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.send(["lost", "too"])
        assert scope.cancelled_caught
        await ws.send("kept")
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"kept")
        assert ws.state is State.OPEN


async def test_send_cancelled_while_waiting_for_another_send(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = trio.Event()
    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.send, gated_fragments(gate, ["a"], ["b"]))
            await trio.testing.wait_all_tasks_blocked()
            with trio.move_on_after(1) as scope:
                await ws.send("lost")
            assert scope.cancelled_caught
            gate.set()
        await ws.send("kept")
        assert [await peer.receive_frame() for _ in range(3)] == [
            (OP_TEXT, False, 0, b"a"),
            (OP_CONT, True, 0, b"b"),
            (OP_TEXT, True, 0, b"kept"),
        ]


async def test_send_cancelled_mid_frame_aborts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Promise 2: a partial frame is never followed by other data.
    async with open_connection(ServerConnection) as (ws, peer):
        peer.stall_writes(3)
        with trio.move_on_after(2):
            await ws.send(b"0123456789")
        assert trio.current_time() == 2
        assert ws.state is State.CLOSED
        assert await peer.stream.receive_some() == b"\x82\x0a0"
        await peer.receive_eof()
        for operation in (ws.recv(), ws.send("x"), ws.ping(), ws.pong()):
            with pytest.raises(ConnectionClosedError) as info:
                await operation
            assert str(info.value) == "no close frame received or sent"
            assert info.value.code == 1006
            assert isinstance(info.value.__cause__, trio.BrokenResourceError)
        assert ws.close_code == 1006


async def test_send_transport_broken(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        await peer.stream.receive_stream.aclose()  # type: ignore[attr-defined]
        with pytest.raises(ConnectionClosedError) as info:
            await ws.send("x")
        assert str(info.value) == "no close frame received or sent"
        assert isinstance(info.value.__cause__, trio.BrokenResourceError)
        await ws.wait_closed()
        assert ws.close_code == 1006


async def test_send_after_normal_closure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        await peer.send_close(1000, "done")
        assert await peer.receive_frame() == close_frame(1000, "done")
        await peer.receive_eof()
        for operation in (ws.send("x"), ws.send(["x", "y"]), ws.ping(), ws.pong()):
            with pytest.raises(ConnectionClosedOK) as info:
                await operation
            assert (
                str(info.value) == "received 1000 (OK) done; then sent 1000 (OK) done"
            )


async def test_send_while_closing_waits_for_the_outcome(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def answer() -> None:
        await trio.sleep(3)
        await peer.send_close(1000)

    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.aclose, 1001, "bye")
            await trio.testing.wait_all_tasks_blocked()
            assert ws.state is State.CLOSING
            nursery.start_soon(answer)
            with pytest.raises(ConnectionClosedOK) as info:
                await ws.send("late")
            assert trio.current_time() == 3
        expected = "sent 1001 (going away) bye; then received 1000 (OK)"
        assert str(info.value) == expected


# --- recv ------------------------------------------------------------------------


async def test_recv_in_order(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(connection_class) as (ws, peer):
        await peer.send(
            peer.frame(OP_TEXT, b"one")
            + peer.frame(OP_BINARY, b"\x02")
            + peer.frame(OP_TEXT, b"th", fin=False)
            + peer.frame(OP_CONT, b"r", fin=False)
            + peer.frame(OP_CONT, b"ee")
        )
        assert await ws.recv() == "one"
        assert await ws.recv() == b"\x02"
        assert await ws.recv() == "three"


async def test_recv_waits_for_a_message(autojump_clock: trio.testing.MockClock) -> None:
    async def later() -> None:
        await trio.sleep(7)
        await peer.send_frame(OP_TEXT, b"late")

    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(later)
            assert await ws.recv() == "late"
            assert trio.current_time() == 7


async def test_recv_trailing_data_after_the_handshake(
    autojump_clock: trio.testing.MockClock,
) -> None:
    trailing = frame(OP_TEXT, b"early", mask=MASK) + frame(OP_PING, b"p", mask=MASK)
    async with open_connection(ServerConnection, trailing_data=trailing) as (ws, peer):
        assert await ws.recv() == "early"
        assert await peer.receive_frame() == (OP_PONG, True, 0, b"p")


async def test_recv_concurrent_is_busy(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.recv)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(
                trio.BusyResourceError,
                match="another task is already receiving on this connection",
            ):
                await ws.recv()
            await peer.send_frame(OP_TEXT, b"for the first")
        await peer.send_frame(OP_TEXT, b"next")
        assert await ws.recv() == "next"


async def test_recv_cancelled_before(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        await peer.send_frame(OP_TEXT, b"kept")
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.recv()
        assert scope.cancelled_caught
        assert await ws.recv() == "kept"


async def test_recv_cancelled_before_with_nothing_queued(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # recv's wait is then its first checkpoint: it raises Cancelled at once.
    async with open_connection(ServerConnection) as (ws, peer):
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.recv()
        assert scope.cancelled_caught
        assert trio.current_time() == 0
        await peer.send_frame(OP_TEXT, b"after")
        assert await ws.recv() == "after"


async def test_recv_cancelled_before_once_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        await peer.send_close(1000)
        await ws.wait_closed()
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.recv()
        assert scope.cancelled_caught
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()


async def test_recv_cancelled_during(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        with trio.move_on_after(5) as scope:
            await ws.recv()
        assert scope.cancelled_caught
        assert trio.current_time() == 5
        await peer.send_frame(OP_TEXT, b"kept")
        assert await ws.recv() == "kept"
        assert ws.state is State.OPEN


async def test_recv_timeout_racing_a_message_loses_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def at_deadline() -> None:
        await trio.sleep(5)
        await peer.send_frame(OP_TEXT, b"raced")

    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(at_deadline)
            message = None
            with trio.move_on_after(5):
                message = await ws.recv()
            if message is None:
                message = await ws.recv()
            assert message == "raced"


@pytest.mark.parametrize("code", [1000, 1001])
async def test_async_for_ends_after_normal_closure(
    autojump_clock: trio.testing.MockClock,
    connection_class: type[Connection],
    code: int,
) -> None:
    async with open_connection(connection_class) as (ws, peer):
        await peer.send(
            peer.frame(OP_TEXT, b"a")
            + peer.frame(OP_TEXT, b"b")
            + peer.frame(OP_CLOSE, close_payload(code))
        )
        assert [message async for message in ws] == ["a", "b"]
        assert await peer.receive_frame() == close_frame(code)


async def test_async_for_ends_after_close_without_status(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        await peer.send_close(None)
        assert [message async for message in ws] == []
        assert await peer.receive_frame() == close_frame(None)
        await peer.receive_eof()
        assert ws.close_code == 1005
        assert ws.close_reason == ""


async def test_async_for_raises_after_abnormal_closure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        await peer.send(
            peer.frame(OP_TEXT, b"a")
            + peer.frame(OP_CLOSE, close_payload(1011, "oops"))
        )
        received = []
        with pytest.raises(ConnectionClosedError) as info:
            async for message in ws:
                received.append(message)  # noqa: PERF401 - keeps what came before the error
        assert received == ["a"]
        assert str(info.value) == (
            "received 1011 (internal error) oops; then sent 1011 (internal error) oops"
        )
        assert info.value.code == 1011
        assert info.value.reason == "oops"


async def test_messages_before_close_survive_a_failed_echo(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    # Promise 1: the peer is gone, the echo of its close frame fails.
    async with open_connection(connection_class) as (ws, peer):
        await peer.stream.receive_stream.aclose()  # type: ignore[attr-defined]
        await peer.send(
            peer.frame(OP_TEXT, b"a")
            + peer.frame(OP_BINARY, b"b")
            + peer.frame(OP_CLOSE, close_payload(1000))
        )
        await peer.stream.send_stream.aclose()  # type: ignore[attr-defined]
        await ws.wait_closed()
        assert await ws.recv() == "a"
        assert await ws.recv() == b"b"
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        assert ws.close_code == 1000


async def test_messages_before_ping_survive_a_failed_pong(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(connection_class) as (ws, peer):
        await peer.stream.receive_stream.aclose()  # type: ignore[attr-defined]
        await peer.send(
            peer.frame(OP_TEXT, b"a")
            + peer.frame(OP_PING, b"?")
            + peer.frame(OP_TEXT, b"b")
        )
        await ws.wait_closed()
        assert await ws.recv() == "a"
        assert await ws.recv() == "b"
        error = await closed_error(ws)
        assert isinstance(error, ConnectionClosedError)
        assert str(error) == "no close frame received or sent"
        assert isinstance(error.__cause__, trio.BrokenResourceError)


# --- ping and pong ---------------------------------------------------------------


async def answer_ping(peer: Peer, delay: float) -> bytes:
    """Read a ping, wait ``delay`` seconds, answer it; return its payload."""
    opcode, fin, rsv, payload = await peer.receive_frame()
    assert (opcode, fin, rsv) == (OP_PING, True, 0)
    await trio.sleep(delay)
    await peer.send_frame(OP_PONG, payload)
    return payload


async def test_ping_returns_the_round_trip_time(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(connection_class) as (ws, peer):
        assert ws.latency == 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_ping, peer, 3)
            assert await ws.ping(b"hi") == 3
        assert ws.latency == 3
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_ping, peer, 0.5)
            assert await ws.ping("tö") == 0.5
        assert ws.latency == 0.5


async def test_ping_payloads(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.ping, "tö")
            assert await answer_ping(peer, 0) == "tö".encode()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.ping, bytearray(b"\x00" * 125))
            assert await answer_ping(peer, 0) == b"\x00" * 125
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.ping)
            assert len(await answer_ping(peer, 0)) == 4  # random by default


async def test_ping_payload_too_long(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        with pytest.raises(
            ValueError, match="ping and pong payloads are at most 125 bytes"
        ):
            await ws.ping(b"x" * 126)
        with pytest.raises(
            ValueError, match="ping and pong payloads are at most 125 bytes"
        ):
            await ws.pong("é" * 63)
        await ws.send("nothing else was sent")
        assert await peer.receive_frame() == (
            OP_TEXT,
            True,
            0,
            b"nothing else was sent",
        )


async def test_pong_acknowledges_earlier_pings(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # RFC 6455 5.5.3: a pong may answer only the most recent ping.
    rtts: dict[bytes, float] = {}

    async def ping(payload: bytes) -> None:
        rtts[payload] = await ws.ping(payload)

    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ping, b"1")
            await trio.sleep(1)
            nursery.start_soon(ping, b"2")
            await trio.sleep(1)
            nursery.start_soon(ping, b"3")
            await trio.sleep(2)
            await peer.send_frame(OP_PONG, b"2")
            await trio.testing.wait_all_tasks_blocked()
            assert rtts == {b"1": 4, b"2": 3}
            assert ws.latency == 3
            await trio.sleep(1)
            await peer.send_frame(OP_PONG, b"3")
        assert rtts == {b"1": 4, b"2": 3, b"3": 3}
        assert ws.latency == 3


async def test_several_pongs_in_one_read(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rtts: list[float] = []

    async def ping(payload: bytes) -> None:
        rtts.append(await ws.ping(payload))

    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ping, b"1")
            await trio.sleep(1)
            nursery.start_soon(ping, b"2")
            await trio.sleep(1)
            await peer.send(peer.frame(OP_PONG, b"1") + peer.frame(OP_PONG, b"2"))
        assert sorted(rtts) == [1, 2]
        assert ws.latency == 1


async def test_unsolicited_pong_is_ignored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def unsolicited_then_answer() -> None:
        await trio.sleep(1)
        await peer.send_frame(OP_PONG, b"unsolicited")
        await answer_ping(peer, 2)

    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(unsolicited_then_answer)
            assert await ws.ping(b"mine") == 3
        assert ws.latency == 3


async def test_ping_same_payload_twice(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.ping, b"same")
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(
                RuntimeError, match="already waiting for a pong with the same data"
            ):
                await ws.ping(b"same")
            await peer.send_frame(OP_PONG, b"same")
        # Only one ping went out; once answered, the payload is free again.
        assert await peer.receive_frame() == (OP_PING, True, 0, b"same")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_ping, peer, 0)
            assert await ws.ping(b"same") == 0


async def test_ping_cancelled_before(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.ping(b"lost")
        assert scope.cancelled_caught
        await ws.pong(b"next")  # nothing went out before it
        assert await peer.receive_frame() == (OP_PONG, True, 0, b"next")


async def test_ping_cancelled_while_waiting_for_the_pong(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        with trio.move_on_after(2) as scope:
            await ws.ping(b"p")
        assert scope.cancelled_caught
        assert await peer.receive_frame() == (OP_PING, True, 0, b"p")  # it was sent
        await peer.send_frame(OP_PONG, b"p")  # its pong is ignored
        await trio.testing.wait_all_tasks_blocked()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_ping, peer, 1)
            assert await ws.ping(b"p") == 1  # the payload is free again
        assert ws.latency == 1


@pytest.mark.parametrize(
    ("method", "first_byte"), [("ping", b"\x89"), ("pong", b"\x8a")]
)
async def test_control_cancelled_mid_frame_aborts(
    autojump_clock: trio.testing.MockClock, method: str, first_byte: bytes
) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        peer.stall_writes(1)
        with trio.move_on_after(1):
            await getattr(ws, method)(b"p")
        assert ws.state is State.CLOSED
        assert await peer.stream.receive_some() == first_byte
        await peer.receive_eof()
        with pytest.raises(ConnectionClosedError):
            await getattr(ws, method)(b"p")


async def test_ping_interrupted_by_closure(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async def close_later() -> None:
        await trio.sleep(4)
        await peer.send_close(1001, "moving")

    async with open_connection(connection_class) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(close_later)
            with pytest.raises(ConnectionClosedOK) as info:
                await ws.ping(b"p")
        assert trio.current_time() == 4
        assert str(info.value) == (
            "received 1001 (going away) moving; then sent 1001 (going away) moving"
        )


async def test_ping_from_the_peer_is_answered(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(connection_class) as (_ws, peer):
        await peer.send_frame(OP_PING, b"echo me")
        assert await peer.receive_frame() == (OP_PONG, True, 0, b"echo me")
        await peer.send(peer.frame(OP_PING) + peer.frame(OP_PING, b"2"))
        assert await peer.receive_frame() == (OP_PONG, True, 0, b"")
        assert await peer.receive_frame() == (OP_PONG, True, 0, b"2")


async def test_pong_sends_an_unsolicited_pong(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(connection_class) as (ws, peer):
        await ws.pong()
        assert await peer.receive_frame() == (OP_PONG, True, 0, b"")
        await ws.pong("heartbeat")
        assert await peer.receive_frame() == (OP_PONG, True, 0, b"heartbeat")
        await ws.pong(memoryview(b"\x01\x02"))
        assert await peer.receive_frame() == (OP_PONG, True, 0, b"\x01\x02")


async def test_pong_cancelled_before(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.pong(b"lost")
        assert scope.cancelled_caught
        await ws.pong(b"kept")
        assert await peer.receive_frame() == (OP_PONG, True, 0, b"kept")


# --- closing handshake -------------------------------------------------------------


async def test_aclose_initiated_by_a_server(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.aclose, 4000, "app says bye")
            assert await peer.receive_frame() == close_frame(4000, "app says bye")
            assert ws.state is State.CLOSING
            assert ws.close_code is None
            assert ws.close_reason is None
            await trio.sleep(2)
            await peer.send_close(1000, "ok")
            # RFC 6455 7.1.1: the server closes the TCP connection first.
            await peer.receive_eof()
        assert trio.current_time() == 2
        assert ws.state is State.CLOSED
        assert ws.close_code == 1000
        assert ws.close_reason == "ok"
        error = await closed_error(ws)
        assert isinstance(error, ConnectionClosedError)  # 4000 is not a normal closure
        assert (
            str(error)
            == "sent 4000 (private use) app says bye; then received 1000 (OK) ok"
        )
        assert error.__cause__ is None


async def test_aclose_initiated_by_a_client(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(ClientConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.aclose)
            assert await peer.receive_frame() == close_frame(1000)
            await peer.send_close(1000)
            await trio.testing.wait_all_tasks_blocked()
            # The client waits for the server to close the TCP connection.
            assert ws.state is State.CLOSING
            await trio.sleep(1)
            await peer.stream.aclose()
        assert trio.current_time() == 1
        assert ws.state is State.CLOSED
        assert ws.close_code == 1000
        error = await closed_error(ws)
        assert isinstance(error, ConnectionClosedOK)
        assert str(error) == "sent 1000 (OK); then received 1000 (OK)"


async def test_close_initiated_by_the_peer_of_a_server(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        await peer.send_close(1001, "tab closed")
        assert await peer.receive_frame() == close_frame(1001, "tab closed")
        await peer.receive_eof()  # the server closes TCP at once
        await ws.wait_closed()
        assert trio.current_time() == 0
        assert ws.close_code == 1001
        assert ws.close_reason == "tab closed"
        await ws.aclose()  # closing a closed connection does nothing
        assert ws.state is State.CLOSED


async def test_close_initiated_by_the_peer_of_a_client(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(ClientConnection) as (ws, peer):
        await peer.send_close(1000)
        assert await peer.receive_frame() == close_frame(1000)
        await trio.testing.wait_all_tasks_blocked()
        assert ws.state is State.CLOSING
        error = await closed_error(ws)  # known before the TCP connection closes
        assert str(error) == "received 1000 (OK); then sent 1000 (OK)"
        await peer.stream.aclose()
        await ws.wait_closed()
        assert trio.current_time() == 0


async def test_client_waits_close_timeout_for_the_tcp_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(ClientConnection, close_timeout=4) as (ws, peer):
        await peer.send_close(1000)
        await ws.wait_closed()
        assert trio.current_time() == 4
        assert ws.close_code == 1000
        assert await peer.receive_frame() == close_frame(1000)
        await peer.receive_eof()


async def test_aclose_silent_peer_close_timeout(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(connection_class, close_timeout=3) as (ws, peer):
        await ws.aclose(1001)
        assert trio.current_time() == 3
        assert ws.state is State.CLOSED
        assert ws.close_code == 1006
        assert ws.close_reason == ""
        assert await peer.receive_frame() == close_frame(1001)
        await peer.receive_eof()
        error = await closed_error(ws)
        assert isinstance(error, ConnectionClosedError)
        assert str(error) == "sent 1001 (going away); no close frame received"


async def test_aclose_without_close_timeout_waits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def answer() -> None:
        await trio.sleep(1000)
        await peer.send_close(1000)

    async with open_connection(ServerConnection, close_timeout=None) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer)
            await ws.aclose()
        assert trio.current_time() == 1000
        assert ws.close_code == 1000


async def test_aclose_behind_a_stuck_send(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # close_timeout bounds the wait for the write lock too.
    async with open_connection(ServerConnection, close_timeout=5) as (ws, peer):
        peer.stall_writes(2)

        async def stuck() -> None:
            with pytest.raises(ConnectionClosedError) as info:
                await ws.send("stuck")
            assert isinstance(info.value.__cause__, trio.ClosedResourceError)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stuck)
            await trio.testing.wait_all_tasks_blocked()
            await ws.aclose()
        assert trio.current_time() == 5
        assert ws.state is State.CLOSED
        assert await peer.stream.receive_some() == b"\x81\x05"
        await peer.receive_eof()


async def test_concurrent_aclose(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.aclose, 1000, "first")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(ws.aclose, 1001, "second")
            await trio.testing.wait_all_tasks_blocked()
            assert await peer.receive_frame() == close_frame(1000, "first")
            await peer.send_close(1000)
        await peer.receive_eof()  # one close frame only
        assert trio.current_time() == 0


async def test_aclose_cancelled_before(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(connection_class) as (ws, peer):
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.aclose()
        assert scope.cancelled_caught
        assert ws.state is State.CLOSED
        assert ws.close_code == 1006
        await peer.receive_eof()  # transport closed, no close frame


async def test_aclose_cancelled_during(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(connection_class) as (ws, peer):
        with trio.move_on_after(2) as scope:
            await ws.aclose()
        assert scope.cancelled_caught
        assert trio.current_time() == 2
        assert ws.state is State.CLOSED
        assert await peer.receive_frame() == close_frame(1000)
        await peer.receive_eof()
        error = await closed_error(ws)
        assert str(error) == "sent 1000 (OK); no close frame received"


@pytest.mark.parametrize(
    ("code", "reason", "error"),
    [
        (999, "", "close code 999 may not be sent in a close frame"),
        (1005, "", "close code 1005 may not be sent in a close frame"),
        (1006, "", "close code 1006 may not be sent in a close frame"),
        (5000, "", "close code 5000 may not be sent in a close frame"),
        (1000, "x" * 124, "close reason is over 123 bytes in UTF-8"),
        (1000, "é" * 62, "close reason is over 123 bytes in UTF-8"),
    ],
)
async def test_aclose_invalid(
    autojump_clock: trio.testing.MockClock, code: int, reason: str, error: str
) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        with pytest.raises(ValueError, match=error):
            await ws.aclose(code, reason)
        assert ws.state is State.OPEN
        await ws.aclose(1000, "x" * 123)
        assert await peer.receive_frame() == close_frame(1000, "x" * 123)


async def test_wait_closed(autojump_clock: trio.testing.MockClock) -> None:
    async def close_later() -> None:
        await trio.sleep(6)
        await peer.send_close(1000)

    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(close_later)
            with trio.move_on_after(1):
                await ws.wait_closed()  # cancellable, changes nothing
            assert ws.state is State.OPEN
            await ws.wait_closed()
        assert trio.current_time() == 6
        assert ws.state is State.CLOSED


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (None, 1000),
        (ZeroDivisionError(), 1011),
        (KeyboardInterrupt(), 1001),
        (BaseExceptionGroup("", [KeyboardInterrupt(), SystemExit()]), 1001),
        (BaseExceptionGroup("", [KeyboardInterrupt(), ValueError()]), 1011),
    ],
)
async def test_close_on_exit(
    autojump_clock: trio.testing.MockClock, raised: BaseException | None, code: int
) -> None:
    peer = None
    expected = (
        contextlib.nullcontext() if raised is None else pytest.raises(type(raised))
    )
    with expected as info:
        async with open_connection(ServerConnection, close_timeout=2) as (_ws, peer):
            if raised is not None:
                raise raised
    if isinstance(raised, Exception):
        assert info.value is raised  # as itself, not in a group  # type: ignore[union-attr]
    assert peer is not None
    assert await peer.receive_frame() == close_frame(code)
    await peer.receive_eof()
    assert trio.current_time() == 2


async def test_close_on_exit_cancelled(autojump_clock: trio.testing.MockClock) -> None:
    # Cancelling the owner still sends 1001, shielded, within close_timeout.
    with trio.move_on_after(1):
        async with open_connection(ServerConnection, close_timeout=2) as (ws, peer):
            await trio.sleep_forever()
    assert trio.current_time() == 3
    assert await peer.receive_frame() == close_frame(1001)
    await peer.receive_eof()
    assert ws.state is State.CLOSED


async def test_async_with_connection(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        async with ws as entered:
            assert entered is ws
            await peer.send_close(1000)  # answers the close frame to come
        assert ws.state is State.CLOSED
        assert await peer.receive_frame() == close_frame(1000)
        assert trio.current_time() == 0


# --- abnormal closure ---------------------------------------------------------------


async def test_eof_without_close_frame(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(connection_class) as (ws, peer):
        async with trio.open_nursery() as nursery:

            async def pending_recv() -> None:
                assert await ws.recv() == "last"
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert str(info.value) == "no close frame received or sent"
                assert info.value.code == 1006
                assert info.value.rcvd is None
                assert info.value.sent is None
                assert isinstance(info.value.__cause__, EOFError)

            nursery.start_soon(pending_recv)
            await trio.testing.wait_all_tasks_blocked()
            await peer.send_frame(OP_TEXT, b"last")
            await peer.stream.aclose()
        assert ws.state is State.CLOSED
        assert ws.close_code == 1006
        assert ws.close_reason == ""
        with pytest.raises(ConnectionClosedError) as info:
            await ws.send("x")
        assert isinstance(info.value.__cause__, EOFError)


async def test_eof_in_the_middle_of_a_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        await peer.send(
            peer.frame(OP_TEXT, b"part", fin=False) + peer.frame(OP_TEXT)[:1]
        )
        await peer.stream.aclose()
        error = await closed_error(ws)
        assert str(error) == "no close frame received or sent"
        assert isinstance(error.__cause__, EOFError)


async def test_eof_after_our_close_frame(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def drop() -> None:
        assert await peer.receive_frame() == close_frame(1000)
        await trio.sleep(1)
        await peer.stream.aclose()

    async with open_connection(ServerConnection) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drop)
            await ws.aclose()
        assert trio.current_time() == 1
        error = await closed_error(ws)
        assert isinstance(error, ConnectionClosedError)
        assert str(error) == "sent 1000 (OK); no close frame received"
        assert isinstance(error.__cause__, EOFError)
        assert ws.close_code == 1006


async def test_reset(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(connection_class) as (ws, peer):
        await trio.testing.wait_all_tasks_blocked()
        await peer.reset(peer.frame(OP_TEXT, b"before the reset"))
        await ws.wait_closed()
        assert await ws.recv() == "before the reset"
        error = await closed_error(ws)
        assert isinstance(error, ConnectionClosedError)
        assert str(error) == "no close frame received or sent"
        assert error.code == 1006
        assert isinstance(error.__cause__, trio.BrokenResourceError)
        assert str(error.__cause__) == "connection reset by peer"
        assert ws.close_code == 1006


# --- limits and protocol errors --------------------------------------------------------


async def test_max_size(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(connection_class, max_size=10) as (ws, peer):
        await peer.send(
            peer.frame(OP_TEXT, b"x" * 10) + peer.frame(OP_BINARY, b"y" * 11)
        )
        assert await peer.receive_frame() == close_frame(1009, "message over 10 bytes")
        await peer.receive_eof()
        assert trio.current_time() == 0
        assert await ws.recv() == "x" * 10  # the message before is kept
        error = await closed_error(ws)
        assert isinstance(error, ConnectionClosedError)
        assert str(error) == (
            "sent 1009 (message too big) message over 10 bytes; no close frame received"
        )
        assert isinstance(error.__cause__, PayloadTooBig)
        assert ws.close_code == 1006


async def test_max_size_during_a_write_in_progress(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    # A send is being written over a slow link when the peer breaks the
    # limit: the write ends, then the 1009 close frame follows it.
    async with open_connection(connection_class, max_size=10) as (ws, peer):
        send_stream = peer.ws_stream.send_stream  # type: ignore[attr-defined]
        pump = send_stream.send_all_hook

        async def slow_link() -> None:
            send_stream.send_all_hook = pump
            await trio.sleep(0.75)
            await pump()

        send_stream.send_all_hook = slow_link
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.send, "in progress")
            await trio.testing.wait_all_tasks_blocked()
            await peer.send_frame(OP_BINARY, b"y" * 11)
            assert await peer.receive_frame() == (OP_TEXT, True, 0, b"in progress")
            assert await peer.receive_frame() == close_frame(
                1009, "message over 10 bytes"
            )
            await peer.receive_eof()
            assert trio.current_time() == 0.75
        assert (await closed_error(ws)).code == 1009


async def test_max_size_none(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection(ServerConnection, max_size=None) as (ws, peer):
        await peer.send_frame(OP_BINARY, b"z" * 2**21)
        assert await ws.recv() == b"z" * 2**21


async def test_unmasked_frame_at_a_server(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # RFC 6455 5.1: a server fails the connection on an unmasked frame.
    async with open_connection(ServerConnection) as (ws, peer):
        await peer.send(
            peer.frame(OP_TEXT, b"ok") + peer.frame(OP_TEXT, b"bad", mask=False)
        )
        opcode, fin, rsv, payload = await peer.receive_frame()
        assert (opcode, fin, rsv, payload[:2]) == (
            OP_CLOSE,
            True,
            0,
            b"\x03\xea",
        )  # 1002
        await peer.receive_eof()  # after the close frame, not before
        assert await ws.recv() == "ok"
        error = await closed_error(ws)
        assert isinstance(error, ConnectionClosedError)
        assert isinstance(error.__cause__, ProtocolError)
        assert error.code == 1002
        assert error.reason == payload[2:].decode()
        assert (
            str(error)
            == f"sent 1002 (protocol error) {error.reason}; no close frame received"
        )


async def test_invalid_utf8(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(connection_class) as (ws, peer):
        await peer.send_frame(OP_TEXT, b"\xff")
        opcode, _, _, payload = await peer.receive_frame()
        assert (opcode, payload[:2]) == (OP_CLOSE, b"\x03\xef")  # 1007
        await peer.receive_eof()
        error = await closed_error(ws)
        assert error.code == 1007
        assert isinstance(error.__cause__, ProtocolError)


async def test_protocol_error_in_trailing_data(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(
        ServerConnection, trailing_data=frame(OP_TEXT, b"bad")
    ) as (ws, peer):
        opcode, _, _, payload = await peer.receive_frame()
        assert (opcode, payload[:2]) == (OP_CLOSE, b"\x03\xea")
        await peer.receive_eof()
        assert (await closed_error(ws)).code == 1002


async def test_protocol_error_while_a_send_is_stuck(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The peer breaks the protocol and stops reading: the reader gives up
    # on the close frame after FAIL_WRITE_TIMEOUT and closes the transport.
    async with open_connection(ServerConnection) as (ws, peer):
        peer.stall_writes(1)
        async with trio.open_nursery() as nursery:

            async def stuck() -> None:
                with pytest.raises(ConnectionClosedError):
                    await ws.send("stuck")

            nursery.start_soon(stuck)
            await trio.testing.wait_all_tasks_blocked()
            await peer.send_frame(OP_TEXT, b"bad", mask=False)
            await ws.wait_closed()
        assert trio.current_time() == 1
        assert await peer.stream.receive_some() == b"\x81"
        await peer.receive_eof()


# --- flow control ---------------------------------------------------------------------


async def test_flow_control_pauses_and_resumes_reading(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    sent: list[int] = []

    async def sender() -> None:
        for i in range(8):
            await peer.send_frame(OP_TEXT, str(i).encode())  # returns once read
            sent.append(i)

    async with open_connection(
        connection_class, stream_pair=trio.testing.lockstep_stream_pair, max_queue=4
    ) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            await trio.testing.wait_all_tasks_blocked()
            # Four messages fill the queue: the reader stops reading, so the
            # peer's fifth write blocks.
            assert sent == [0, 1, 2, 3]
            assert len(ws._messages) == 4
            assert await ws.recv() == "0"
            assert await ws.recv() == "1"
            await trio.testing.wait_all_tasks_blocked()
            assert sent == [0, 1, 2, 3]  # 2 left: above the low-water mark (1)
            assert await ws.recv() == "2"
            await trio.testing.wait_all_tasks_blocked()
            assert sent == [0, 1, 2, 3, 4, 5, 6]  # resumed, and full again
            assert [await ws.recv() for _ in range(5)] == ["3", "4", "5", "6", "7"]
        assert sent == list(range(8))


async def test_flow_control_off(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection(
        ServerConnection, stream_pair=trio.testing.lockstep_stream_pair, max_queue=None
    ) as (ws, peer):
        for i in range(100):
            await peer.send_frame(OP_TEXT, str(i).encode())
        assert [await ws.recv() for _ in range(100)] == [str(i) for i in range(100)]


async def test_closing_releases_flow_control(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The peer's close frame sits behind unread messages: aclose reads on.
    async def sender() -> None:
        for i in range(3):
            await peer.send_frame(OP_TEXT, str(i).encode())
        assert await peer.receive_frame() == close_frame(1000)
        await peer.send_close(1000)

    async with open_connection(
        ServerConnection, stream_pair=trio.testing.lockstep_stream_pair, max_queue=1
    ) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            await trio.testing.wait_all_tasks_blocked()
            assert len(ws._messages) == 1
            await ws.aclose()
        assert trio.current_time() == 0
        assert ws.close_code == 1000
        assert [message async for message in ws] == ["0", "1", "2"]


# --- before the reader starts, and attributes ------------------------------------------------


async def test_unopened_connection() -> None:
    ws_stream, peer_stream = trio.testing.memory_stream_pair()
    ws = ServerConnection(ws_stream)
    assert ws.state is State.CONNECTING
    assert ws.close_code is None
    assert ws.close_reason is None
    assert ws.local_address is None
    assert ws.remote_address is None
    assert repr(ws) == f"<ServerConnection {ws.id} CONNECTING>"
    for operation in (ws.recv(), ws.send("x"), ws.ping(), ws.pong()):
        with pytest.raises(RuntimeError, match="the opening handshake is not complete"):
            await operation
    await ws.aclose()
    assert ws.state is State.CLOSED
    await ws.wait_closed()
    assert await peer_stream.receive_some() == b""


async def test_opened_connection_not_started() -> None:
    # Nothing can run a closing handshake: aclose just closes the transport.
    ws_stream, peer_stream = trio.testing.memory_stream_pair()
    ws = ClientConnection(ws_stream)
    ws._open([], b"")
    assert ws.state is State.OPEN
    assert repr(ws) == f"<ClientConnection {ws.id} OPEN>"
    await ws.aclose()
    assert ws.state is State.CLOSED
    assert ws.close_code == 1006
    assert await peer_stream.receive_some() == b""
    with pytest.raises(ConnectionClosedError):
        await ws.send("x")


async def test_socket_addresses() -> None:
    a, b = socket.socketpair()
    with a, b:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(a))
        ws = ServerConnection(stream)
        assert ws.local_address == a.getsockname()
        assert ws.remote_address == a.getpeername()
        tls = ServerConnection(trio.SSLStream(stream, ssl.create_default_context()))
        assert tls.local_address == a.getsockname()
        await stream.aclose()
        assert ws.local_address is None  # the socket is closed
        assert ws.remote_address is None


def test_connection_options_create() -> None:
    ws_stream, _ = trio.testing.memory_stream_pair()
    logger = logging.getLogger("test")
    options = ConnectionOptions(
        max_size=1,
        max_queue=2,
        ping_interval=3,
        ping_timeout=4,
        close_timeout=5,
        logger=logger,
    )
    ws = options.create(ServerConnection, ws_stream)
    assert isinstance(ws, ServerConnection)
    assert (ws.max_size, ws.ping_interval, ws.ping_timeout, ws.close_timeout) == (
        1,
        3,
        4,
        5,
    )
    assert ws.logger is logger
    assert ServerConnection(ws_stream).logger is logging.getLogger("trio_ws.server")
    assert ClientConnection(ws_stream).logger is logging.getLogger("trio_ws.client")


def test_max_queue_validated() -> None:
    ws_stream, _ = trio.testing.memory_stream_pair()
    with pytest.raises(ValueError, match="max_queue must be at least 1 or None"):
        ServerConnection(ws_stream, max_queue=0)


async def test_public_methods_checkpoint_on_fast_paths(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(ServerConnection) as (ws, peer):
        await peer.send_frame(OP_TEXT, b"queued")
        await trio.testing.wait_all_tasks_blocked()
        with trio.testing.assert_checkpoints():
            assert await ws.recv() == "queued"
        with trio.testing.assert_checkpoints():
            await ws.send("x")
        with trio.testing.assert_checkpoints():
            await ws.pong()
        await peer.send_close(1000)
        await ws.wait_closed()
        with trio.testing.assert_checkpoints():
            await ws.aclose()
        with trio.testing.assert_checkpoints():
            await ws.wait_closed()
        with trio.testing.assert_checkpoints(), pytest.raises(ConnectionClosedOK):
            await ws.recv()
        with trio.testing.assert_checkpoints(), pytest.raises(ConnectionClosedOK):
            await ws.send("x")


async def test_internal_error_while_reading_fails_the_connection(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A bug in the protocol layer must not crash the owner's nursery.
    async with open_connection(ServerConnection) as (ws, peer):
        assert ws._protocol is not None
        monkeypatch.setattr(ws._protocol, "receive_data", lambda data: 1 / 0)
        await peer.send_frame(OP_TEXT, b"boom")
        assert await peer.receive_frame() == close_frame(1011, "internal error")
        await peer.receive_eof()
        error = await closed_error(ws)
        assert (
            str(error)
            == "sent 1011 (internal error) internal error; no close frame received"
        )
        assert isinstance(error.__cause__, ZeroDivisionError)
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == f"failing connection {ws.id}"
    assert record.exc_info is not None


async def test_messages_during_the_closing_handshake_are_kept(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(connection_class) as (ws, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.aclose)
            assert await peer.receive_frame() == close_frame(1000)
            # Sent before the peer saw our close frame.
            await peer.send(
                peer.frame(OP_TEXT, b"in flight")
                + peer.frame(OP_CLOSE, close_payload(1000))
            )
            if connection_class is ClientConnection:
                await peer.stream.aclose()
        assert ws.state is State.CLOSED
        assert await ws.recv() == "in flight"
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()


async def test_send_cancelled_on_the_write_lock_keeps_the_compressor_in_step(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A send granted the write lock with a cancellation pending makes no
    # frame: permessage-deflate's context never includes a frame not sent.
    inflater = zlib.decompressobj(-15)

    def inflate(payload: bytes) -> bytes:
        return inflater.decompress(payload + b"\x00\x00\xff\xff")

    async with open_connection(ServerConnection, extensions=[DeflateParams()]) as (
        ws,
        peer,
    ):
        async with trio.open_nursery() as nursery:
            scope = trio.CancelScope()

            async def lost() -> None:
                with scope:
                    await ws.send("hello world, hello world")

            async with ws._write_lock:
                nursery.start_soon(lost)
                await trio.testing.wait_all_tasks_blocked()
            scope.cancel()  # the lock is handed over, the task not run yet
        assert scope.cancelled_caught
        await ws.send("hello world, hello world")
        opcode, fin, rsv, payload = await peer.receive_frame()
        assert (opcode, fin, rsv) == (OP_TEXT, True, 4)  # RSV1: compressed
        assert inflate(payload) == b"hello world, hello world"
