"""The sending side of a connection: messages, fragments, pings and pongs.

:class:`Sending` gives :class:`~trio_ws.Connection` its ``send``, ``ping``
and ``pong``, and the write path they share. Every frame goes out through
``_write``: it takes ``_write_lock``, checks for cancellation, has the
protocol make the frames while the connection is OPEN, and writes them with
``_send_all``, which aborts the connection when a write is cut part-way or
the transport breaks. ``send`` also holds ``_send_lock`` around the frames of
one message, so that messages never interleave; a fragmented message comes
from :class:`_Fragments`, over a sync or an async iterable. Free locks are
taken by ``_acquire`` without a schedule point (the write is the one trio
requires) and without a coroutine of its own.

The locks, the protocol and the closing logic (``_fail``, ``_abort``,
``_closed_exception``) belong to the connection; the theory of operation is
in ``_connection.py``.
"""

from __future__ import annotations

from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from typing import TYPE_CHECKING, Final, TypeAlias

import trio

from ._keepalive import Pings, PingWaiter, control_payload
from ._protocol import Protocol, State

if TYPE_CHECKING:
    from typing_extensions import TypeVarTuple, Unpack

    from ._exceptions import ConnectionClosed

    Args = TypeVarTuple("Args")

__all__ = ["Data", "Sending"]

#: What a message can be sent as.
Data: TypeAlias = "str | bytes | bytearray | memoryview"


class Sending:
    """The sending half of :class:`~trio_ws.Connection` (a mixin)."""

    # Set by Connection.__init__.
    _stream: trio.abc.Stream
    _pings: Pings
    _send_lock: trio.Lock
    _write_lock: trio.Lock
    _writing_since: float | None

    if TYPE_CHECKING:
        # Provided by Connection.

        @property
        def _proto(self) -> Protocol: ...

        def _abort(self, exc: BaseException | None) -> None: ...

        async def _closed_exception(self) -> ConnectionClosed: ...

        async def _fail(self, code: int, reason: str) -> None: ...

        def _closing(self) -> bool: ...

    async def _send_all(self, data: bytes | bytearray) -> None:
        """Write ``data``; the caller holds ``_write_lock``.

        A transport error closes the connection. Cancellation part-way may
        leave a partial frame on the wire, after which no frame can follow:
        the connection is aborted (trio's ``send_all`` contract). Callers
        check for cancellation before they make the frames, never in between,
        so that a cancelled write never drops frames already made (a
        compressor's context would include them).
        """
        self._writing_since = trio.current_time()
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._abort(exc)
            raise self._proto.closed_exception() from exc
        except BaseException:
            self._abort(
                trio.BrokenResourceError("a write was cancelled part-way through")
            )
            raise
        finally:
            self._writing_since = None

    async def send(
        self,
        message: Data | Iterable[Data] | AsyncIterable[Data],
        *,
        compress: bool = True,
    ) -> None:
        """Send a message.

        A :class:`str` is sent as a text message; :class:`bytes`,
        :class:`bytearray` and :class:`memoryview` as a binary message. An
        iterable or async iterable of them sends one fragmented message whose
        fragments must all be text or all be binary. Several tasks may call
        :meth:`send` at once: messages never interleave.

        Args:
            message: The message.
            compress: ``False`` sends this message uncompressed, its frames
                without RSV1, on a connection that negotiated
                permessage-deflate: for data that is compressed already or
                too short to gain anything. No effect without compression.

        Raises:
            ConnectionClosed: The connection is closing or closed.
            TypeError: ``message`` or a fragment has an unsupported type, or
                fragments mix text and binary. If fragments were sent already,
                the connection is failed with 1011, as the peer cannot be left
                waiting for the rest of the message.
            ValueError: ``message`` is an empty (async) iterable: with no
                fragment there is no message type, so nothing is sent and the
                connection stays usable; send ``""`` or ``b""`` for an empty
                message.

        Cancellation:
            Cancelled before any byte is written, nothing is sent and the
            connection stays usable. Cancelled part-way through writing a
            frame, the connection is failed: the peer sees the TCP connection
            close, never a partial frame followed by other data, and later
            calls raise :exc:`~trio_ws.ConnectionClosedError`. Cancelling a
            fragmented message between fragments fails the connection with
            1011 for the same reason.
        """
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            # No check for cancellation here: _write makes it under the lock,
            # before the frames are made, and a busy lock is a checkpoint.
            lock = self._send_lock
            if (wait := _acquire(lock)) is not None:
                await wait
            try:
                await self._write(_send_message, message, True, compress)
            finally:
                lock.release()
        elif isinstance(message, (AsyncIterable, Iterable)) and not isinstance(
            message, dict
        ):
            async with self._send_lock:
                await self._send_fragments(_Fragments(message), compress)
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
            msg = f"message has an unsupported type: {type(message).__name__}"
            raise TypeError(msg)

    async def _send_fragments(self, fragments: _Fragments, compress: bool) -> None:
        previous: Data | None = None
        try:
            while (fragment := await fragments.next()) is not _END:
                if not isinstance(fragment, (str, bytes, bytearray, memoryview)):
                    msg = f"fragment has an unsupported type: {type(fragment).__name__}"
                    raise TypeError(msg)
                if previous is not None:
                    if isinstance(previous, str) != isinstance(fragment, str):
                        msg = (
                            "fragments of one message must be all str or all bytes-like"
                        )
                        raise TypeError(msg)
                    await self._write(_send_message, previous, False, compress)
                previous = fragment
            if previous is None:
                # No fragment tells text from binary: there is no message to
                # send, and sending nothing would lose one silently.
                msg = "an empty iterable is no message: send '' or b'' instead"
                raise ValueError(msg)
            await self._write(_send_message, previous, True, compress)
        except BaseException:
            if self._proto.sending_fragments and not self._closing():
                # The peer is waiting for the rest of a message that will not
                # come: RFC 6455 leaves no way out but failing the connection.
                await self._fail(1011, "error while sending a fragmented message")
            raise

    async def _write(
        self, make: Callable[[Protocol, Unpack[Args]], None], *args: Unpack[Args]
    ) -> None:
        """Make frames with ``make(protocol, *args)`` and write them, while OPEN.

        Raises:
            ConnectionClosed: The connection is not OPEN (any more).

        Cancellation:
            Checked under the lock, before the frames are made: cancelled
            there, nothing was made or sent. Later, see :meth:`_send_all`.
        """
        lock = self._write_lock
        if (wait := _acquire(lock)) is not None:
            await wait
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            protocol = self._proto
            if protocol.state is State.OPEN:
                make(protocol, *args)
                # The locks were taken without a schedule point: the write is
                # the one of send(), ping() and pong().
                await self._send_all(protocol.data_to_send())
                return
        finally:
            lock.release()
        # Waiting on an Event is a checkpoint (a schedule point too), even
        # when it is set: closed, send() still yields.
        raise await self._closed_exception()

    async def ping(self, data: Data | None = None) -> float:
        """Send a ping and wait for the matching pong.

        Args:
            data: The payload, at most 125 bytes (a :class:`str` is sent in
                UTF-8); ``None`` picks four random bytes that no ping waiting
                for its pong uses.

        Returns:
            The round-trip time in seconds (also stored in :attr:`latency`).

        Raises:
            ConnectionClosed: The connection closed before the pong arrived.
            RuntimeError: A ping with the same payload is already waiting.
            ValueError: ``data`` is over 125 bytes.

        A pong acknowledges its ping and every earlier one (RFC 6455 5.5.3
        lets an endpoint answer only the latest ping).

        Cancellation:
            Cancelled before the ping is written, nothing is sent. Cancelled
            while waiting for the pong, the ping stays sent and its pong is
            ignored. Cancelled part-way through writing it, the connection is
            failed, as for :meth:`send`.
        """
        payload = None if data is None else control_payload(data)
        waiter = PingWaiter()
        await self._send_ping(waiter, payload)
        try:
            await waiter.event.wait()
        finally:
            self._pings.forget(waiter)
        if waiter.rtt is None:
            raise await self._closed_exception()
        return waiter.rtt

    async def _send_ping(self, waiter: PingWaiter, payload: bytes | None) -> None:
        """Send a ping for ``waiter``; ``payload=None`` picks an unused one."""

        def make(protocol: Protocol) -> None:
            # Registered under the write lock, so in the order pings are
            # sent; a random payload is drawn here, where no other ping can
            # take it before it is registered.
            pings = self._pings
            pings.add(pings.unused_payload() if payload is None else payload, waiter)
            assert waiter.payload is not None
            protocol.send_ping(waiter.payload)

        try:
            await self._write(make)  # a closure: pings are few
        except BaseException:
            self._pings.forget(waiter)
            raise

    async def pong(self, data: Data = b"") -> None:
        """Send an unsolicited pong (a unidirectional heartbeat, RFC 6455 5.5.3).

        Args:
            data: The payload, at most 125 bytes (a :class:`str` in UTF-8).

        Raises:
            ConnectionClosed: The connection is closing or closed.

        Cancellation:
            As for :meth:`send`.
        """
        payload = control_payload(data)
        await self._write(lambda protocol: protocol.send_pong(payload))


