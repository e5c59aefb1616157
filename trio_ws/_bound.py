"""Connections whose tasks live in the caller's nursery: :func:`open_connection`.

:func:`~trio_ws.connect` ties a connection to one ``async with`` block. Some
connections outlive any one block: kept in an object, handed between tasks,
opened by one function and used by another. :func:`open_connection` runs
``async with connect(...)`` in a task of a nursery that the caller passes, as
:meth:`trio.Nursery.start` does for servers: the call returns once the
connection is open, and the connection stays open until it is closed, or
until that nursery is cancelled, which closes it with 1001 (going away).
"""

from __future__ import annotations

import functools
import inspect
import ssl as ssl_module
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

from ._client import ClientConnection, connect
from ._handshake import DEFAULT_USER_AGENT

if TYPE_CHECKING:
    import os

    import trio

    from ._connection import ConnectionFactory, LoggerLike
    from ._http import HeadersLike

__all__ = ["open_connection"]

Connector: TypeAlias = "Callable[[], AbstractAsyncContextManager[ClientConnection]]"


async def open_connection(
    nursery: trio.Nursery,
    uri: str,
    *,
    subprotocols: Sequence[str] | None = None,
    additional_headers: HeadersLike | None = None,
    user_agent_header: str | None = DEFAULT_USER_AGENT,
    origin: str | None = None,
    compression: str | None = "deflate",
    ssl: ssl_module.SSLContext | None = None,
    proxy: str | Literal[True] | None = True,
    unix_socket_path: str | os.PathLike[str] | None = None,
    open_timeout: float | None = 10,
    max_redirects: int = 10,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
    close_timeout: float | None = 10,
    max_size: int | None = 2**20,
    max_queue: int | None = 16,
    create_connection: ConnectionFactory[ClientConnection] | None = None,
    logger: LoggerLike | None = None,
) -> ClientConnection:
    """Open a connection whose tasks run in ``nursery``; return it once open.

    ::

        async with trio.open_nursery() as nursery:
            ws = await trio_ws.open_connection(nursery, "ws://example.com/")
            nursery.start_soon(consume, ws)
            await ws.send("hello")

    The connection's reader and keepalive tasks run in ``nursery``, so it can
    outlive the code that opened it. It stays open until
    :meth:`~trio_ws.Connection.aclose` is called, the peer closes it, or
    ``nursery`` is cancelled: then it is closed with 1001 (going away), the
    closing handshake bounded by ``close_timeout`` even under cancellation,
    as when a :func:`~trio_ws.connect` block is cancelled. ``nursery`` does
    not finish while the connection is open.

    Args:
        nursery: The nursery that runs the connection's tasks.
        uri: As for :func:`~trio_ws.connect`.
        subprotocols: As for :func:`~trio_ws.connect`.
        additional_headers: As for :func:`~trio_ws.connect`.
        user_agent_header: As for :func:`~trio_ws.connect`.
        origin: As for :func:`~trio_ws.connect`.
        compression: As for :func:`~trio_ws.connect`.
        ssl: As for :func:`~trio_ws.connect`.
        proxy: As for :func:`~trio_ws.connect`.
        unix_socket_path: As for :func:`~trio_ws.connect`.
        open_timeout: As for :func:`~trio_ws.connect`.
        max_redirects: As for :func:`~trio_ws.connect`.
        ping_interval: As for :func:`~trio_ws.connect`.
        ping_timeout: As for :func:`~trio_ws.connect`.
        close_timeout: As for :func:`~trio_ws.connect`.
        max_size: As for :func:`~trio_ws.connect`.
        max_queue: As for :func:`~trio_ws.connect`.
        create_connection: As for :func:`~trio_ws.connect`.
        logger: As for :func:`~trio_ws.connect`.

    Returns:
        The open connection.

    Raises:
        InvalidHandshake: As :func:`~trio_ws.connect` raises it, and its
            other exceptions (:exc:`TimeoutError`, :exc:`OSError`), as
            themselves.

    Cancellation:
        Cancelled while opening, nothing is left running and
        :exc:`trio.Cancelled` propagates. Once it returned, the connection
        no longer depends on the caller's cancel scopes, only on
        ``nursery``'s.
    """
    return await start_connection(nursery, connector_for(uri, locals()))


# One source of truth for connect()'s options, without losing what users see.
# open_connection() and reconnect() spell out connect()'s keyword options,
# defaults and "As for connect" Args on purpose: Sphinx autodoc shows a
# function's own signature (every option with its default) and, with
# autodoc_typehints_description_target = "documented_params", a type only
# for a documented parameter; IDEs and type checkers likewise show each
# option. ``**options: Unpack[ConnectOptions]`` (a TypedDict) would show a
# bare ``**options`` without defaults there, and still list the names and
# types a second time. So the signatures stay, and what was written out
# three times, the pass-through, is written once: connector_for() forwards
# the options named in connect()'s own signature, from the caller's
# locals(). A missing one fails the first call (KeyError); tests/test_bound.py
# checks that both signatures repeat connect()'s names, defaults,
# annotations and Args, and that every option reaches connect().
CONNECT_OPTIONS: Final = tuple(
    parameter.name
    for parameter in inspect.signature(connect).parameters.values()
    if parameter.kind is parameter.KEYWORD_ONLY
)


def connector_for(uri: str, options: Mapping[str, object]) -> Connector:
    """``connect(uri, ...)`` with each of connect's options from ``options``.

    ``options`` is the caller's ``locals()``: its parameters, which repeat
    :func:`~trio_ws.connect`'s; others in it are ignored.
    """
    kwargs = {name: options[name] for name in CONNECT_OPTIONS}
    # The values are the caller's parameters, which carry connect()'s
    # annotations (the tests compare them): checked there, not here.
    return functools.partial(connect, uri, **kwargs)  # type: ignore[arg-type]


async def start_connection(
    nursery: trio.Nursery, connector: Connector
) -> ClientConnection:
    """Run ``async with connector() as ws`` in ``nursery``; return ``ws`` once open."""
    ws: ClientConnection = await nursery.start(_hold, connector)
    return ws


async def _hold(
    connector: Connector, *, task_status: trio.TaskStatus[ClientConnection]
) -> None:
    async with connector() as ws:
        task_status.started(ws)
        # Leaving the block closes the connection: wait until something else
        # closed it, or until the nursery is cancelled (then 1001).
        await ws.wait_closed()
