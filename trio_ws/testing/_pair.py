"""A client and a server connected over memory: :func:`open_connection_pair`.

The server side is :func:`trio_ws.serve` itself, listening on a one-shot
in-memory listener; the client side runs the same opening handshake as
:func:`trio_ws.connect`, on the other end of a :class:`MemoryTransport`
pair. Only the sockets are missing, so ``process_request``, subprotocols and
compression behave as in production, and everything runs under
``autojump_clock``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, final

import trio

from .._client import ClientConnection, open_client
from .._connection import ConnectionOptions
from .._handshake_client import ClientHandshake
from .._server import ServerConnection, serve
from .._uri import parse_uri
from .._util import collapse_groups, running, seconds
from ._transport import DEFAULT_BUFFER_SIZE, MemoryTransport, memory_transport_pair

if TYPE_CHECKING:
    from .._http import HeadersLike, Request, Response

__all__ = ["ConnectionPair", "open_connection_pair"]

#: What ``process_request`` may be, as :func:`trio_ws.serve` takes it.
_ProcessRequest = Callable[
    [ServerConnection, "Request"],
    "Response | Awaitable[Response | None] | None",
]


@final
@dataclasses.dataclass(frozen=True)
class ConnectionPair:
    """Two connected ends, yielded by :func:`open_connection_pair`.

    Attributes:
        client: The client's connection.
        server: The server's connection.
        client_transport: The client's end of the transport: make the client
            misbehave with its :meth:`~MemoryTransport.pause_reading`,
            :meth:`~MemoryTransport.throttle_reading` and
            :meth:`~MemoryTransport.reset`.
        server_transport: The server's end of the transport, likewise.
    """

    client: ClientConnection
    server: ServerConnection
    client_transport: MemoryTransport
    server_transport: MemoryTransport


@final
class _OneShotListener(trio.abc.Listener[trio.abc.Stream]):
    """Hands one stream to :func:`serve`, then waits forever."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream: trio.abc.Stream | None = stream

    async def accept(self) -> trio.abc.Stream:
        stream, self._stream = self._stream, None
        if stream is None:
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()
        assert stream is not None
        return stream

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


async def _hold(
    opened: trio.MemorySendChannel[ServerConnection],
    handler: Callable[[ServerConnection], Awaitable[None]] | None,
    ws: ServerConnection,
) -> None:
    """The server's handler: report the connection, then run or hold it."""
    opened.send_nowait(ws)
    if handler is None:
        await ws.wait_closed()
    else:
        await handler(ws)


@asynccontextmanager
async def open_connection_pair(
    path: str = "/",
    *,
    handler: Callable[[ServerConnection], Awaitable[None]] | None = None,
    process_request: _ProcessRequest | None = None,
    subprotocols: Sequence[str] | None = None,
    additional_headers: HeadersLike | None = None,
    compression: str | None = "deflate",
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    open_timeout: float | None = 10,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
    close_timeout: float | None = 10,
    max_size: int | None = 2**20,
    max_queue: int | None = 16,
) -> AsyncIterator[ConnectionPair]:
    """Connect a client to a server over memory, with the real opening handshake.

    Use it as ``async with open_connection_pair() as pair:``, then talk over
    ``pair.client`` and ``pair.server``. No socket is opened: the two ends
    share a :class:`MemoryTransport` pair holding ``buffer_size`` bytes each
    way, so a side that stops reading pushes back on the other as TCP does,
    and tests run under pytest-trio's ``autojump_clock`` with exact virtual
    times.

    The server side is :func:`trio_ws.serve`. Without ``handler``, its
    connection stays open until closed from either side; with one, it runs
    ``handler(pair.server)`` as a server would, and closes when the handler
    returns. Leaving the block closes the client (1000, 1001 if cancelled,
    1011 if the block raised), waits for the server side to finish, at most
    ``close_timeout`` seconds, and stops the server.

    Args:
        path: The request path (with a query string if any).
        handler: The server's handler, to test an application's own.
        process_request: As for :func:`trio_ws.serve`; a response it returns
            makes :func:`open_connection_pair` raise
            :exc:`~trio_ws.InvalidStatus`.
        subprotocols: Offered by the client and supported by the server.
        additional_headers: Extra headers of the client's request.
        compression: ``"deflate"`` or ``None``, for both sides.
        buffer_size: Bytes the transport holds each way before writes wait.
        open_timeout: As for :func:`trio_ws.connect`.
        ping_interval: Keepalive interval of both sides.
        ping_timeout: Keepalive timeout of both sides.
        close_timeout: Closing handshake timeout of both sides.
        max_size: Largest incoming message of both sides.
        max_queue: Receive buffer of both sides, in messages.

    Yields:
        The :class:`ConnectionPair`.

    Raises:
        InvalidHandshake: The opening handshake failed (for instance
            :exc:`~trio_ws.InvalidStatus` when ``process_request`` answered).
        TimeoutError: ``open_timeout`` ran out.

    Cancellation:
        Cancelled while opening, both ends are closed. Cancelled in the
        block, the client still sends a close frame (1001), bounded by
        ``close_timeout``.
    """
    client_transport, server_transport = memory_transport_pair(buffer_size)
    handshake = ClientHandshake(
        parse_uri("ws://trio-ws.test" + path),
        subprotocols=subprotocols,
        additional_headers=additional_headers,
        compression=compression,
    )
    options = ConnectionOptions(
        max_size=max_size,
        max_queue=max_queue,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
        logger=None,
    )
    opened_send, opened_receive = trio.open_memory_channel[ServerConnection](1)
    with collapse_groups():
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(
                    serve,
                    functools.partial(_hold, opened_send, handler),
                    listeners=[_OneShotListener(server_transport)],
                    process_request=process_request,
                    subprotocols=subprotocols,
                    compression=compression,
                    open_timeout=open_timeout,
                    ping_interval=ping_interval,
                    ping_timeout=ping_timeout,
                    close_timeout=close_timeout,
                    max_size=max_size,
                    max_queue=max_queue,
                )
            )
            try:
                deadline = trio.current_time() + seconds(open_timeout)
                try:
                    client = await open_client(
                        client_transport, handshake, deadline, ClientConnection, options
                    )
                except BaseException:
                    await trio.aclose_forcefully(client_transport)
                    raise
                # The client's tasks get a nursery of their own, as in
                # connect(): running() cancels it once the client is closed,
                # while the server runs on until it finished too.
                with collapse_groups():
                    async with trio.open_nursery() as tasks, running(client, tasks):
                        pair = ConnectionPair(
                            client=client,
                            server=await opened_receive.receive(),
                            client_transport=client_transport,
                            server_transport=server_transport,
                        )
                        yield pair
                with trio.move_on_after(seconds(close_timeout)):
                    await pair.server.wait_closed()
            finally:
                with trio.CancelScope(shield=True):
                    await server.aclose()
                nursery.cancel_scope.cancel()
