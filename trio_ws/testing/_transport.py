"""An in-memory, bounded, misbehaving-on-demand transport.

Theory of operation
-------------------

:func:`memory_transport_pair` links two :class:`MemoryTransport` ends with
two one-way :class:`_Pipe` buffers. Unlike :func:`trio.testing.memory_stream_pair`,
whose writes never block, each pipe holds at most ``buffer_size`` bytes: a
writer waits while the pipe is full, as a TCP sender waits on a full window.
That is what makes a peer that stops reading push back on the other side.

Every wait is on a :class:`trio.lowlevel.ParkingLot` or on trio's clock, never
on real I/O, so the transports run under ``autojump_clock`` and virtual time
is exact. Each end can misbehave:

* :meth:`MemoryTransport.pause_reading` stops its reads (a silent peer: its
  connection stops answering pings and reading messages);
* :meth:`MemoryTransport.throttle_reading` lets through at most so many bytes
  per interval (a slow reader);
* :meth:`MemoryTransport.reset` breaks both pipes, as a TCP reset does: reads
  and writes on either end raise :exc:`trio.BrokenResourceError`.
"""

from __future__ import annotations

import math
from typing import Final, final

import trio

__all__ = ["DEFAULT_BUFFER_SIZE", "MemoryTransport", "memory_transport_pair"]

#: Bytes each direction holds before a writer waits (a modest TCP window).
DEFAULT_BUFFER_SIZE: Final = 65536


class _Pipe:
    """One direction: a bounded byte buffer with EOF and reset."""

    __slots__ = ("buffer", "capacity", "eof", "lot", "reset")

    def __init__(self, capacity: int) -> None:
        self.buffer: bytearray = bytearray()
        self.capacity: int = capacity
        #: The writer closed its end: readers see EOF once the buffer drains.
        self.eof: bool = False
        #: Reset, or the reader closed its end: writes fail, reads fail.
        self.reset: bool = False
        # Readers and writers both wait here; every change wakes them all.
        self.lot: trio.lowlevel.ParkingLot = trio.lowlevel.ParkingLot()

    def changed(self) -> None:
        """Wake every reader and writer: something changed."""
        self.lot.unpark_all()


