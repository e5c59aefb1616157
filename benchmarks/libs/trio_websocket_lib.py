"""trio-websocket (trio_websocket), at its defaults: no compression, no keepalive."""

from __future__ import annotations

import functools
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import version
from typing import TYPE_CHECKING

import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    WebSocketRequest,
    open_websocket_url,
    serve_websocket,
)

from .base import Adapter, Conn, Handler

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class _Conn:
    """Binds trio-websocket's method names to ``send``/``recv`` (no extra call)."""

    __slots__ = ("recv", "send")

    def __init__(self, ws: WebSocketConnection) -> None:
        self.send = ws.send_message
        self.recv = ws.get_message


class TrioWebsocketAdapter(Adapter):
    name = "trio-websocket"
    closed = (ConnectionClosed,)

    def version(self) -> str:
        return f"trio-websocket {version('trio-websocket')}"

    async def serve(
        self,
        handler: Handler,
        host: str,
        port: int,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async def on_request(request: WebSocketRequest) -> None:
            ws = await request.accept()
            await handler(_Conn(ws), request.path)

        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(serve_websocket, on_request, host, port, None)
            )
            task_status.started(server.port)

    def connect(self, uri: str) -> AbstractAsyncContextManager[Conn]:
        return _connect(uri)


@asynccontextmanager
async def _connect(uri: str) -> AsyncIterator[Conn]:
    async with open_websocket_url(uri) as ws:
        yield _Conn(ws)
