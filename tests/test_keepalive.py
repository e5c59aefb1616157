"""Keepalive: heartbeat pings, pong timeouts, and flow control pausing the clock."""

from __future__ import annotations

import logging
import os

import pytest
import trio
import trio.testing

from trio_ws import (
    ClientConnection,
    Connection,
    ConnectionClosedError,
    ServerConnection,
    State,
)
from trio_ws._keepalive import Pings, PingWaiter, PongClock, control_payload

from .conftest import Peer, open_connection
from .helpers import OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, close_payload

KEEPALIVE_ERROR = (
    "sent 1011 (internal error) keepalive ping timeout; no close frame received"
)
#: The close frame a connection sends when a pong does not come in time.
KEEPALIVE_CLOSE = (OP_CLOSE, True, 0, close_payload(1011, "keepalive ping timeout"))


async def assert_keepalive_error(ws: Connection) -> None:
    """``recv`` raises the error of a keepalive timeout."""
    with pytest.raises(ConnectionClosedError) as info:
        await ws.recv()
    assert str(info.value) == KEEPALIVE_ERROR


def assert_logged_timeout(caplog: pytest.LogCaptureFixture, ws: Connection) -> None:
    """The timeout was logged once at INFO, and nothing at WARNING or above."""
    records = [r for r in caplog.records if "keepalive" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.INFO, f"keepalive ping timeout; failing connection {ws.id}")
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def receive_ping(peer: Peer) -> bytes:
    opcode, fin, rsv, payload = await peer.receive_frame()
    assert (opcode, fin, rsv) == (OP_PING, True, 0)
    assert len(payload) == 4
    return payload


