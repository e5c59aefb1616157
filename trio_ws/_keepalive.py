"""Pings waiting for their pongs, and the pong clock that flow control stops.

:class:`Pings` keeps the pings that a connection sent and that no pong
answered yet, in the order they were sent: RFC 6455 section 5.5.3 lets an
endpoint answer only the most recent ping, so a pong acknowledges its own
ping and every earlier one.

:class:`PongClock` runs the heartbeat's ``ping_timeout``. When ``max_queue``
is full the reader stops reading, and a pong may wait unread behind messages
the application has not taken: the clock stops until the reader resumes, so
that a slow consumer is not mistaken for a dead peer.

What a timeout does is ``Connection._run_heartbeat``'s docstring: a 1011
close frame sent best effort, or, when the timeout cuts the ping's own write
part-way, no close frame and a closure chained to ``TimeoutError``; logged
at INFO either way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, final

import trio

from ._protocol import control_payload as _checked

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["PingWaiter", "Pings", "PongClock", "control_payload"]


def control_payload(data: str | Buffer | None) -> bytes:
    """The payload of a ping or pong: UTF-8 for a ``str``, random if ``None``.

    Raises:
        ValueError: The payload is over 125 bytes (RFC 6455 section 5.5).
    """
    if data is None:
        return os.urandom(4)
    return _checked(data.encode() if isinstance(data, str) else data)


@final
class PingWaiter:
    """One ping: when it was sent, and its round-trip time once answered.

    :attr:`event` is set when a pong acknowledges the ping (:attr:`rtt` is
    then set) or when the connection closes (:attr:`rtt` stays ``None``).
    """

    __slots__ = ("event", "payload", "rtt", "sent_at")

    def __init__(self) -> None:
        #: The ping's payload, once its frame is made (``None`` before).
        self.payload: bytes | None = None
        self.sent_at = 0.0
        self.rtt: float | None = None
        self.event = trio.Event()


@final
class Pings:
    """The pings waiting for a pong, in the order they were sent."""

    def __init__(self) -> None:
        self._waiters: dict[bytes, PingWaiter] = {}

    def __len__(self) -> int:
        return len(self._waiters)

    def unused_payload(self) -> bytes:
        """Four random bytes that no waiting ping uses.

        Random payloads collide once in 2**32, which :meth:`add` would
        refuse: draw again rather than fail a ping nobody chose the data of.
        """
        while (payload := os.urandom(4)) in self._waiters:
            pass
        return payload

    def add(self, payload: bytes, waiter: PingWaiter) -> None:
        """Register ``waiter`` for a ping with ``payload``, sent now.

        Raises:
            RuntimeError: A ping with the same payload is already waiting.
        """
        if payload in self._waiters:
            msg = "already waiting for a pong with the same data"
            raise RuntimeError(msg)
        waiter.payload = payload
        waiter.sent_at = trio.current_time()
        self._waiters[payload] = waiter

    def forget(self, waiter: PingWaiter) -> None:
        """Stop waiting for ``waiter``'s pong (if another ping did not take the payload)."""
        payload = waiter.payload
        if payload is not None and self._waiters.get(payload) is waiter:
            del self._waiters[payload]

    def acknowledge(self, pong: bytes) -> float | None:
        """Wake the ping that ``pong`` answers and every earlier one.

        Returns:
            The round-trip time of the ping answered, or ``None`` for an
            unsolicited pong (or one whose ping gave up waiting).
        """
        waiter = self._waiters.get(pong)
        if waiter is None:
            return None
        now = trio.current_time()
        payloads = list(self._waiters)
        for payload in payloads[: payloads.index(pong) + 1]:
            earlier = self._waiters.pop(payload)
            earlier.rtt = now - earlier.sent_at
            earlier.event.set()
        return waiter.rtt

    def end(self) -> None:
        """The connection closed: wake every waiter, without a round-trip time."""
        for waiter in self._waiters.values():
            waiter.event.set()
        self._waiters.clear()


@final
class PongClock:
    """The deadline of the pong the heartbeat waits for, paused with the reader."""

    def __init__(self) -> None:
        self._scope: trio.CancelScope | None = None
        self._remaining = 0.0

    @contextmanager
    def running(self, timeout: float, *, paused: bool) -> Iterator[trio.CancelScope]:
        """A cancel scope that expires ``timeout`` seconds of reading from now.

        Args:
            timeout: Seconds, :data:`math.inf` for no limit.
            paused: Whether the reader is paused now (the clock starts
                stopped).
        """
        with trio.CancelScope() as scope:
            self._scope = scope
            self._remaining = timeout
            if not paused:
                scope.deadline = trio.current_time() + timeout
            try:
                yield scope
            finally:
                self._scope = None

    def pause(self) -> None:
        """The reader stopped reading: stop the clock."""
        scope = self._scope
        if scope is not None:
            self._remaining = max(0.0, scope.deadline - trio.current_time())
            scope.deadline = float("inf")

    def resume(self) -> None:
        """The reader reads again: the clock goes on with the time left."""
        scope = self._scope
        if scope is not None:
            scope.deadline = trio.current_time() + self._remaining
