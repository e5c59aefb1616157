"""pytest fixtures for testing code that uses trio_ws (needs pytest-trio).

Enable them in a ``conftest.py``::

    pytest_plugins = ["trio_ws.testing.pytest_plugin"]

Each fixture yields a :class:`~trio_ws.testing.ConnectionPair` made by
:func:`~trio_ws.testing.open_connection_pair` with default options, and
closes it after the test. Combine them with pytest-trio's ``autojump_clock``
fixture: timeouts then take no real time.

* ``ws_pair``: a client and a server connection, both well-behaved.
* ``silent_client``: the client stops reading right after the handshake: it
  answers no ping and reads no message, and once the transport's buffer is
  full the server's sends wait.
* ``slow_client``: the client reads at most 1024 bytes every 0.1 second.
* ``resetting_client``: the client resets the TCP connection right after the
  handshake: the server's next ``recv`` raises
  :exc:`~trio_ws.ConnectionClosedError` (``no close frame received or sent``).

For a misbehaving server, use ``ws_pair`` and call the same methods on
``ws_pair.server_transport``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ._pair import ConnectionPair, open_connection_pair

__all__ = ["resetting_client", "silent_client", "slow_client", "ws_pair"]


@pytest.fixture
async def ws_pair() -> AsyncIterator[ConnectionPair]:
    """A connected client and server over memory."""
    async with open_connection_pair() as pair:
        yield pair


@pytest.fixture
async def silent_client() -> AsyncIterator[ConnectionPair]:
    """A pair whose client stopped reading right after the handshake."""
    async with open_connection_pair() as pair:
        pair.client_transport.pause_reading()
        yield pair
        # Let the closing handshake through, without autojump_clock too.
        pair.client_transport.resume_reading()


@pytest.fixture
async def slow_client() -> AsyncIterator[ConnectionPair]:
    """A pair whose client reads at most 1024 bytes every 0.1 second."""
    async with open_connection_pair() as pair:
        pair.client_transport.throttle_reading(1024, 0.1)
        yield pair
        pair.client_transport.resume_reading()


@pytest.fixture
async def resetting_client() -> AsyncIterator[ConnectionPair]:
    """A pair whose client reset the connection right after the handshake."""
    async with open_connection_pair() as pair:
        pair.client_transport.reset()
        yield pair