async def test_pings_every_interval(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(connection_class, ping_interval=20, ping_timeout=10) as (
        ws,
        peer,
    ):
        payloads = set()
        for i, rtt in enumerate([1, 3, 0.5], start=1):
            payload = await receive_ping(peer)
            assert trio.current_time() == 20 * i
            payloads.add(payload)
            await trio.sleep(rtt)
            await peer.send_frame(OP_PONG, payload)
            await trio.testing.wait_all_tasks_blocked()
            assert ws.latency == rtt
        assert len(payloads) == 3  # a fresh payload each time
        assert ws.state is State.OPEN


async def test_slow_pong_delays_the_next_ping(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A pong slower than ping_interval: the next ping follows it at once.
    async with open_connection(ServerConnection, ping_interval=5, ping_timeout=20) as (
        ws,
        peer,
    ):
        payload = await receive_ping(peer)
        assert trio.current_time() == 5
        await trio.sleep(12)
        await peer.send_frame(OP_PONG, payload)
        await receive_ping(peer)
        assert trio.current_time() == 17
        assert ws.latency == 12


async def test_no_pong_fails_the_connection(
    autojump_clock: trio.testing.MockClock,
    connection_class: type[Connection],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    async with open_connection(connection_class, ping_interval=20, ping_timeout=15) as (
        ws,
        peer,
    ):

        async def pending_recv() -> None:
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert trio.current_time() == 35
            assert str(info.value) == KEEPALIVE_ERROR
            assert info.value.code == 1011

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pending_recv)
            await receive_ping(peer)
            assert trio.current_time() == 20
            # Silence: at exactly ping_interval + ping_timeout, a close frame
            # and the TCP close, with no close_timeout wait.
            assert await peer.receive_frame() == KEEPALIVE_CLOSE
            await peer.receive_eof()
            assert trio.current_time() == 35
        assert ws.state is State.CLOSED
        assert ws.close_code == 1006
        for operation in (ws.recv(), ws.send("x"), ws.ping(), ws.pong()):
            with pytest.raises(ConnectionClosedError) as info:
                await operation
            assert str(info.value) == KEEPALIVE_ERROR
            assert info.value.code == 1011
    assert_logged_timeout(caplog, ws)


async def test_no_pong_with_a_stuck_send(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The peer stopped reading in the middle of a frame: no close frame can
    # follow it, the transport closes at once.
    async with open_connection(ClientConnection, ping_interval=20, ping_timeout=15) as (
        ws,
        peer,
    ):
        payload = await receive_ping(peer)
        await peer.send_frame(OP_PONG, payload)
        peer.stall_writes(3)

        async def stuck() -> None:
            with pytest.raises(ConnectionClosedError) as info:
                await ws.send("stuck for good")
            assert str(info.value) == KEEPALIVE_ERROR

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stuck)
            await ws.wait_closed()
        assert trio.current_time() == 55  # no ping could go out at 40
        assert (await peer.stream.receive_some())[:2] == b"\x81\x8e"
        await peer.receive_eof()


async def test_no_pong_waits_for_a_write_in_progress(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    # The timeout strikes while a send is being written over a slow link:
    # the write ends, then the 1011 close frame goes out (best effort).
    async with open_connection(connection_class, ping_interval=20, ping_timeout=15) as (
        ws,
        peer,
    ):
        await receive_ping(peer)
        send_stream = peer.ws_stream.send_stream  # type: ignore[attr-defined]
        pump = send_stream.send_all_hook

        async def slow_link() -> None:
            send_stream.send_all_hook = pump
            await trio.sleep(0.75)
            await pump()

        await trio.sleep_until(34.5)
        send_stream.send_all_hook = slow_link
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.send, "in progress")
            assert await peer.receive_frame() == (OP_TEXT, True, 0, b"in progress")
            assert await peer.receive_frame() == KEEPALIVE_CLOSE
            await peer.receive_eof()
            assert trio.current_time() == 35.25
        await assert_keepalive_error(ws)


async def test_no_pong_then_the_write_in_progress_is_cut(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The failing heartbeat waits for a send that its caller then cancels
    # part-way: no close frame may follow the partial frame.
    async with open_connection(ServerConnection, ping_interval=20, ping_timeout=15) as (
        ws,
        peer,
    ):
        await receive_ping(peer)
        await trio.sleep_until(34.5)
        peer.stall_writes(3)

        async def cut_send() -> None:
            with trio.move_on_after(0.75):
                await ws.send("cut part-way")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cut_send)
            await ws.wait_closed()
            assert trio.current_time() == 35.25
        assert await peer.stream.receive_some() == b"\x81\x0cc"
        await peer.receive_eof()
        await assert_keepalive_error(ws)


async def test_ping_timeout_cuts_the_ping_part_way(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # The ping itself hangs half-written: no close frame can follow it.
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    async with open_connection(ServerConnection, ping_interval=20, ping_timeout=15) as (
        ws,
        peer,
    ):
        peer.stall_writes(3)
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert trio.current_time() == 35
        assert str(info.value) == "no close frame received or sent"
        assert info.value.code == 1006
        cause = info.value.__cause__
        assert isinstance(cause, TimeoutError)
        assert str(cause) == "keepalive ping timeout"
        assert isinstance(cause.__cause__, trio.BrokenResourceError)
        data = await peer.stream.receive_some()
        assert (len(data), data[:2]) == (3, b"\x89\x04")
        await peer.receive_eof()
        assert ws.state is State.CLOSED
    assert_logged_timeout(caplog, ws)


async def test_random_payloads_skip_pings_still_waiting(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Four random bytes collide once in 2**32: forced here, both ways.
    draws = iter([b"user", b"user", b"beat", b"beat", b"next"])
    urandom = os.urandom
    async with open_connection(ServerConnection, ping_interval=20, ping_timeout=15) as (
        ws,
        peer,
    ):
        monkeypatch.setattr(os, "urandom", lambda n: next(draws, None) or urandom(n))
        rtts: list[float] = []

        async def user_ping() -> None:
            rtts.append(await ws.ping())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(user_ping)
            assert await receive_ping(peer) == b"user"
            # The heartbeat's first draw is the waiting user ping's payload.
            assert await receive_ping(peer) == b"beat"
            assert trio.current_time() == 20
            # And a user ping's first draw is the heartbeat's.
            nursery.start_soon(user_ping)
            assert await receive_ping(peer) == b"next"
            await peer.send_frame(OP_PONG, b"next")
        assert sorted(rtts) == [0, 20]
        assert ws.state is State.OPEN


async def test_ping_timeout_none_waits_for_the_pong(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(
        ServerConnection, ping_interval=10, ping_timeout=None
    ) as (ws, peer):
        payload = await receive_ping(peer)
        await trio.sleep(1000)
        assert ws.state is State.OPEN
        assert len(ws._pings) == 1  # one ping at a time, not one per interval
        await peer.send_frame(OP_PONG, payload)
        await receive_ping(peer)
        assert trio.current_time() == 1010
        assert ws.latency == 1000


async def test_ping_interval_none_sends_no_pings(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(
        ServerConnection, ping_interval=None, ping_timeout=1
    ) as (ws, peer):
        await trio.sleep(10_000)
        await ws.send("first frame")
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"first frame")
        assert ws.state is State.OPEN


async def test_heartbeat_ends_with_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(ServerConnection, ping_interval=10, ping_timeout=5) as (
        ws,
        peer,
    ):
        await peer.send_close(1000)
        assert await peer.receive_frame() == (OP_CLOSE, True, 0, close_payload(1000))
        await peer.receive_eof()
        await trio.sleep(100)  # no ping, no error
        assert ws.close_code == 1000


async def test_pong_timeout_during_the_closing_handshake(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The pong deadline passes while aclose waits for the peer's close
    # frame: close_timeout, not the keepalive, ends the connection.
    async with open_connection(
        ServerConnection, ping_interval=10, ping_timeout=5, close_timeout=20
    ) as (ws, peer):
        await receive_ping(peer)
        await ws.aclose()
        assert trio.current_time() == 30
        assert await peer.receive_frame() == (OP_CLOSE, True, 0, close_payload(1000))
        await peer.receive_eof()
        assert ws.close_code == 1006


# --- promise 8: a paused reader stops the pong clock ---------------------------------


async def fill_queue(peer: Peer, count: int) -> None:
    await peer.send(
        b"".join(peer.frame(OP_TEXT, str(i).encode()) for i in range(count))
    )


async def test_pong_clock_stopped_while_paused_before_the_ping(
    autojump_clock: trio.testing.MockClock, connection_class: type[Connection]
) -> None:
    async with open_connection(
        connection_class, ping_interval=10, ping_timeout=5, max_queue=2
    ) as (ws, peer):
        await fill_queue(peer, 2)  # the reader pauses at once
        payload = await receive_ping(peer)
        assert trio.current_time() == 10
        await peer.send_frame(OP_PONG, payload)  # unread behind the messages
        await trio.sleep(90)
        assert ws.state is State.OPEN  # not held against the peer
        assert await ws.recv() == "0"
        assert await ws.recv() == "1"  # resumes reading: the pong arrives
        await trio.testing.wait_all_tasks_blocked()
        assert ws.latency == 90
        assert ws.state is State.OPEN


async def test_pong_clock_resumes_with_the_time_left(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(
        ServerConnection, ping_interval=10, ping_timeout=5, max_queue=2
    ) as (ws, peer):
        await receive_ping(peer)
        await trio.sleep(2)  # 3 seconds of ping_timeout left
        await fill_queue(peer, 2)
        await peer.send_frame(OP_TEXT, b"unread")
        await trio.sleep(50)
        assert ws.state is State.OPEN
        assert trio.current_time() == 62
        assert await ws.recv() == "0"
        assert await ws.recv() == "1"  # the clock restarts with 3 seconds
        await ws.wait_closed()
        assert trio.current_time() == 65
        assert await peer.receive_frame() == KEEPALIVE_CLOSE
        assert await ws.recv() == "unread"  # messages that arrived are kept
        await assert_keepalive_error(ws)


async def test_pong_clock_starts_when_paused_reader_resumes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(
        ServerConnection, ping_interval=10, ping_timeout=5, max_queue=1
    ) as (ws, peer):
        await fill_queue(peer, 1)
        await receive_ping(peer)
        await trio.sleep(40)
        assert await ws.recv() == "0"
        await ws.wait_closed()
        assert trio.current_time() == 55  # resumed at 50, plus ping_timeout


# --- the bookkeeping in _keepalive.py --------------------------------------------------


def test_control_payload() -> None:
    assert control_payload("é") == b"\xc3\xa9"
    assert control_payload(memoryview(b"ab")) == b"ab"
    assert control_payload(b"x" * 125) == b"x" * 125
    assert len(control_payload(None)) == 4
    with pytest.raises(
        ValueError, match="ping and pong payloads are at most 125 bytes"
    ):
        control_payload(b"x" * 126)


async def test_pings_acknowledge_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pings = Pings()
    first, second, third = PingWaiter(), PingWaiter(), PingWaiter()
    pings.add(b"1", first)
    await trio.sleep(1)
    pings.add(b"2", second)
    pings.add(b"3", third)
    with pytest.raises(
        RuntimeError, match="already waiting for a pong with the same data"
    ):
        pings.add(b"2", PingWaiter())
    await trio.sleep(2)
    assert pings.acknowledge(b"unknown") is None
    assert pings.acknowledge(b"2") == 2
    assert (first.rtt, second.rtt, third.rtt) == (3, 2, None)
    assert first.event.is_set()
    assert second.event.is_set()
    assert len(pings) == 1
    pings.end()
    assert third.event.is_set()
    assert third.rtt is None
    assert len(pings) == 0


async def test_pings_forget_only_their_own() -> None:
    pings = Pings()
    old, new = PingWaiter(), PingWaiter()
    pings.forget(old)  # never added: nothing to forget
    pings.add(b"p", old)
    pings.forget(old)
    pings.add(b"p", new)
    pings.forget(old)  # a late forget leaves the new ping alone
    assert len(pings) == 1


async def test_pong_clock(autojump_clock: trio.testing.MockClock) -> None:
    clock = PongClock()
    clock.pause()  # not running: nothing to stop
    clock.resume()
    with clock.running(10, paused=False) as scope:
        await trio.sleep(4)
        clock.pause()
        await trio.sleep(100)
        clock.resume()
        await trio.sleep_forever()
    assert scope.cancelled_caught
    assert trio.current_time() == 110
    with clock.running(10, paused=True) as scope:
        await trio.sleep(50)
        clock.resume()
        await trio.sleep_forever()
    assert trio.current_time() == 170