@final
class MemoryTransport(trio.abc.Stream):
    """One end of an in-memory transport made by :func:`memory_transport_pair`.

    It is a :class:`trio.abc.Stream` whose writes wait while the other end's
    buffer is full, and which can be told to misbehave: stop reading, read
    slowly, or reset the connection. Misbehaviour applies to this end: a
    paused end stops reading what the other end writes.
    """

    def __init__(self, incoming: _Pipe, outgoing: _Pipe) -> None:
        self._in = incoming
        self._out = outgoing
        self._closed = False
        self._sending = False
        self._receiving = False
        self._paused = False
        self._throttle: tuple[int, float] | None = None
        self._next_read = -math.inf

    # --- Misbehaviour --------------------------------------------------------

    def pause_reading(self) -> None:
        """Stop reading: :meth:`receive_some` waits until :meth:`resume_reading`.

        A connection on a paused end neither reads messages nor answers
        pings; once the buffer fills, the other end's writes wait.
        """
        self._paused = True

    def resume_reading(self) -> None:
        """Undo :meth:`pause_reading` (and :meth:`throttle_reading`)."""
        self._paused = False
        self._throttle = None
        self._in.changed()

    def throttle_reading(self, max_bytes: int, interval: float) -> None:
        """Read at most ``max_bytes`` per read, one read every ``interval`` seconds.

        Args:
            max_bytes: The most bytes one :meth:`receive_some` returns.
            interval: Seconds of trio's clock between two reads.

        Raises:
            ValueError: ``max_bytes`` is not positive or ``interval`` is negative.
        """
        if max_bytes < 1 or interval < 0:
            msg = "throttle_reading needs max_bytes >= 1 and interval >= 0"
            raise ValueError(msg)
        self._throttle = (max_bytes, interval)
        self._in.changed()

    def reset(self) -> None:
        """Break the connection in both directions, as a TCP reset does.

        Pending and later reads and writes on both ends raise
        :exc:`trio.BrokenResourceError`; buffered data is lost.
        """
        for pipe in (self._in, self._out):
            pipe.reset = True
            pipe.buffer.clear()
            pipe.changed()

    # --- trio.abc.Stream -----------------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write ``data``, waiting while the other end's buffer is full.

        Raises:
            trio.BusyResourceError: Another task is writing.
            trio.ClosedResourceError: This end is closed.
            trio.BrokenResourceError: The connection was reset or the other
                end is closed.

        Cancellation:
            As with TCP, a write cancelled part-way may have written a prefix
            of ``data``.
        """
        if self._sending:
            msg = "another task is writing to this transport"
            raise trio.BusyResourceError(msg)
        self._sending = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            view = memoryview(data).cast("B")
            pipe = self._out
            while True:
                self._check_open()
                if pipe.reset:
                    msg = "connection reset"
                    raise trio.BrokenResourceError(msg)
                room = pipe.capacity - len(pipe.buffer)
                if room > 0 and view:
                    pipe.buffer += view[:room]
                    view = view[room:]
                    pipe.changed()
                if not view:
                    break
                await pipe.lot.park()
            await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the other end's buffer has room."""
        pipe = self._out
        while not self._closed and not pipe.reset:
            if len(pipe.buffer) < pipe.capacity:
                break
            await pipe.lot.park()
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Read what the other end wrote; ``b""`` once it closed its end.

        Raises:
            ValueError: ``max_bytes`` is below 1.
            trio.BusyResourceError: Another task is reading.
            trio.ClosedResourceError: This end is closed.
            trio.BrokenResourceError: The connection was reset.

        Cancellation:
            Safe: a cancelled read consumes nothing.
        """
        if max_bytes is not None and max_bytes < 1:
            msg = "max_bytes must be at least 1"
            raise ValueError(msg)
        if self._receiving:
            msg = "another task is reading from this transport"
            raise trio.BusyResourceError(msg)
        self._receiving = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            pipe = self._in
            while True:
                self._check_open()
                if pipe.reset:
                    msg = "connection reset"
                    raise trio.BrokenResourceError(msg)
                if self._paused:
                    await pipe.lot.park()
                    continue
                limit = self._read_limit(max_bytes)
                if pipe.buffer and self._next_read > trio.current_time():
                    await trio.sleep_until(self._next_read)
                    continue
                if pipe.buffer:
                    data = bytes(pipe.buffer[:limit])
                    del pipe.buffer[:limit]
                    pipe.changed()
                    if self._throttle is not None:
                        self._next_read = trio.current_time() + self._throttle[1]
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    return data
                if pipe.eof:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    return b""
                await pipe.lot.park()
        finally:
            self._receiving = False

    def _read_limit(self, max_bytes: int | None) -> int:
        limit = math.inf if max_bytes is None else max_bytes
        if self._throttle is not None:
            limit = min(limit, self._throttle[0])
        return len(self._in.buffer) if limit == math.inf else int(limit)

    def _check_open(self) -> None:
        if self._closed:
            msg = "this transport is closed"
            raise trio.ClosedResourceError(msg)

    async def aclose(self) -> None:
        """Close this end: the other end reads EOF, then its writes fail."""
        if not self._closed:
            self._closed = True
            self._out.eof = True
            # Nobody will read what is in flight towards this end.
            self._in.reset = True
            self._in.buffer.clear()
            self._out.changed()
            self._in.changed()
        await trio.lowlevel.checkpoint()


def memory_transport_pair(
    buffer_size: int = DEFAULT_BUFFER_SIZE,
) -> tuple[MemoryTransport, MemoryTransport]:
    """Make two linked :class:`MemoryTransport` ends.

    Args:
        buffer_size: Bytes each direction holds before a writer waits.

    Returns:
        ``(left, right)``: what one writes, the other reads.

    Raises:
        ValueError: ``buffer_size`` is not positive.
    """
    if buffer_size < 1:
        msg = "buffer_size must be at least 1"
        raise ValueError(msg)
    left_to_right = _Pipe(buffer_size)
    right_to_left = _Pipe(buffer_size)
    return (
        MemoryTransport(right_to_left, left_to_right),
        MemoryTransport(left_to_right, right_to_left),
    )
