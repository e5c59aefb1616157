"""The receive buffer between a connection's reader task and ``recv``.

The reader puts complete messages in; ``recv`` takes them out one at a time.
Flow control follows wsproto's advice (``docs/source/advanced-usage.rst``):
once ``max_queue`` messages wait, the reader stops reading the socket, so a
slow consumer pushes back on the sender through TCP instead of growing memory.
It resumes below the low-water mark, a quarter of ``max_queue``, so that it
does not stop and start on every message.

Taking a message is synchronous once one is there, which is what makes
``recv`` cancellation-safe: a ``recv`` cancelled while waiting has taken
nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import final

import trio

__all__ = ["MessageQueue"]


@final
class MessageQueue:
    """A FIFO of messages with high- and low-water marks.

    Args:
        max_queue: The high-water mark, or ``None`` for no limit.
        on_pause: Called when the reader must stop reading.
        on_resume: Called when it may read again.
    """

    def __init__(
        self,
        max_queue: int | None,
        *,
        on_pause: Callable[[], None] | None = None,
        on_resume: Callable[[], None] | None = None,
    ) -> None:
        if max_queue is not None and max_queue < 1:
            msg = "max_queue must be at least 1 or None"
            raise ValueError(msg)
        # Made on first use, like the parking lots: an idle connection's
        # empty deque alone would take 760 bytes.
        self._queue: deque[str | bytes] | None = None
        self._high = max_queue
        self._low = 0 if max_queue is None else max_queue // 4
        self._on_pause = on_pause
        self._on_resume = on_resume
        self._getters: trio.lowlevel.ParkingLot | None = None
        self._putters: trio.lowlevel.ParkingLot | None = None
        #: Whether the reader is paused because the queue is full.
        self.paused = False
        #: Whether no more messages will be put.
        self.ended = False

    def __len__(self) -> int:
        return 0 if self._queue is None else len(self._queue)

    def put(self, messages: Iterable[str | bytes]) -> None:
        """Append messages and wake a waiting getter."""
        queue = self._queue
        if queue is None:
            queue = self._queue = deque(messages)
        else:
            queue.extend(messages)
        if self._high is not None and len(queue) >= self._high and not self.paused:
            self.paused = True
            if self._on_pause is not None:
                self._on_pause()
        self.wake()

    def get_nowait(self) -> str | bytes:
        """Take the oldest message.

        Raises:
            trio.WouldBlock: The queue is empty.
        """
        queue = self._queue
        if not queue:
            raise trio.WouldBlock
        message = queue.popleft()
        if self.paused and len(queue) <= self._low:
            self._resume()
        return message

    def _resume(self) -> None:
        self.paused = False
        if self._putters is not None:
            self._putters.unpark_all()
        if self._on_resume is not None:
            self._on_resume()

    def wait_readable(self) -> Awaitable[None]:
        """Wait until a message is put or the queue ends.

        ``recv`` calls it only when the queue is empty and not ended.

        Cancellation: cancelling the wait takes nothing from the queue.
        """
        # Returns the parking lot's coroutine rather than awaiting it: one
        # coroutine object less per message.
        if self._getters is None:
            self._getters = trio.lowlevel.ParkingLot()
        return self._getters.park()

    async def wait_writable(self) -> None:
        """Wait until the reader may read again (not paused).

        ``end`` and ``release`` resume the reader, so it never waits past
        them.
        """
        while self.paused:
            if self._putters is None:
                self._putters = trio.lowlevel.ParkingLot()
            await self._putters.park()

    def wake(self) -> None:
        """Wake a waiting getter, if any: it looks at the queue again."""
        if self._getters is not None:
            self._getters.unpark_all()

    def release(self) -> None:
        """Stop flow control for good: the reader must read to the end."""
        self._high = None
        if self.paused:
            self._resume()

    def end(self) -> None:
        """Mark the end of input: waiting getters and putters wake up."""
        self.ended = True
        if self.paused:
            self._resume()
        self.wake()
