"""trio_ws.broadcast: one message to many connections, slow peers isolated."""

from __future__ import annotations

import contextlib
import logging

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import State
from trio_ws.testing import ConnectionPair, open_connection_pair

from .conftest import open_connection
from .helpers import OP_BINARY, OP_TEXT


@contextlib.asynccontextmanager
async def open_pairs(n: int, **options: int):  # type: ignore[no-untyped-def]
    async with contextlib.AsyncExitStack() as stack:
        pairs = [
            await stack.enter_async_context(
                open_connection_pair(compression=None, ping_interval=None, **options)  # type: ignore[arg-type]
            )
            for _ in range(n)
        ]
        yield pairs


def servers(pairs: list[ConnectionPair]) -> list[trio_ws.ServerConnection]:
    return [pair.server for pair in pairs]


async def test_every_open_connection_gets_the_message(autojump_clock: object) -> None:
    async with open_pairs(3) as pairs:
        trio_ws.broadcast(servers(pairs), "hello")
        trio_ws.broadcast(servers(pairs), b"\x00\x01")
        for pair in pairs:
            assert await pair.client.recv() == "hello"
            assert await pair.client.recv() == b"\x00\x01"
        assert trio.current_time() == 0


async def test_frames_on_the_wire(autojump_clock: object) -> None:
    async with open_connection(trio_ws.ServerConnection) as (ws, peer):
        data = bytearray(b"abc")
        trio_ws.broadcast([ws], data)
        data[0] = ord("X")  # copied at the call: later changes are not sent
        trio_ws.broadcast([ws], memoryview(b"de"))
        trio_ws.broadcast([ws], "f")
        assert await peer.receive_frame() == (OP_BINARY, True, 0, b"abc")
        assert await peer.receive_frame() == (OP_BINARY, True, 0, b"de")
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"f")


async def test_order_is_kept_per_connection(autojump_clock: object) -> None:
    async with open_pairs(2) as pairs:
        for i in range(10):
            trio_ws.broadcast(servers(pairs), str(i))
        for pair in pairs:
            assert [await pair.client.recv() for _ in range(10)] == [
                str(i) for i in range(10)
            ]


async def test_client_that_never_reads_delays_only_itself(
    autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_pairs(3, buffer_size=4096) as pairs:
        stalled = pairs[1]
        stalled.client_transport.pause_reading()
        received: list[list[tuple[str | bytes, float]]] = [[], [], []]

        async def read(i: int) -> None:
            for _ in range(100):
                message = await pairs[i].client.recv()
                received[i].append((message, trio.current_time()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read, 0)
            nursery.start_soon(read, 2)
            for i in range(100):
                # A 1000-byte message every 10 ms, for 1 s of virtual time.
                trio_ws.broadcast(servers(pairs), f"{i:03}" * 333, max_backlog=4)
                await trio.sleep(0.01)
        # The readers got each message at the instant it was broadcast.
        expected = [(f"{i:03}" * 333, pytest.approx(i * 0.01)) for i in range(100)]
        assert received[0] == received[2] == expected
        # The stalled connection was dropped long before: its write was cut
        # mid-frame, so no close frame could follow.
        assert stalled.server.state is State.CLOSED
        assert stalled.server.close_code == 1006
        assert pairs[0].server.state is pairs[2].server.state is State.OPEN
        assert caplog.text.count("too slow for broadcast; closing it with 1008") == 1
        # Later broadcasts skip it and still reach the others.
        trio_ws.broadcast(servers(pairs), "after")
        assert await pairs[0].client.recv() == "after"
        assert await pairs[2].client.recv() == "after"


async def test_overflow_closes_with_1008_when_no_frame_is_cut(
    autojump_clock: object,
) -> None:
    # A user's fragmented send holds the connection: broadcast messages wait
    # behind it with no byte written, so the overflow closes the connection
    # with a close frame (which may come between fragments, RFC 6455 5.4).
    async with open_connection_pair(compression=None, ping_interval=None) as pair:
        gate = trio.Event()

        async def fragments():  # type: ignore[no-untyped-def]
            yield "a"
            await gate.wait()
            yield "b"

        async def send_fragments() -> None:
            message = fragments()
            with pytest.raises(trio_ws.ConnectionClosedError):
                await pair.server.send(message)
            await message.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_fragments)
            await trio.testing.wait_all_tasks_blocked()
            for i in range(3):
                trio_ws.broadcast([pair.server], str(i), max_backlog=1)
                await trio.testing.wait_all_tasks_blocked()
            gate.set()
        with pytest.raises(trio_ws.ConnectionClosedError) as info:
            await pair.client.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1008
        assert info.value.rcvd.reason == "too slow to receive broadcast messages"
        assert trio.current_time() == 0
    assert pair.server.close_code == 1008


async def test_closed_and_unopened_connections_are_skipped(
    autojump_clock: object,
) -> None:
    async with open_pairs(2) as pairs:
        await pairs[0].server.aclose()
        unopened = trio_ws.ServerConnection(trio.testing.memory_stream_pair()[0])
        trio_ws.broadcast([*servers(pairs), unopened], "hi")
        assert await pairs[1].client.recv() == "hi"
        assert unopened.state is State.CONNECTING


async def test_connection_closed_while_draining(autojump_clock: object) -> None:
    async with open_pairs(1) as pairs:
        pair = pairs[0]
        pair.client_transport.pause_reading()
        trio_ws.broadcast([pair.server], "x" * 100_000)
        await trio.testing.wait_all_tasks_blocked()
        pair.client_transport.reset()
        await pair.server.wait_closed()
        trio_ws.broadcast([pair.server], "ignored")
        assert pair.server.close_code == 1006


def test_message_type_is_checked() -> None:
    with pytest.raises(TypeError, match="message has an unsupported type: list"):
        trio_ws.broadcast([], ["a", "b"])  # type: ignore[arg-type]


def test_max_backlog_is_checked() -> None:
    with pytest.raises(ValueError, match="max_backlog must be at least 1"):
        trio_ws.broadcast([], "a", max_backlog=0)


async def test_users_who_do_not_broadcast_get_no_task(autojump_clock: object) -> None:
    async with open_pairs(1) as pairs:
        pair = pairs[0]
        await pair.server.send("direct")
        assert await pair.client.recv() == "direct"
        from trio_ws import _broadcast

        assert pair.server not in _broadcast._backlogs


async def test_logs_at_warning(
    autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with open_pairs(1, buffer_size=16) as pairs:
        pair = pairs[0]
        pair.client_transport.pause_reading()
        for _ in range(3):
            trio_ws.broadcast([pair.server], "y" * 100, max_backlog=1)
            await trio.testing.wait_all_tasks_blocked()
        await pair.server.wait_closed()
    [record] = [r for r in caplog.records if "broadcast" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert record.name == "trio_ws.server"


async def test_overflow_before_the_drain_task_ran(autojump_clock: object) -> None:
    async with open_pairs(1) as pairs:
        pair = pairs[0]
        pair.client_transport.pause_reading()
        # Three calls in a row: the drain task has not run yet when the
        # second overflows the backlog, and the third skips the connection.
        for i in range(3):
            trio_ws.broadcast([pair.server], str(i), max_backlog=1)
        await pair.server.wait_closed()
        # The close frame went out; the silent client never answered, so
        # the closing handshake ran out of close_timeout.
        assert trio.current_time() == 10
        assert pair.server.close_code == 1006
        pair.client_transport.resume_reading()
        with pytest.raises(trio_ws.ConnectionClosedError) as info:
            await pair.client.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1008
