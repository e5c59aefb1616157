"""A client that reconnects with backoff: :func:`reconnect`.

Theory of operation
-------------------

An async generator cannot hold a connection open across its ``yield`` in
trio (its nursery would outlive the frame that iterates it), so
:func:`reconnect` is an async context manager that owns a nursery and yields
an async iterator. Each ``__anext__`` closes the previous connection if it is
still open, waits out the backoff delay, and opens the next connection with
:func:`~trio_ws._bound.start_connection` in that nursery, so the connection
lives until the next iteration or the end of the block.

Delays: the first connection is attempted at once. Before reconnecting
after a connection ended, and after the first failed attempt, the delay is
``min_delay``; each further failure multiplies it by ``factor``, up to
``max_delay``; a successful opening starts over. Each delay is scaled by a
random factor in ``[1 - jitter, 1]`` so that many clients do not reconnect in
lockstep.
"""

from __future__ import annotations

import logging
import random
import ssl as ssl_module
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final, Literal, final

import trio

from ._bound import Connector, connector_for, start_connection
from ._client import ClientConnection  # noqa: TC001 - autodoc evaluates annotations
from ._exceptions import InvalidHandshake, InvalidStatus
from ._handshake import DEFAULT_USER_AGENT
from ._protocol import State
from ._util import closing_on_exit, collapse_groups

if TYPE_CHECKING:
    import os

    from typing_extensions import Self

    from ._connection import ConnectionFactory, LoggerLike
    from ._http import HeadersLike

__all__ = ["reconnect", "retryable"]

#: Responses worth retrying: too many requests, and server-side failures.
_RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
# A module-level generator, so that tests can make the jitter predictable.
_random = random.Random()


def retryable(exc: Exception) -> bool:
    """The default retry policy of :func:`reconnect`.

    Retried: network errors (:exc:`OSError`, including :exc:`TimeoutError`
    and TLS errors, except certificate verification failures), a connection
    lost during the opening handshake, and :exc:`~trio_ws.InvalidStatus`
    with status 429, 500, 502, 503 or 504. Anything else (a bad URI, another
    status, a negotiation failure) would fail again and is raised.

    Args:
        exc: What opening a connection raised.

    Returns:
        Whether to try again.
    """
    if isinstance(exc, ssl_module.SSLCertVerificationError):
        return False
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, InvalidStatus):
        return exc.response.status_code in _RETRY_STATUSES
    if type(exc) is InvalidHandshake:
        return isinstance(exc.__cause__, trio.BrokenResourceError)
    return False


