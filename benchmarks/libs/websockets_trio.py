"""websockets, its trio flavour (websockets.trio), compression and keepalive off."""

from __future__ import annotations

import functools
from importlib.metadata import version
from typing import TYPE_CHECKING

import trio
from websockets.exceptions import ConnectionClosed
from websockets.trio.client import connect
from websockets.trio.server import ServerConnection, serve

from .base import Adapter, Conn, Handler

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager


class WebsocketsAdapter(Adapter):
    name = "websockets"
    closed = (ConnectionClosed,)

    def version(self) -> str:
        return f"websockets {version('websockets')} (websockets.trio)"

    async def serve(
        self,
        handler: Handler,
        host: str,
        port: int,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async def on_connection(ws: ServerConnection) -> None:
            assert ws.request is not None
            await handler(ws, ws.request.path)

        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(
                    serve,
                    on_connection,
                    port,
                    host=host,
                    compression=None,
                    ping_interval=None,
                )
            )
            task_status.started(server.listeners[0].socket.getsockname()[1])

    def connect(self, uri: str) -> AbstractAsyncContextManager[Conn]:
        # proxy=None: never route loopback benchmark traffic through a proxy.
        return connect(uri, compression=None, ping_interval=None, proxy=None)
