"""The floor: wsproto driven directly on a trio SocketStream.

No extra tasks, no queues, no keepalive, no compression: one coroutine reads
64 KiB chunks, feeds wsproto and returns complete messages. This is the least
work any wsproto-based library must do, so it is the reference for ratios.
"""

from __future__ import annotations

import functools
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from importlib.metadata import version
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from .base import Adapter, Conn, Handler

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

RECEIVE_SIZE = 65536
CLOSE_TIMEOUT = 5.0


class FloorClosed(Exception):
    """The connection is closed (close frame received or transport lost)."""


class FloorConn:
    """A connection: ``send`` and ``recv`` straight on wsproto and the stream."""

    __slots__ = ("_stream", "_ws")

    def __init__(self, stream: trio.SocketStream, ws: WSConnection) -> None:
        self._stream = stream
        self._ws = ws

    async def send(self, message: str | bytes, /) -> None:
        event = (
            TextMessage(data=message)
            if isinstance(message, str)
            else BytesMessage(data=message)
        )
        await self._stream.send_all(self._ws.send(event))

    async def recv(self) -> str | bytes:
        ws = self._ws
        parts: list[Any] = []
        while True:
            # Leaving this generator early is safe: wsproto parses frames
            # lazily from its buffer, so the rest waits for the next call.
            for event in ws.events():
                if isinstance(event, Message):
                    data: str | bytes = event.data
                    if not event.message_finished:
                        parts.append(data)
                    elif not parts:
                        return data
                    else:
                        parts.append(data)
                        return (
                            "".join(parts) if isinstance(data, str) else b"".join(parts)
                        )
                elif isinstance(event, Ping):
                    await self._stream.send_all(ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    await self._closed_by_peer(event)
            data = await self._stream.receive_some(RECEIVE_SIZE)
            if not data:
                await self._stream.aclose()
                raise FloorClosed(1006)
            ws.receive_data(data)

    async def _closed_by_peer(self, event: CloseConnection) -> None:
        if self._ws.state is ConnectionState.REMOTE_CLOSING:
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._stream.send_all(self._ws.send(event.response()))
        await self._stream.aclose()
        raise FloorClosed(event.code)

    async def aclose(self) -> None:
        """Closing handshake from our side (bounded), then close the stream."""
        ws = self._ws
        try:
            with trio.move_on_after(CLOSE_TIMEOUT):
                if ws.state is ConnectionState.OPEN:
                    await self._stream.send_all(ws.send(CloseConnection(code=1000)))
                while ws.state is ConnectionState.LOCAL_CLOSING:
                    await self.recv()
        except (FloorClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await self._stream.aclose()


async def _server_handshake(stream: trio.SocketStream) -> tuple[WSConnection, str]:
    ws = WSConnection(ConnectionType.SERVER)
    while True:
        data = await stream.receive_some(RECEIVE_SIZE)
        if not data:
            raise FloorClosed(1006)
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, Request):
                await stream.send_all(ws.send(AcceptConnection()))
                return ws, event.target
            if isinstance(event, RejectConnection):
                raise FloorClosed(1002)


async def _client_handshake(
    stream: trio.SocketStream, host: str, target: str
) -> WSConnection:
    ws = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(ws.send(Request(host=host, target=target)))
    while True:
        data = await stream.receive_some(RECEIVE_SIZE)
        if not data:
            raise FloorClosed(1006)
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                return ws
            if isinstance(event, RejectConnection):
                raise FloorClosed(1002)


class FloorAdapter(Adapter):
    name = "floor"
    closed = (FloorClosed, trio.BrokenResourceError, trio.ClosedResourceError)

    def version(self) -> str:
        return f"wsproto {version('wsproto')}"

    async def serve(
        self,
        handler: Handler,
        host: str,
        port: int,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async def on_stream(stream: trio.SocketStream) -> None:
            try:
                ws, path = await _server_handshake(stream)
                conn = FloorConn(stream, ws)
                try:
                    await handler(conn, path)
                finally:
                    await conn.aclose()
            except self.closed:
                await stream.aclose()

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, on_stream, port, host=host)
            )
            task_status.started(listeners[0].socket.getsockname()[1])

    def connect(self, uri: str) -> AbstractAsyncContextManager[Conn]:
        return _connect(uri)


@asynccontextmanager
async def _connect(uri: str) -> AsyncIterator[Conn]:
    parts = urlsplit(uri)
    assert parts.hostname is not None
    assert parts.port is not None
    target = parts.path or "/"
    stream = await trio.open_tcp_stream(parts.hostname, parts.port)
    try:
        ws = await _client_handshake(stream, parts.netloc, target)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    conn = FloorConn(stream, ws)
    try:
        yield conn
    finally:
        await conn.aclose()
