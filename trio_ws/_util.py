"""Small helpers shared by the client and the server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

if sys.version_info < (3, 11):  # pragma: no cover - trio installs the backport
    from exceptiongroup import BaseExceptionGroup

__all__ = ["InternalError", "collapse_groups"]


class InternalError(RuntimeError):
    """Several errors escaped a connection's nursery at once: a trio_ws bug."""


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The only leaf exception of ``group``, through nested groups, or ``None``."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        if len(exc.exceptions) != 1:
            return None
        exc = exc.exceptions[0]
    return exc


@contextmanager
def collapse_groups() -> Iterator[None]:
    """Let a lone exception out of a nursery as itself, not in a group.

    A connection's reader and heartbeat never raise, so an exception leaving
    its nursery comes from the user's code, alone. It is re-raised unwrapped,
    with its own ``__context__`` kept (raising it here would otherwise chain
    it to the group). Two or more at once can only come from a bug in
    trio_ws, reported as :class:`InternalError`.
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