@final
class _Connections:
    """The async iterator yielded by :func:`reconnect`."""

    def __init__(
        self,
        nursery: trio.Nursery,
        connector: Connector,
        *,
        min_delay: float,
        max_delay: float,
        factor: float,
        jitter: float,
        should_retry: Callable[[Exception], bool],
        logger: LoggerLike,
    ) -> None:
        self._nursery = nursery
        self._connector = connector
        self._min_delay = min_delay
        self._max_delay = max_delay
        self._factor = factor
        self._jitter = jitter
        self._should_retry = should_retry
        self._logger = logger
        self._ws: ClientConnection | None = None
        self._started = False
        self._failures = 0

    def __aiter__(self) -> Self:
        return self

    def _delay(self) -> float:
        # min_delay before the first retry, then factor times longer each time.
        exponent = max(0, self._failures - 1)
        delay = min(self._max_delay, self._min_delay * self._factor**exponent)
        return delay * (1 - self._jitter * _random.random())

    async def __anext__(self) -> ClientConnection:
        """Close the previous connection, wait, and open the next one."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._ws is not None:
            ws, self._ws = self._ws, None
            await ws.aclose()
        while True:
            if self._started:
                delay = self._delay()
                self._logger.info("reconnecting in %.3g seconds", delay)
                await trio.sleep(delay)
            self._started = True
            try:
                ws = await start_connection(self._nursery, self._connector)
            except Exception as exc:
                if not self._should_retry(exc):
                    raise
                self._logger.info("connection attempt failed: %r", exc)
                self._failures += 1
                continue
            self._failures = 0
            self._ws = ws
            return ws

    async def _close(self, exc: BaseException | None) -> None:
        """Close the current connection as ``connect`` would at block exit."""
        ws = self._ws
        if ws is not None and ws.state is not State.CLOSED:
            await ws._close_on_exit(exc)


@asynccontextmanager
async def reconnect(
    uri: str,
    *,
    min_delay: float = 1.0,
    max_delay: float = 60.0,
    factor: float = 2.0,
    jitter: float = 0.5,
    retry: Callable[[Exception], bool] = retryable,
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
) -> AsyncIterator[AsyncIterator[ClientConnection]]:
    """Connect again and again, with exponential backoff and jitter.

    ::

        async with trio_ws.reconnect("ws://example.com/feed") as connections:
            async for ws in connections:
                try:
                    async for message in ws:
                        process(message)
                except trio_ws.ConnectionClosed:
                    continue  # the next iteration reconnects

    Each iteration yields a new open connection; the body uses it until it
    is done with it. The next iteration closes it (1000) if it is still open,
    waits, and connects again; it never ends on its own: ``break`` out of
    the loop, or cancel it (``with trio.move_on_after(...)``). Leaving the
    ``async with`` block closes the current connection like leaving a
    :func:`~trio_ws.connect` block (1000, 1001 if cancelled, 1011 if the
    block raised); the connection's tasks run in a nursery the block owns.

    The first attempt is immediate. Before reconnecting once a connection
    ended, and after the first failed attempt, the iteration waits
    ``min_delay`` seconds; each further failed attempt multiplies the delay
    by ``factor``, up to ``max_delay`` (1, 2, 4, 8... seconds by default),
    and a successful opening starts over. Each delay is multiplied by a
    random factor between ``1 - jitter`` and 1. Failures that ``retry`` rejects are
    raised by the iteration; the default, :func:`~trio_ws.retryable`, retries
    network errors, timeouts and 429 or 5xx responses. Each attempt and delay
    is logged at INFO.

    Args:
        uri: As for :func:`~trio_ws.connect`.
        min_delay: The first delay, in seconds.
        max_delay: The longest delay, in seconds.
        factor: How much each failed attempt multiplies the delay by.
        jitter: The fraction of each delay that is random, from 0 (none)
            to 1 (anything between 0 and the delay).
        retry: ``retry(exc)`` says whether to try again after ``exc``.
        subprotocols: As for :func:`~trio_ws.connect`.
        additional_headers: As for :func:`~trio_ws.connect`.
        user_agent_header: As for :func:`~trio_ws.connect`.
        origin: As for :func:`~trio_ws.connect`.
        compression: As for :func:`~trio_ws.connect`.
        ssl: As for :func:`~trio_ws.connect`.
        proxy: As for :func:`~trio_ws.connect`.
        unix_socket_path: As for :func:`~trio_ws.connect`.
        open_timeout: As for :func:`~trio_ws.connect`, for each attempt.
        max_redirects: As for :func:`~trio_ws.connect`, for each attempt.
        ping_interval: As for :func:`~trio_ws.connect`.
        ping_timeout: As for :func:`~trio_ws.connect`.
        close_timeout: As for :func:`~trio_ws.connect`.
        max_size: As for :func:`~trio_ws.connect`.
        max_queue: As for :func:`~trio_ws.connect`.
        create_connection: As for :func:`~trio_ws.connect`.
        logger: As for :func:`~trio_ws.connect`; attempts are logged there.

    Yields:
        An async iterator of open connections.

    Raises:
        ValueError: A delay is negative, ``factor`` is below 1 or ``jitter``
            is outside ``[0, 1]``.

    Cancellation:
        Cancelling an iteration while it waits or connects leaves no
        connection behind; the next iteration goes on with the same
        backoff. Cancelling the block closes the current connection with
        1001, bounded by ``close_timeout``.
    """
    if min_delay < 0 or max_delay < min_delay or factor < 1 or not 0 <= jitter <= 1:
        msg = "reconnect() needs 0 <= min_delay <= max_delay, factor >= 1, 0 <= jitter <= 1"
        raise ValueError(msg)
    # connect()'s options as given: read before any parameter is reassigned.
    connector = connector_for(uri, locals())
    async with open_connections(
        connector,
        min_delay=min_delay,
        max_delay=max_delay,
        factor=factor,
        jitter=jitter,
        retry=retry,
        logger=logger or logging.getLogger("trio_ws.client"),
    ) as connections:
        yield connections


@asynccontextmanager
async def open_connections(
    connector: Connector,
    *,
    min_delay: float,
    max_delay: float,
    factor: float,
    jitter: float,
    retry: Callable[[Exception], bool],
    logger: LoggerLike,
) -> AsyncIterator[AsyncIterator[ClientConnection]]:
    """:func:`reconnect` for any ``connector``, e.g. one over memory in tests."""
    with collapse_groups():
        async with trio.open_nursery() as nursery:
            connections = _Connections(
                nursery,
                connector,
                min_delay=min_delay,
                max_delay=max_delay,
                factor=factor,
                jitter=jitter,
                should_retry=retry,
                logger=logger,
            )
            async with closing_on_exit(connections._close, nursery):
                yield connections
