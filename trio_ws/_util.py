"""Small helpers shared by the client and the server."""

from __future__ import annotations

import math
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

if sys.version_info < (3, 11):  # pragma: no cover - trio installs the backport
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from types import TracebackType

    from ._connection import Connection

__all__ = ["InternalError", "closing_on_exit", "collapse_groups", "running", "seconds"]


def seconds(timeout: float | None) -> float:
    """A timeout option as trio takes it: ``None`` (no limit) is infinity."""
    return math.inf if timeout is None else timeout


class InternalError(RuntimeError):
    """Several errors escaped a connection's nursery at once: a trio_ws bug."""


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception that ``group`` stands for, or ``None`` if several.

    A cancelled owner gets one :exc:`trio.Cancelled` from each of its tasks;
    they stand for a single cancellation, and give way to any other error.
    Nested groups are not opened: one raised by user code comes out as
    itself, and trio_ws collapses each of its own nurseries.
    """
    errors = [exc for exc in group.exceptions if not isinstance(exc, trio.Cancelled)]
    if not errors:
        return group.exceptions[0]
    if len(errors) == 1:
        return errors[0]
    return None


class collapse_groups:  # named like the function it replaced
    """Let a lone exception out of a nursery as itself, not in a group.

    A connection's reader and heartbeat never raise, so an exception leaving
    its nursery comes from the user's code, alone, maybe beside the
    :exc:`trio.Cancelled` of tasks cancelled with it. It is re-raised
    unwrapped, with its own ``__context__`` kept (raising it here would
    otherwise chain it to the group). Two errors at once can only come from
    a bug in trio_ws, reported as :class:`InternalError`.

    A class rather than a generator-based context manager: it lives as long
    as a connection, and a suspended generator costs memory per connection.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        group: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not isinstance(group, BaseExceptionGroup):
            return
        exc = _single(group)
        if exc is None:
            msg = "several errors escaped a trio_ws connection; please report this bug"
            raise InternalError(msg) from group
        context = exc.__context__
        try:
            raise exc
        finally:
            exc.__context__ = context
            del exc, group, context


def running(ws: Connection, nursery: trio.Nursery) -> closing_on_exit:
    """Run an open connection's tasks in ``nursery`` while the block runs.

    The block is the owner's code (the body of ``connect``, a handler).
    Leaving it closes the connection with 1000, 1011 if it raised or 1001 if
    it was cancelled (shielded, bounded by ``close_timeout``), then cancels
    ``nursery``, where the heartbeat would run on.
    """
    return closing_on_exit(ws._close_on_exit, nursery, start=ws._start)


class closing_on_exit:  # named like the function it replaced
    """Call ``close`` when the owner's block ends, then cancel ``nursery``.

    ``close`` gets the exception that ended the block, or ``None``, and
    picks the close code from it (``Connection._close_on_exit``): what
    ``running`` does for one connection, and ``reconnect`` for whichever
    connection is current. ``start``, if given, is called with ``nursery``
    on entering the block. A class for the reason given in
    :class:`collapse_groups`.
    """

    __slots__ = ("_close", "_nursery", "_start")

    def __init__(
        self,
        close: Callable[[BaseException | None], Awaitable[None]],
        nursery: trio.Nursery,
        *,
        start: Callable[[trio.Nursery], None] | None = None,
    ) -> None:
        self._close = close
        self._nursery = nursery
        self._start = start

    async def __aenter__(self) -> None:
        if self._start is not None:
            self._start(self._nursery)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await self._close(exc)
        finally:
            self._nursery.cancel_scope.cancel()
