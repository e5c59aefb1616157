"""The I/O layer of a WebSocket connection: the only code awaiting the stream.

Theory of operation
-------------------

A :class:`Connection` wraps a :class:`trio.abc.Stream` and a sans-I/O
:class:`~trio_ws._protocol.Protocol`. Once the opening handshake is done, two
tasks run in the nursery of whoever opened the connection (``connect`` or
``serve``), beside the user's code:

* the **reader** reads 64 KiB chunks, feeds the protocol, moves complete
  messages into the :class:`~trio_ws._messages.MessageQueue`, acknowledges
  pongs and writes automatic replies (pongs, the echo of a close frame). It is
  the only task that reads, and the only one that closes the transport, in a
  ``finally`` block, once a write in progress (a close frame) is done. It runs
  in its own cancel scope, shielded from outside cancellation, so that a
  cancelled ``async with connect(...)`` block can still finish the closing
  handshake; the owner always cancels that scope when it is done with the
  connection, and the scope's deadline enforces ``close_timeout`` once a
  closing handshake has started (``FAIL_WRITE_TIMEOUT`` once failed).
* the **heartbeat** sends a ping every ``ping_interval`` seconds and waits
  for its pong inside a cancel scope of ``ping_timeout`` seconds that also
  covers sending the ping (behind a send stuck on a dead peer). The clock
  stops while the reader is paused by flow control (``_keepalive.py``).

Writes are serialised by ``_write_lock``; frames are made by the protocol
while that lock is held, after the last check for cancellation, so the wire
carries frames in the order they were made, a close frame is never followed
by data, and a cancelled write never drops a frame already made. A write
cancelled part-way aborts the connection: nothing may follow a partial
frame. ``_send_lock`` keeps the frames of one (possibly fragmented) message
together; control frames may still slip between fragments, as RFC 6455
section 5.4 allows. On the send path a free lock is taken without a schedule
point (``_acquire``): the write itself is the one trio requires of
``send``.
That sending side (``send``, ``ping``, ``pong`` and the write path) is in
``_sending.py``; this module keeps the state, the reader, the heartbeat and
the closing logic.

Neither task ever raises into the nursery: failures are recorded in the
protocol (``failure`` becomes ``ConnectionClosedError.__cause__``) and end
the connection.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import uuid
from collections.abc import Sequence
from typing import (
    TYPE_CHECKING,
    ClassVar,
    Final,
)

import trio

from ._exceptions import ConnectionClosed, ConnectionClosedOK
from ._keepalive import Pings, PingWaiter, PongClock
from ._messages import MessageQueue
from ._options import (
    ConnectionFactory as ConnectionFactory,
    ConnectionOptions as ConnectionOptions,
    LoggerLike as LoggerLike,
)
from ._protocol import Protocol, State, check_close
from ._sending import Data as Data, Sending

if sys.version_info < (3, 11):  # pragma: no cover - trio installs the backport
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self
    from wsproto.extensions import Extension

    from ._extensions import DeflateParams
    from ._http import Request, Response

__all__ = ["Connection", "ConnectionFactory", "ConnectionOptions", "Data", "LoggerLike"]

#: Bytes asked of the transport per read (wsproto advises large reads).
READ_SIZE: Final = 65536
#: How long a best-effort close frame may take when failing a connection.
FAIL_WRITE_TIMEOUT: Final = 1.0


class Connection(Sending, trio.abc.AsyncResource):
    """A WebSocket connection, client or server side.

    Users get instances of the subclasses :class:`~trio_ws.ClientConnection`
    and :class:`~trio_ws.ServerConnection` from :func:`~trio_ws.connect` and
    :func:`~trio_ws.serve`. ``create_connection`` factories are called with
    the arguments below and must return an instance of the right subclass.

    Args:
        stream: The transport, already connected (TLS included).
        max_size: Largest incoming message in bytes; ``None``: no limit.
        max_queue: High-water mark of the receive buffer, in messages.
        ping_interval: Seconds between keepalive pings; ``None``: none.
        ping_timeout: Seconds to wait for a keepalive pong; ``None``: forever.
        close_timeout: Seconds allowed for the closing handshake.
        logger: Where the connection logs.
    """

    #: Whether this side is the client (set by subclasses).
    is_client: ClassVar[bool] = False
    _default_logger: ClassVar[str] = "trio_ws"

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        max_size: int | None = 2**20,
        max_queue: int | None = 16,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        logger: LoggerLike | None = None,
    ) -> None:
        self._stream = stream
        self.max_size = max_size
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        #: A unique identifier, for logs.
        self.id: uuid.UUID = uuid.uuid4()
        #: The logger of this connection.
        self.logger: LoggerLike = (
            logger if logger is not None else logging.getLogger(self._default_logger)
        )
        #: The opening handshake's request, once known.
        self.request: Request | None = None
        #: The opening handshake's response, once known.
        self.response: Response | None = None
        #: The negotiated subprotocol, if any.
        self.subprotocol: str | None = None
        #: Round-trip time of the last keepalive (or :meth:`ping`), in seconds.
        self.latency: float = 0.0

        self._protocol: Protocol | None = None
        self._pings = Pings()
        self._pong_clock = PongClock()
        self._messages = MessageQueue(
            max_queue,
            on_pause=self._pong_clock.pause,
            on_resume=self._pong_clock.resume,
        )
        self._send_lock = trio.Lock()
        self._write_lock = trio.Lock()
        #: When the write in progress started, if one is (see ``_fail``).
        self._writing_since: float | None = None
        self._receiving = False
        self._reader_scope = trio.CancelScope(shield=True)
        self._reader_started = False
        #: Where helpers such as ``broadcast`` start per-connection tasks.
        self._nursery: trio.Nursery | None = None
        #: Set when no more messages can arrive (close received or failure).
        self._ended = trio.Event()
        #: Set when the transport is closed and the reader has finished.
        self._closed = trio.Event()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.state.name}>"

    # --- Attributes ------------------------------------------------------------

    @property
    def state(self) -> State:
        """The connection's :class:`~trio_ws.State`."""
        if self._protocol is None:
            return State.CLOSED if self._closed.is_set() else State.CONNECTING
        return self._protocol.state

    @property
    def close_code(self) -> int | None:
        """The received close code, 1006 if none (RFC 6455 7.1.5); ``None`` until CLOSED."""
        return None if self._protocol is None else self._protocol.close_code

    @property
    def close_reason(self) -> str | None:
        """The received close reason (RFC 6455 7.1.6); ``None`` until CLOSED."""
        return None if self._protocol is None else self._protocol.close_reason

    @property
    def local_address(self) -> object:
        """The local socket address (``(host, port, ...)``), or ``None``."""
        return _socket_address(self._stream, "getsockname")

    @property
    def remote_address(self) -> object:
        """The remote socket address (``(host, port, ...)``), or ``None``."""
        return _socket_address(self._stream, "getpeername")

    # --- Opening -------------------------------------------------------------

    def _open(
        self, extensions: Sequence[Extension | DeflateParams], trailing_data: bytes
    ) -> None:
        """Switch to OPEN after a successful opening handshake."""
        protocol = Protocol(
            client=self.is_client,
            extensions=extensions,
            max_size=self.max_size,
        )
        self._protocol = protocol
        if trailing_data:
            # Frames the peer sent right behind its handshake.
            protocol.receive_data(trailing_data)

    def _start(self, nursery: trio.Nursery) -> None:
        """Start the reader and the heartbeat in ``nursery``."""
        self._reader_started = True
        self._nursery = nursery
        nursery.start_soon(self._run_reader, name=f"{self!r} reader")
        if self.ping_interval is not None:
            nursery.start_soon(self._run_heartbeat, name=f"{self!r} heartbeat")

    def _stop(self) -> None:
        """Stop the reader at once; it closes the transport on its way out."""
        self._reader_scope.cancel()

    @property
    def _proto(self) -> Protocol:
        if self._protocol is None:
            msg = "the opening handshake is not complete"
            raise RuntimeError(msg)
        return self._protocol

    # --- Reader --------------------------------------------------------------

    async def _run_reader(self) -> None:
        protocol = self._proto
        stream = self._stream
        messages = self._messages
        # Messages that came with the handshake.
        self._dispatch(protocol)
        try:
            with self._reader_scope:
                self._bound_final_writes(protocol)
                if protocol.has_data_to_send:
                    await self._flush()
                while not protocol.failed:
                    if messages.paused:  # tested here: no coroutine per read
                        await messages.wait_writable()
                    try:
                        data = await stream.receive_some(READ_SIZE)
                    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                        protocol.connection_lost(exc)
                        return
                    if not data:
                        protocol.receive_eof()
                        return
                    try:
                        protocol.receive_data(data)
                    except Exception as exc:
                        # A bug in trio_ws, not the peer's doing: fail the
                        # connection instead of crashing the owner's nursery.
                        self.logger.exception("failing connection %s", self.id)
                        protocol.fail(1011, "internal error", cause=exc)
                    self._dispatch(protocol)
                    self._bound_final_writes(protocol)
                    if protocol.has_data_to_send:  # no coroutine per read
                        await self._flush()
                    if protocol.handshake_done and not self.is_client:
                        # RFC 6455 7.1.1: the server closes the TCP connection
                        # first; the client waits for that, for a while.
                        break
                # Failed, or closed by the server: a write still in progress
                # in another task (our close frame) ends before the transport
                # closes under it.
                async with self._write_lock:
                    pass
        finally:
            protocol.connection_lost()
            self._end()
            try:
                # Raises Cancelled when the owner is cancelled (serve or
                # connect cancelled): the transport is closed all the same.
                await trio.aclose_forcefully(stream)
            finally:
                self._closed.set()

    def _dispatch(self, protocol: Protocol) -> None:
        messages = protocol.take_messages()
        if messages:
            self._messages.put(messages)
        for pong in protocol.take_pongs():
            rtt = self._pings.acknowledge(pong)
            if rtt is not None:
                self.latency = rtt
        if protocol.close_rcvd is not None or protocol.failed:
            self._end()

    async def _flush(self) -> None:
        """Write the protocol's automatic replies; the caller saw some."""
        protocol = self._proto
        async with self._write_lock:
            # Another writer may have taken the bytes meanwhile; writing
            # nothing is harmless. A failed write aborted the connection: the
            # reader stops at its next checkpoint, the messages it queued stay
            # for recv (promise 1 of the guarantees).
            with contextlib.suppress(ConnectionClosed):
                await self._send_all(protocol.data_to_send())

    def _end(self) -> None:
        """No more messages will arrive: wake ``recv`` and ``ping`` waiters."""
        if self._ended.is_set():
            return
        self._ended.set()
        self._messages.end()
        self._pings.end()

    def _bound_final_writes(self, protocol: Protocol) -> None:
        """Bound the reader once the peer broke the protocol or closed.

        A peer that then stops reading must not hold the reader, and the
        transport, forever: the close frame failing the connection gets
        ``FAIL_WRITE_TIMEOUT`` (RFC 6455 7.1.7), a closing handshake
        ``close_timeout``.
        """
        if protocol.failed:
            deadline = trio.current_time() + FAIL_WRITE_TIMEOUT
            self._reader_scope.deadline = min(self._reader_scope.deadline, deadline)
        elif protocol.handshake_done:
            self._start_close_timer()

    def _start_close_timer(self) -> None:
        """Bound the rest of the closing handshake by ``close_timeout``."""
        if self.close_timeout is not None:
            deadline = trio.current_time() + self.close_timeout
            self._reader_scope.deadline = min(self._reader_scope.deadline, deadline)

    # --- Closure -------------------------------------------------------------

    def _abort(self, exc: BaseException | None) -> None:
        """Close the connection now, without a closing handshake."""
        if self._protocol is not None:
            self._protocol.connection_lost(exc)
        self._end()
        self._stop()
        if not self._reader_started:
            # No reader to close the transport on its way out.
            self._closed.set()

    async def _closed_exception(self) -> ConnectionClosed:
        """Wait until the closure is known in full, then describe it."""
        protocol = self._proto
        # Only a close frame sent and not answered yet leaves this unset:
        # the answer, or close_timeout, settles it.
        await self._ended.wait()
        return protocol.closed_exception()

    # --- Receiving -------------------------------------------------------------

    async def recv(self) -> str | bytes:
        """Receive the next message.

        Returns:
            A :class:`str` for a text message, :class:`bytes` for a binary one.

        Raises:
            ConnectionClosed: No message is left and the connection is
                closing or closed: :exc:`~trio_ws.ConnectionClosedOK` after a
                normal closure, :exc:`~trio_ws.ConnectionClosedError`
                otherwise. Every message that arrived before is returned
                first.
            trio.BusyResourceError: Another task is already in :meth:`recv`.

        Cancellation:
            Safe: ``with trio.move_on_after(t): msg = await ws.recv()`` that
            times out loses no message and leaves the connection usable.
        """
        if self._receiving:
            msg = "another task is already receiving on this connection"
            raise trio.BusyResourceError(msg)
        self._receiving = True
        try:
            messages = self._messages
            if messages or messages.ended or self._protocol is None:
                await trio.lowlevel.checkpoint_if_cancelled()
            # else the wait below comes first, and raises Cancelled in a
            # cancelled scope before taking anything: one coroutine less.
            waited = False
            while True:
                try:
                    message = messages.get_nowait()
                except trio.WouldBlock:
                    if messages.ended or self._protocol is None:
                        closed = await self._closed_exception()
                        # Keep the transport error as the cause (not `from None`).
                        raise closed from closed.__cause__
                    await messages.wait_readable()
                    waited = True
                else:
                    if not waited:
                        await trio.lowlevel.cancel_shielded_checkpoint()
                    # else the wait was the schedule point: a second one
                    # would cost a pass through trio's run loop per message.
                    return message
        finally:
            self._receiving = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str | bytes:
        """Receive the next message; end after a normal closure."""
        try:
            return await self.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    # --- Closing ---------------------------------------------------------------

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection with the closing handshake.

        Sends a close frame, waits for the peer's, and closes the TCP
        connection, in at most ``close_timeout`` seconds (waiting behind a
        ``send`` stuck on a slow peer included); after that the transport is
        closed without waiting further. If the closing handshake is already
        under way, waits for it to end. Closing a closed connection does
        nothing.

        Args:
            code: The close code (RFC 6455 7.4).
            reason: The close reason, at most 123 bytes in UTF-8.

        Raises:
            ValueError: ``code`` or ``reason`` cannot be sent.

        Cancellation:
            The transport is closed at once even if :meth:`aclose` is
            cancelled (as :meth:`trio.abc.AsyncResource.aclose` requires),
            without waiting for the closing handshake, then
            :exc:`trio.Cancelled` propagates.
        """
        check_close(code, reason)
        closed = False
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            # Before the reader starts, nothing could finish a closing
            # handshake: the transport is just closed.
            if self._reader_started:
                if self._proto.state is State.OPEN:
                    await self._send_close(code, reason)
                await self._closed.wait()
                closed = True
        finally:
            if not closed:
                self._abort(None)
                await trio.aclose_forcefully(self._stream)

    async def _send_close(self, code: int, reason: str) -> None:
        # close_timeout bounds the whole closing handshake, including a wait
        # for the write lock behind a send stuck on a slow peer.
        self._start_close_timer()
        # The peer's close frame may sit behind unread messages: stop
        # pausing so that the closing handshake can finish.
        self._messages.release()
        with trio.CancelScope(deadline=self._reader_scope.deadline):
            # Not OPEN any more: the peer's close frame or another aclose
            # came first, and the reader finishes the handshake.
            with contextlib.suppress(ConnectionClosed):
                await self._write(lambda protocol: protocol.send_close(code, reason))

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (state CLOSED).

        Cancellation:
            Safe; nothing changes.
        """
        await self._closed.wait()

    async def _fail(self, code: int, reason: str) -> None:
        """Fail the connection: best-effort close frame, then close TCP now."""
        protocol = self._proto
        protocol.fail(code, reason, cause=None)
        self._end()
        # Best effort: a peer presumed dead gets no close_timeout grace. A
        # write in progress (the reader's pong, a frame of a send) may end
        # within FAIL_WRITE_TIMEOUT of its start; one stuck longer means the
        # peer is not reading, and a frame cut part-way can't be followed by
        # a close frame (RFC 6455 5.2).
        deadline = trio.current_time() + FAIL_WRITE_TIMEOUT
        if self._writing_since is not None:
            deadline = min(deadline, self._writing_since + FAIL_WRITE_TIMEOUT)
        with trio.CancelScope(deadline=deadline, shield=True):
            async with self._write_lock:
                # CLOSED: that write was cut part-way, or the transport broke.
                if protocol.state is not State.CLOSED:
                    with contextlib.suppress(
                        trio.BrokenResourceError, trio.ClosedResourceError
                    ):
                        await self._stream.send_all(protocol.data_to_send())
        self._abort(None)

    async def _close_on_exit(self, exc: BaseException | None) -> None:
        """Close when the owner's code ends, with 1000, 1001 or 1011.

        Runs shielded, so that a cancelled owner still sends its close frame;
        ``close_timeout`` bounds it.
        """
        if exc is None:
            code, reason = 1000, ""
        elif isinstance(exc, (trio.Cancelled, KeyboardInterrupt, SystemExit)) or (
            isinstance(exc, BaseExceptionGroup)
            and exc.split((trio.Cancelled, KeyboardInterrupt, SystemExit))[1] is None
        ):
            code, reason = 1001, ""
        else:
            code, reason = 1011, ""
        with trio.CancelScope(shield=True):
            try:
                await self.aclose(code, reason)
            finally:
                self._stop()

    # --- Keepalive -----------------------------------------------------------

    async def _run_heartbeat(self) -> None:
        """Ping every ``ping_interval``; fail the connection without a pong.

        No pong within ``ping_timeout`` (a clock stopped while flow control
        pauses the reader) is logged at INFO and fails the connection with
        1011, close frame sent best effort: ``sent 1011 (internal error)
        keepalive ping timeout; no close frame received``. If the timeout
        cuts the ping itself part-way through its write (behind a peer that
        stopped reading), the cut has aborted the connection and no close
        frame can follow the partial frame: the timeout is logged at INFO
        all the same, and the closure reads ``no close frame received or
        sent`` (code 1006), chained to ``TimeoutError("keepalive ping
        timeout")``, itself chained to the cut write.
        """
        assert self.ping_interval is not None  # else not started
        timeout = math.inf if self.ping_timeout is None else self.ping_timeout
        sent_at = trio.current_time()
        while True:
            # Every ping_interval, or right after a pong slower than that.
            await trio.sleep_until(sent_at + self.ping_interval)
            # ping_timeout covers sending the ping too: behind a send stuck
            # on a peer that stopped reading, the ping never goes out.
            waiter = PingWaiter()
            written = False
            clock = self._pong_clock.running(timeout, paused=self._messages.paused)
            with clock as scope:
                try:
                    await self._send_ping(waiter, None)
                    written = True
                    sent_at = waiter.sent_at
                    await waiter.event.wait()
                except ConnectionClosed:
                    return
            if not scope.cancelled_caught:
                continue
            # The ping was made and its write cut part-way: _send_all has
            # aborted the connection already.
            cut = waiter.payload is not None and not written
            if self._closing() and not cut:
                return  # the closing handshake took over meanwhile
            self.logger.info("keepalive ping timeout; failing connection %s", self.id)
            if cut:
                # Say why in the closure's cause.
                protocol = self._proto
                error = TimeoutError("keepalive ping timeout")
                error.__cause__ = protocol.failure
                protocol.failure = error
            else:
                await self._fail(1011, "keepalive ping timeout")
            return

    def _closing(self) -> bool:
        # A method, not an inline test: the state changes across awaits.
        return self._proto.state is not State.OPEN

    # --- Context manager -----------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._close_on_exit(exc_value)


def _socket_address(stream: trio.abc.Stream, method: str) -> object:
    # SSLStream wraps the SocketStream in transport_stream.
    while isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    if isinstance(stream, trio.SocketStream):
        try:
            return getattr(stream.socket, method)()
        except OSError:
            return None
    return None
