"""Small helpers shared by the client and the server."""

from __future__ import annotations

import math
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

import trio

if sys.version_info < (3, 11):  # pragma: no cover - trio installs the backport
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
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


@contextmanager
def collapse_groups() -> Iterator[None]:
    """Let a lone exception out of a nursery as itself, not in a group.

    A connection's reader and heartbeat never raise, so an exception leaving
    its nursery comes from the user's code, alone, maybe beside the
    :exc:`trio.Cancelled` of tasks cancelled with it. It is re-raised
    unwrapped, with its own ``__context__`` kept (raising it here would
    otherwise chain it to the group). Two errors at once can only come from
    a bug in trio_ws, reported as :class:`InternalError`.
    """
    try:
        yield
    except BaseExceptionGroup as group:
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


@asynccontextmanager
async def running(ws: Connection, nursery: trio.Nursery) -> AsyncIterator[None]:
    """Run an open connection's tasks in ``nursery`` while the block runs.

    The block is the owner's code (the body of ``connect``, a handler).
    Leaving it closes the connection with 1000, 1011 if it raised or 1001 if
    it was cancelled (shielded, bounded by ``close_timeout``), then cancels
    ``nursery``, where the heartbeat would run on.
    """
    ws._start(nursery)
    async with closing_on_exit(ws._close_on_exit, nursery):
        yield


@asynccontextmanager
async def closing_on_exit(
    close: Callable[[BaseException | None], Awaitable[None]], nursery: trio.Nursery
) -> AsyncIterator[None]:
    """Call ``close`` when the owner's block ends, then cancel ``nursery``.

    ``close`` gets the exception that ended the block, or ``None``, and
    picks the close code from it (``Connection._close_on_exit``): what
    ``running`` does for one connection, and ``reconnect`` for whichever
    connection is current.
    """
    try:
        yield
    except BaseException as exc:
        await close(exc)
        raise
    else:
        await close(None)
    finally:
        nursery.cancel_scope.cancel()
