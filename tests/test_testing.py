"""trio_ws.testing: memory transports, connection pairs, misbehaving peers."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws.testing import (
    ConnectionPair,
    MemoryTransport,
    memory_transport_pair,
    open_connection_pair,
)

pytest_plugins = ["trio_ws.testing.pytest_plugin"]


# --- MemoryTransport -------------------------------------------------------


async def test_transport_carries_bytes_both_ways() -> None:
    left, right = memory_transport_pair()
    await left.send_all(b"hello")
    await right.send_all(bytearray(b"back"))
    assert await right.receive_some() == b"hello"
    assert await left.receive_some(2) == b"ba"
    assert await left.receive_some() == b"ck"


async def test_transport_writes_wait_for_room(autojump_clock: object) -> None:
    left, right = memory_transport_pair(4)
    done = trio.Event()

    async def write() -> None:
        await left.send_all(b"0123456789")
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        assert await right.receive_some() == b"0123"
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        assert await right.receive_some() == b"4567"
        assert await right.receive_some() == b"89"
        await trio.testing.wait_all_tasks_blocked()
        assert done.is_set()


async def test_transport_wait_send_all_might_not_block(autojump_clock: object) -> None:
    left, right = memory_transport_pair(2)
    await left.send_all(b"ab")

    async def drain_later() -> None:
        await trio.sleep(3)
        await right.receive_some(1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain_later)
        await left.wait_send_all_might_not_block()
    assert trio.current_time() == 3
    await right.aclose()
    await left.wait_send_all_might_not_block()  # closed: returns at once


async def test_transport_pause_and_resume(autojump_clock: object) -> None:
    left, right = memory_transport_pair()
    right.pause_reading()
    await left.send_all(b"x")

    async def resume_later() -> None:
        await trio.sleep(5)
        right.resume_reading()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(resume_later)
        assert await right.receive_some() == b"x"
    assert trio.current_time() == 5


async def test_transport_throttle(autojump_clock: object) -> None:
    left, right = memory_transport_pair()
    right.throttle_reading(3, 0.5)
    await left.send_all(b"abcdefgh")
    chunks = [await right.receive_some() for _ in range(3)]
    assert chunks == [b"abc", b"def", b"gh"]
    assert trio.current_time() == 1.0
    right.resume_reading()
    await left.send_all(b"ijklmn")
    assert await right.receive_some() == b"ijklmn"


@pytest.mark.parametrize(("max_bytes", "interval"), [(0, 1.0), (1, -1.0)])
def test_transport_throttle_arguments(max_bytes: int, interval: float) -> None:
    left, _ = memory_transport_pair()
    with pytest.raises(ValueError, match="max_bytes >= 1 and interval >= 0"):
        left.throttle_reading(max_bytes, interval)


async def test_transport_max_bytes_is_checked() -> None:
    left, _ = memory_transport_pair()
    with pytest.raises(ValueError, match="max_bytes must be at least 1"):
        await left.receive_some(0)


def test_transport_buffer_size_is_checked() -> None:
    with pytest.raises(ValueError, match="buffer_size must be at least 1"):
        memory_transport_pair(0)


async def test_transport_reset_breaks_both_ends(autojump_clock: object) -> None:
    left, right = memory_transport_pair(4)
    await left.send_all(b"lost")
    right.pause_reading()

    async def blocked_write() -> None:
        with pytest.raises(trio.BrokenResourceError, match="connection reset"):
            await left.send_all(b"more")

    async def blocked_read() -> None:
        with pytest.raises(trio.BrokenResourceError, match="connection reset"):
            await right.receive_some()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked_write)
        nursery.start_soon(blocked_read)
        await trio.testing.wait_all_tasks_blocked()
        right.reset()
    for end in (left, right):
        with pytest.raises(trio.BrokenResourceError):
            await end.receive_some()
        with pytest.raises(trio.BrokenResourceError):
            await end.send_all(b"x")


async def test_transport_close(autojump_clock: object) -> None:
    left, right = memory_transport_pair()
    await left.send_all(b"last words")
    await left.aclose()
    await left.aclose()  # idempotent
    assert await right.receive_some() == b"last words"
    assert await right.receive_some() == b""
    with pytest.raises(trio.BrokenResourceError):
        await right.send_all(b"anyone?")
    with pytest.raises(trio.ClosedResourceError, match="this transport is closed"):
        await left.receive_some()
    with pytest.raises(trio.ClosedResourceError):
        await left.send_all(b"x")


async def test_transport_close_wakes_a_paused_reader(autojump_clock: object) -> None:
    left, _ = memory_transport_pair()
    left.pause_reading()
    async with trio.open_nursery() as nursery:

        async def read() -> None:
            with pytest.raises(trio.ClosedResourceError):
                await left.receive_some()

        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()
        await left.aclose()


async def test_transport_conflicts(autojump_clock: object) -> None:
    left, _ = memory_transport_pair(1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(left.receive_some)  # nothing comes: it waits
        nursery.start_soon(left.send_all, b"ab")  # no room for "b": it waits
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError, match="another task is reading"):
            await left.receive_some()
        with pytest.raises(trio.BusyResourceError, match="another task is writing"):
            await left.send_all(b"c")
        nursery.cancel_scope.cancel()


async def test_transport_cancelled_read_consumes_nothing(
    autojump_clock: object,
) -> None:
    left, right = memory_transport_pair()
    with trio.move_on_after(1):
        await right.receive_some()
    await left.send_all(b"kept")
    with trio.CancelScope() as scope:
        scope.cancel()
        await right.receive_some()
    assert await right.receive_some() == b"kept"


async def test_transport_cancelled_write_keeps_its_prefix(
    autojump_clock: object,
) -> None:
    left, right = memory_transport_pair(3)
    with trio.move_on_after(1):
        await left.send_all(b"abcdef")
    assert await right.receive_some() == b"abc"
    with trio.CancelScope() as scope:
        scope.cancel()
        await left.send_all(b"never")
    right.pause_reading()
    right.resume_reading()
    await left.send_all(b"g")
    assert await right.receive_some() == b"g"


# --- open_connection_pair ----------------------------------------------------


async def test_pair_talks_both_ways(autojump_clock: object) -> None:
    async with open_connection_pair("/chat?room=1", subprotocols=["v1"]) as pair:
        assert isinstance(pair.client, trio_ws.ClientConnection)
        assert isinstance(pair.server, trio_ws.ServerConnection)
        assert isinstance(pair.client_transport, MemoryTransport)
        await pair.client.send("hi")
        assert await pair.server.recv() == "hi"
        await pair.server.send(b"\x00")
        assert await pair.client.recv() == b"\x00"
        assert pair.server.request is not None
        assert pair.server.request.path == "/chat?room=1"
        assert pair.client.subprotocol == pair.server.subprotocol == "v1"
        assert pair.client.response is not None
        assert "permessage-deflate" in pair.client.response.headers.get(
            "Sec-WebSocket-Extensions", ""
        )
    assert pair.client.close_code == pair.server.close_code == 1000
    assert trio.current_time() == 0


async def test_pair_without_compression(autojump_clock: object) -> None:
    async with open_connection_pair(compression=None) as pair:
        assert pair.client.response is not None
        assert "Sec-WebSocket-Extensions" not in pair.client.response.headers


async def test_pair_block_raising_closes_1011(autojump_clock: object) -> None:
    with pytest.raises(KeyError, match="oops"):
        async with open_connection_pair() as pair:
            raise KeyError("oops")
    assert pair.server.close_code == 1011


async def test_pair_cancelled_before(autojump_clock: object) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        async with open_connection_pair():
            pytest.fail("must not open")  # pragma: no cover
    assert scope.cancelled_caught


async def test_pair_cancelled_while_opening(autojump_clock: object) -> None:
    async def stall(ws: trio_ws.ServerConnection, request: trio_ws.Request) -> None:
        await trio.sleep_forever()

    with trio.move_on_after(3) as scope:
        async with open_connection_pair(process_request=stall):
            pytest.fail("must not open")  # pragma: no cover
    assert scope.cancelled_caught
    assert trio.current_time() == 3


async def test_pair_cancelled_in_the_block_closes_1001(autojump_clock: object) -> None:
    with trio.move_on_after(2):
        async with open_connection_pair() as pair:
            await pair.client.recv()
    assert pair.server.close_code == 1001
    assert trio.current_time() == 2


async def test_pair_open_timeout(autojump_clock: object) -> None:
    async def stall(ws: trio_ws.ServerConnection, request: trio_ws.Request) -> None:
        await trio.sleep_forever()

    with pytest.raises(TimeoutError):
        async with open_connection_pair(process_request=stall, open_timeout=4):
            pytest.fail("must not open")  # pragma: no cover
    assert trio.current_time() == 4


async def test_pair_runs_a_handler(autojump_clock: object) -> None:
    async def greet(ws: trio_ws.ServerConnection) -> None:
        await ws.send("welcome")

    async with open_connection_pair(handler=greet) as pair:
        assert await pair.client.recv() == "welcome"
        with pytest.raises(trio_ws.ConnectionClosedOK):
            await pair.client.recv()
    assert pair.server.close_code == 1000


async def test_pair_handler_that_never_returns_is_cancelled(
    autojump_clock: object,
) -> None:
    cancelled = False

    async def stubborn(ws: trio_ws.ServerConnection) -> None:
        nonlocal cancelled
        try:
            await trio.sleep_forever()
        finally:
            cancelled = True

    async with open_connection_pair(handler=stubborn, close_timeout=5) as pair:
        pass
    # The closing handshake finished at once; the handler got close_timeout.
    assert pair.client.close_code == pair.server.close_code == 1000
    assert cancelled
    assert trio.current_time() == 5


# --- Misbehaving peers -------------------------------------------------------


async def test_silent_client_fails_the_keepalive(autojump_clock: object) -> None:
    async with open_connection_pair(ping_interval=20, ping_timeout=20) as pair:
        pair.client_transport.pause_reading()
        with pytest.raises(trio_ws.ConnectionClosedError) as info:
            await pair.server.recv()
        assert str(info.value) == (
            "sent 1011 (internal error) keepalive ping timeout; no close frame received"
        )
        assert trio.current_time() == 40
        pair.client_transport.resume_reading()


async def test_resetting_client(autojump_clock: object) -> None:
    async with open_connection_pair() as pair:
        pair.client_transport.reset()
        with pytest.raises(trio_ws.ConnectionClosedError) as info:
            await pair.server.recv()
        assert str(info.value) == "no close frame received or sent"
        assert isinstance(info.value.__cause__, trio.BrokenResourceError)


async def test_slow_reader_client(autojump_clock: object) -> None:
    async with open_connection_pair(compression=None) as pair:
        pair.client_transport.throttle_reading(1000, 0.5)
        await pair.server.send(b"x" * 9996)  # 10000 bytes with the header
        assert await pair.client.recv() == b"x" * 9996
        # Ten reads, the first at once: nine intervals.
        assert trio.current_time() == 4.5


# --- pytest plugin ---------------------------------------------------------


async def test_fixture_ws_pair(ws_pair: ConnectionPair) -> None:
    await ws_pair.client.send("fixture")
    assert await ws_pair.server.recv() == "fixture"


async def test_fixture_silent_client(
    silent_client: ConnectionPair, autojump_clock: object
) -> None:
    # Neither side gets a pong: both keepalives fail after 20 + 20 seconds.
    await silent_client.server.send("unheard")
    with pytest.raises(trio_ws.ConnectionClosedError):
        await silent_client.server.recv()
    await silent_client.server.wait_closed()
    assert trio.current_time() == 40
    assert silent_client.server.close_code == 1006


async def test_fixture_slow_client(
    slow_client: ConnectionPair, autojump_clock: object
) -> None:
    # Incompressible, so that the frame is a little over 4096 bytes.
    payload = random.Random(0).randbytes(4092)
    await slow_client.server.send(payload)
    assert await slow_client.client.recv() == payload
    # Five reads of 1024 bytes or less: four intervals of 0.1 second.
    assert trio.current_time() == pytest.approx(0.4)


async def test_fixture_resetting_client(resetting_client: ConnectionPair) -> None:
    with pytest.raises(trio_ws.ConnectionClosedError):
        await resetting_client.server.recv()


def test_importing_trio_ws_does_not_import_pytest() -> None:
    code = (
        "import sys, trio_ws, trio_ws.testing; "
        "assert 'pytest' not in sys.modules, 'pytest imported'; "
        "assert 'trio_ws.testing' not in __import__('trio_ws').__all__"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