def _acquire(lock: trio.Lock) -> Awaitable[None] | None:
    """Take ``lock`` now if it is free, else return the wait for it.

    ``async with lock`` yields to trio's run loop even when the lock is free;
    on the send path the write that follows is a checkpoint already, so that
    pass would be pure overhead. A free lock with waiters is not taken
    (``acquire_nowait`` keeps trio's fairness). Not a coroutine itself: one
    per lock and per message would be that many more objects for the garbage
    collector, which weighs with many connections.
    """
    try:
        lock.acquire_nowait()
    except trio.WouldBlock:
        return lock.acquire()
    return None


def _send_message(
    protocol: Protocol,
    data: Data,
    fin: bool,
    compress: bool,
) -> None:
    protocol.send_message(data, fin=fin, compress=compress)


_END: Final = object()


class _Fragments:
    """The fragments of a message, from a sync or an async iterable."""

    __slots__ = ("_aiter", "_iter")

    def __init__(self, iterable: Iterable[object] | AsyncIterable[object]) -> None:
        self._aiter: AsyncIterator[object] | None = None
        self._iter: Iterator[object] | None = None
        if isinstance(iterable, AsyncIterable):
            self._aiter = aiter(iterable)
        else:
            self._iter = iter(iterable)

    async def next(self) -> object:
        """The next fragment, or ``_END`` (``None`` is a bad fragment, not the end)."""
        if self._aiter is not None:
            return await anext(self._aiter, _END)
        assert self._iter is not None
        return next(self._iter, _END)
