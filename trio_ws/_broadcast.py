"""Sending one message to many connections: :func:`broadcast`.

Theory of operation
-------------------

:func:`broadcast` is synchronous and never waits: it appends the message to
a per-connection backlog (a deque) and wakes that connection's **drain**
task, which sends the backlog in order with :meth:`Connection.send`. So a
peer that does not read stalls only its own drain task, and the broadcaster
and the other connections go on.

The drain task is started on a connection's first broadcast, in the nursery
that runs the connection's reader (the one of ``connect``, of ``serve`` for
each connection, or of ``open_connection``); it ends with the connection.
Connections that never take part in a broadcast carry nothing: the backlogs
live in a :class:`weakref.WeakKeyDictionary` here, not on the connection.

Once a connection has more than ``max_backlog`` messages waiting, it is
closed with 1008 (policy violation): its in-flight send is cancelled, which
fails the connection if it was part-way through a frame, else a closing
handshake is tried for at most ``close_timeout``. Skipping messages instead
would leave the peer with a silent gap; a closure is something it can see and
recover from (by reconnecting and fetching the state afresh).
"""

from __future__ import annotations

import collections
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import trio

from ._exceptions import ConnectionClosed
from ._protocol import State
from ._util import seconds

if TYPE_CHECKING:
    from ._connection import Connection, Data

__all__ = ["broadcast"]

#: Close code and reason for a connection whose backlog overflowed.
OVERFLOW_CODE: Final = 1008
OVERFLOW_REASON: Final = "too slow to receive broadcast messages"


class _Backlog:
    """Messages waiting for one connection, and its drain task's state."""

    __slots__ = ("lot", "messages", "overflowed", "scope")

    def __init__(self) -> None:
        self.messages: collections.deque[str | bytes] = collections.deque()
        self.lot = trio.lowlevel.ParkingLot()
        #: Set once the bound was passed: the connection is being closed.
        self.overflowed = False
        #: The cancel scope of the send in flight, if any.
        self.scope: trio.CancelScope | None = None

    def overflow(self) -> None:
        self.overflowed = True
        self.messages.clear()
        if self.scope is not None:
            self.scope.cancel()
        self.lot.unpark_all()


_backlogs: weakref.WeakKeyDictionary[Connection, _Backlog] = weakref.WeakKeyDictionary()


def broadcast(
    connections: Iterable[Connection], message: Data, *, max_backlog: int = 16
) -> None:
    """Send ``message`` to every open connection in ``connections``, without waiting.

    Each connection gets its own backlog, sent in order by a task that runs
    beside the connection's reader, so a peer that reads slowly or not at all
    delays only itself. Connections that are not OPEN are skipped. Messages
    from one :func:`broadcast` call reach each connection once, in the order
    of the calls; relative to :meth:`~trio_ws.Connection.send` calls made
    directly on a connection, they go out later, when the backlog drains.

    Policy for slow peers: once more than ``max_backlog`` messages are
    waiting for a connection, that connection is closed with code 1008
    (policy violation) and the reason ``too slow to receive broadcast
    messages``; the message is not queued and later broadcasts skip it. If
    its pending write was part-way through a frame, the connection is
    failed instead (the peer sees the TCP connection drop). Either way it
    takes at most ``close_timeout`` seconds, and it is logged at WARNING on
    the connection's logger.

    Typical use, on a server::

        trio_ws.broadcast(server.connections, "an update for everyone")

    Args:
        connections: The recipients, e.g. :attr:`Server.connections
            <trio_ws.Server.connections>` or a set a handler keeps.
        message: A :class:`str` (text message) or bytes-like object (binary
            message, copied once). Fragmented messages cannot be broadcast.
        max_backlog: How many messages may wait for one connection, besides
            the one being written, before it is closed.

    Raises:
        TypeError: ``message`` is neither text nor bytes-like.
        ValueError: ``max_backlog`` is below 1.
    """
    if isinstance(message, (bytearray, memoryview)):
        # Copied once, so that changing the buffer later changes nothing.
        message = bytes(message)
    elif not isinstance(message, (str, bytes)):
        # Unreachable for type checkers; callers without them get a clear error.
        msg = f"message has an unsupported type: {type(message).__name__}"  # type: ignore[unreachable]
        raise TypeError(msg)
    if max_backlog < 1:
        msg = "max_backlog must be at least 1"
        raise ValueError(msg)
    for ws in connections:
        nursery = ws._nursery
        if ws.state is not State.OPEN or nursery is None:
            continue
        backlog = _backlogs.get(ws)
        if backlog is None:
            try:
                nursery.start_soon(
                    _drain, ws, backlog := _Backlog(), name=f"{ws!r} broadcast"
                )
            except RuntimeError:  # pragma: no cover - OPEN implies a live nursery
                # Never let one connection's state break the broadcast.
                continue
            _backlogs[ws] = backlog
        if backlog.overflowed:
            continue
        if len(backlog.messages) >= max_backlog:
            ws.logger.warning(
                "connection %s is too slow for broadcast; closing it with %d",
                ws.id,
                OVERFLOW_CODE,
            )
            backlog.overflow()
            continue
        backlog.messages.append(message)
        backlog.lot.unpark_all()


async def _drain(ws: Connection, backlog: _Backlog) -> None:
    """Send ``backlog`` to ``ws`` until it closes, or close it on overflow."""
    try:
        while not backlog.overflowed:
            if not backlog.messages:
                await backlog.lot.park()
                continue
            with trio.CancelScope() as backlog.scope:
                await ws.send(backlog.messages.popleft())
            backlog.scope = None
    except ConnectionClosed:
        return
    finally:
        backlog.messages.clear()
    # A cancelled write part-way through a frame already failed the
    # connection; otherwise, tell the peer why. aclose() may wait for a
    # write lock that a stalled user send holds: bound it.
    with trio.move_on_after(seconds(ws.close_timeout)):
        await ws.aclose(OVERFLOW_CODE, OVERFLOW_REASON)
