"""Helpers for testing code that uses trio_ws, without sockets.

:func:`open_connection_pair` connects a :class:`~trio_ws.ClientConnection`
to a :class:`~trio_ws.ServerConnection` over memory, with the real opening
handshake; each end's :class:`MemoryTransport` can then misbehave: stop
reading (a silent peer), read slowly, or reset the connection. Everything
waits on trio's clock, so tests run under pytest-trio's ``autojump_clock``.

The pytest fixtures of :mod:`trio_ws.testing.pytest_plugin` wrap these; this
module itself does not import pytest.
"""

from __future__ import annotations

from ._pair import (
    ConnectionPair as ConnectionPair,
    open_connection_pair as open_connection_pair,
)
from ._transport import (
    DEFAULT_BUFFER_SIZE as DEFAULT_BUFFER_SIZE,
    MemoryTransport as MemoryTransport,
    memory_transport_pair as memory_transport_pair,
)

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "ConnectionPair",
    "MemoryTransport",
    "memory_transport_pair",
    "open_connection_pair",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("trio_ws.testing."):
        _obj.__module__ = "trio_ws.testing"
del _name, _obj
