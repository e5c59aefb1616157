"""Test an application built on trio_ws, without sockets and without waiting.

:func:`trio_ws.testing.open_connection_pair` connects a client to your
handler over memory, with the real opening handshake. Under pytest-trio's
``autojump_clock`` fixture, trio's clock jumps ahead whenever every task
waits, so a test of a 5-second ticker runs in milliseconds and can assert
exact times. Run these tests with ``python -m pytest examples/test_ticker.py``
(pytest-trio installed, ``trio_mode = true``).
"""

from __future__ import annotations

import functools

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws.testing import open_connection_pair

# --- the application ------------------------------------------------------


async def ticker(ws: trio_ws.ServerConnection, interval: float = 5) -> None:
    """Send "tick N" every ``interval`` seconds once the client says "start"."""
    if await ws.recv() != "start":
        await ws.aclose(1008, "say start")
        return
    tick = 0
    while True:
        await trio.sleep(interval)
        tick += 1
        await ws.send(f"tick {tick}")


# --- its tests --------------------------------------------------------------


async def test_ticks_every_five_seconds(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection_pair(handler=ticker) as pair:
        start = trio.current_time()
        await pair.client.send("start")
        assert await pair.client.recv() == "tick 1"
        assert trio.current_time() - start == 5
        assert await pair.client.recv() == "tick 2"
        assert trio.current_time() - start == 10


async def test_rejects_other_commands(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection_pair(handler=ticker) as pair:
        await pair.client.send("stop")
        with pytest.raises(trio_ws.ConnectionClosedError) as closed:
            await pair.client.recv()
        assert closed.value.rcvd == trio_ws.Close(1008, "say start")


async def test_a_client_that_stops_reading_gets_ticks_late(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The transport can misbehave: here the client reads nothing for 12 s.
    async with open_connection_pair(handler=ticker) as pair:
        start = trio.current_time()
        await pair.client.send("start")
        pair.client_transport.pause_reading()
        await trio.sleep(12)
        pair.client_transport.resume_reading()
        assert await pair.client.recv() == "tick 1"
        assert await pair.client.recv() == "tick 2"
        assert trio.current_time() - start == 12


# --- an end-to-end test over a real socket ----------------------------------


async def test_ticker_over_a_real_socket() -> None:
    # No autojump_clock with real sockets: fail_after turns a hang into a failure.
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            server: trio_ws.Server = await nursery.start(
                functools.partial(
                    trio_ws.serve,
                    functools.partial(ticker, interval=0.01),
                    0,
                    host="127.0.0.1",
                )
            )
            async with trio_ws.connect(f"ws://127.0.0.1:{server.port}") as ws:
                await ws.send("start")
                assert await ws.recv() == "tick 1"
            nursery.cancel_scope.cancel()
