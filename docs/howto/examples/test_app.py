"""Testing an application's handler without sockets, with trio_ws.testing."""

from __future__ import annotations

import pytest
import trio

import trio_ws
from trio_ws.testing import ConnectionPair, open_connection_pair

pytest_plugins = ["trio_ws.testing.pytest_plugin"]


async def shout(ws: trio_ws.ServerConnection) -> None:
    """The application's handler: answers every message in upper case."""
    async for message in ws:
        await ws.send(str(message).upper())


async def test_shout(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection_pair(handler=shout) as pair:
        await pair.client.send("hello")
        assert await pair.client.recv() == "HELLO"


async def test_keepalive_drops_a_silent_client(
    silent_client: ConnectionPair, autojump_clock: trio.testing.MockClock
) -> None:
    # The client stopped reading: no pong comes back, and after ping_interval
    # (20 s) plus ping_timeout (20 s) of virtual time the server gives up.
    with pytest.raises(trio_ws.ConnectionClosedError):
        await silent_client.server.recv()
    assert trio.current_time() == 40


async def test_client_reset(ws_pair: ConnectionPair) -> None:
    ws_pair.client_transport.reset()
    with pytest.raises(trio_ws.ConnectionClosedError) as info:
        await ws_pair.server.recv()
    assert str(info.value) == "no close frame received or sent"
