"""Interoperability with the websockets library (its trio implementation)
and with trio-websocket.

websockets' client runs against our server over the in-memory listener,
under virtual time; our client runs against websockets' server over loopback
sockets, since that server logs the socket name of its listeners.
Compression is on (the default of both) in both directions. trio-websocket
wraps any stream, so both directions run in memory, without compression,
which it does not offer.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
import trio_websocket
import websockets.exceptions
import websockets.frames
import websockets.trio.client
import websockets.trio.server

from trio_ws import ConnectionClosedError, ConnectionClosedOK, ServerConnection, connect

from .conftest import MemoryListener, route_connect
from .test_server import echo, start

# Half incompressible, half very compressible: deflate runs on both.
rng = random.Random(6455)
LARGE_TEXT = "".join(rng.choices("abcdefghij", k=1_500_000)) + "x" * 1_500_000
LARGE_BINARY = rng.randbytes(1_500_000) + b"\x00" * 1_500_000
MAX_SIZE = 2**22
#: What each compressing pair echoes; a list is one fragmented message.
MESSAGES: list[str | bytes | list[str]] = [
    "text ✓",
    b"\x00\x01\xff",
    LARGE_TEXT,
    LARGE_BINARY,
    ["frag", "mented"],
]


async def assert_echoes(
    send: Callable[[Any], Awaitable[None]],
    recv: Callable[[], Awaitable[object]],
    messages: list[str | bytes | list[str]],
) -> None:
    """Each message sent through ``send`` comes back whole from ``recv``."""
    for message in messages:
        await send(message)
        expected = "".join(message) if isinstance(message, list) else message
        assert await recv() == expected


async def their_client_close(
    nursery: trio.Nursery,
    listener: MemoryListener,
    handler: Callable[[ServerConnection], Awaitable[None]],
) -> websockets.frames.Close:
    """The close frame websockets' client receives from ``handler``."""
    await start(nursery, handler, listener)
    stream = await listener.connect()
    async with websockets.trio.client.connect(
        "ws://localhost/", stream=stream
    ) as theirs:
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as info:
            await theirs.recv()
    assert info.value.rcvd is not None
    return info.value.rcvd


# --- Their client, our server ----------------------------------------------------


