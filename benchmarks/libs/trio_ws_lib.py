"""trio_ws, written against /work/shared/API.md.

Two variants: ``trio_ws`` (compression and keepalive off, like the others) and
``trio_ws-defaults`` (every option at its default: permessage-deflate on,
keepalive pings every 20 s).
"""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version as dist_version
from typing import TYPE_CHECKING, Any, ClassVar

import trio

import trio_ws

from .base import Adapter, Conn, Handler

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

#: Options that make trio_ws comparable with the other libraries.
COMPARABLE: dict[str, Any] = {"compression": None, "ping_interval": None}


class TrioWsAdapter(Adapter):
    name = "trio_ws"
    options: ClassVar[dict[str, Any]] = COMPARABLE

    def __init__(self) -> None:
        # Touch the API now so a half-written package is reported as skipped.
        self.closed = (trio_ws.ConnectionClosed,)
        self._serve = trio_ws.serve
        self._connect = trio_ws.connect

    def version(self) -> str:
        try:
            v = dist_version("trio-ws")
        except PackageNotFoundError:
            v = getattr(trio_ws, "__version__", "?")
        settings = ", ".join(f"{k}={val!r}" for k, val in self.options.items())
        return f"trio_ws {v} ({settings or 'defaults'})"

    async def serve(
        self,
        handler: Handler,
        host: str,
        port: int,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async def on_connection(ws: Any) -> None:
            await handler(ws, ws.request.path)

        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(
                    self._serve, on_connection, port, host=host, **self.options
                )
            )
            task_status.started(server.port)

    def connect(self, uri: str) -> AbstractAsyncContextManager[Conn]:
        cm: AbstractAsyncContextManager[Conn] = self._connect(uri, **self.options)
        return cm


class TrioWsDefaultsAdapter(TrioWsAdapter):
    name = "trio_ws-defaults"
    options: ClassVar[dict[str, Any]] = {}