async def test_their_client_our_server_messages(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    extensions: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        extensions.append(ws.request.headers["Sec-WebSocket-Extensions"])
        await echo(ws)

    await start(nursery, handler, listener, max_size=MAX_SIZE)
    stream = await listener.connect()
    async with websockets.trio.client.connect(
        "ws://localhost/", stream=stream, max_size=MAX_SIZE
    ) as theirs:
        assert [ext.name for ext in theirs.protocol.extensions] == [
            "permessage-deflate"
        ]
        await assert_echoes(theirs.send, theirs.recv, MESSAGES)
        assert await theirs.ping() is not None
    assert extensions[0].startswith("permessage-deflate")
    assert theirs.close_code == 1000


async def test_their_client_close_code_reaches_our_handler(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    closed: list[BaseException] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosedError as exc:
            closed.append(exc)

    await start(nursery, handler, listener)
    stream = await listener.connect()
    async with websockets.trio.client.connect(
        "ws://localhost/", stream=stream
    ) as theirs:
        await theirs.aclose(4000, "bye")
    await trio.testing.wait_all_tasks_blocked()
    assert [str(exc) for exc in closed] == [
        "received 4000 (private use) bye; then sent 4000 (private use) bye"
    ]


async def test_our_server_close_code_reaches_their_client(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.aclose(4001, "custom")

    rcvd = await their_client_close(nursery, listener, handler)
    assert (rcvd.code, rcvd.reason) == (4001, "custom")


async def test_our_handler_failure_reaches_their_client_as_1011(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    async def handler(ws: ServerConnection) -> None:
        raise RuntimeError("handler bug")

    rcvd = await their_client_close(nursery, listener, handler)
    assert rcvd.code == 1011


# --- Our client, their server ----------------------------------------------------


async def their_echo(ws: websockets.trio.server.ServerConnection) -> None:
    # recv() rather than `async for`: their iterator is an async generator,
    # which leaving by an exception would leave unfinalized.
    while True:
        try:
            message = await ws.recv()
        except websockets.exceptions.ConnectionClosedOK:
            return
        if message == "close 4002":
            await ws.aclose(4002, "as asked")
            return
        if message == "raise":
            raise RuntimeError("their handler bug")
        await ws.send(message)


async def test_our_client_their_server() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(
                    websockets.trio.server.serve,
                    their_echo,
                    0,
                    host="127.0.0.1",
                    max_size=MAX_SIZE,
                )
            )
            port = server.listeners[0].socket.getsockname()[1]
            uri = f"ws://127.0.0.1:{port}/"
            async with connect(uri, max_size=MAX_SIZE) as ws:
                assert ws.response is not None
                assert ws.response.headers["Sec-WebSocket-Extensions"].startswith(
                    "permessage-deflate"
                )
                await assert_echoes(ws.send, ws.recv, MESSAGES)
                assert await ws.ping() >= 0

            async with connect(uri) as ws:
                await ws.send("close 4002")
                with pytest.raises(ConnectionClosedError) as closed:
                    await ws.recv()
            assert str(closed.value) == (
                "received 4002 (private use) as asked; then sent 4002 (private use) as asked"
            )

            async with connect(uri) as ws:
                await ws.send("raise")
                with pytest.raises(ConnectionClosedError) as closed:
                    await ws.recv()
            assert closed.value.code == 1011

            async with connect(uri) as ws:
                await ws.aclose(1001)
                with pytest.raises(ConnectionClosedOK):
                    await ws.recv()
            await server.aclose()


# --- trio-websocket, over memory streams -------------------------------------------
# It offers no compression, so these connections run without any extension.


async def test_trio_websocket_client_our_server(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    closed: list[BaseException] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await echo(ws)
        except ConnectionClosedError as exc:
            closed.append(exc)

    await start(nursery, handler, listener)
    stream = await listener.connect()
    async with trio.open_nursery() as theirs_nursery:
        theirs = await trio_websocket.wrap_client_stream(
            theirs_nursery,
            stream,  # type: ignore[arg-type]
            "localhost",
            "/chat?room=1",
            subprotocols=["chat"],
            max_message_size=MAX_SIZE,
        )
        assert theirs.subprotocol is None  # our server supports none
        await assert_echoes(
            theirs.send_message,
            theirs.get_message,
            ["text ✓", b"\x00\x01\xff", LARGE_BINARY[:1_000_000]],
        )
        await theirs.aclose(4000, "bye")
    await trio.testing.wait_all_tasks_blocked()
    assert [str(exc) for exc in closed] == [
        "received 4000 (private use) bye; then sent 4000 (private use) bye"
    ]


async def test_our_client_trio_websocket_server(
    nursery: trio.Nursery, autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths: list[str] = []

    async def open_tcp_stream(host: str, port: int) -> trio.abc.Stream:
        client, server = trio.testing.memory_stream_pair()
        nursery.start_soon(their_server, server)
        return client

    async def their_server(stream: trio.abc.Stream) -> None:
        async with trio.open_nursery() as theirs_nursery:
            request = await trio_websocket.wrap_server_stream(
                theirs_nursery, stream, max_message_size=MAX_SIZE
            )
            paths.append(request.path)
            theirs = await request.accept(subprotocol="chat")
            try:
                while True:
                    message = await theirs.get_message()
                    if message == "close 4003":
                        await theirs.aclose(4003, "as asked")
                        return
                    await theirs.send_message(message)
            except trio_websocket.ConnectionClosed:
                return

    route_connect(monkeypatch, open_tcp_stream)
    async with connect("ws://localhost/x?y=1", subprotocols=["chat"]) as ws:
        assert ws.subprotocol == "chat"
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        await assert_echoes(
            ws.send, ws.recv, ["text ✓", b"\x00\x01\xff", LARGE_TEXT[:1_000_000]]
        )
        await ws.send("close 4003")
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
    assert str(info.value) == (
        "received 4003 (private use) as asked; then sent 4003 (private use) as asked"
    )
    assert paths == ["/x?y=1"]
