"""A toolkit for testing connections: an open connection against a raw peer.

:func:`open_connection` gives an OPEN :class:`~trio_ws.ClientConnection` or
:class:`~trio_ws.ServerConnection` over in-memory streams, without HTTP, run
inside a nursery exactly as ``connect`` and ``serve`` run it; the other end is
a :class:`Peer` that sends hand-built frames and parses what trio_ws wrote, so
tests assert exact bytes::

    async def test_echo(autojump_clock):
        async with open_connection(ServerConnection) as (ws, peer):
            await peer.send_frame(OP_TEXT, b"hi")
            assert await ws.recv() == "hi"
            await ws.send("yo")
            assert await peer.receive_frame() == (OP_TEXT, True, 0, b"yo")

Use it with the ``autojump_clock`` fixture: leaving the block runs the closing
handshake, which waits up to ``close_timeout`` for a peer that stays silent.

The peer can also misbehave: ``peer.stream.aclose()`` drops the TCP
connection, :meth:`Peer.reset` resets it after some bytes,
:meth:`Peer.stall_writes` makes the connection's writes hang part-way, and
``open_connection(stream_pair=trio.testing.lockstep_stream_pair)`` makes the
peer's writes wait for the reader (back-pressure). The ``connection_class``
fixture runs a test once per side.
"""

from __future__ import annotations

import errno
import math
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeAlias, TypeVar

import pytest
import trio
import trio.testing

import trio_ws._client
from trio_ws import ClientConnection, Connection, ServerConnection
from trio_ws._util import collapse_groups, running

from .helpers import MASK, OP_CLOSE, close_payload, frame, parse_frames

__all__ = [
    "SIDES",
    "Frame",
    "MemoryListener",
    "Network",
    "Peer",
    "memory_network",
    "open_connection",
    "route_connect",
]

#: A parsed frame: ``(opcode, fin, rsv, unmasked payload)``.
Frame: TypeAlias = tuple[int, bool, int, bytes]
#: Both connection classes, as the ``connection_class`` fixture gives them.
SIDES = [ClientConnection, ServerConnection]

StreamPair: TypeAlias = Callable[[], tuple[trio.abc.Stream, trio.abc.Stream]]
ConnectionT = TypeVar("ConnectionT", bound=Connection)


class Peer:
    """The raw other end of a connection under test.

    Args:
        stream: The peer's end of the transport.
        ws_stream: The connection's end, for tests that set hooks on it
            (``ws_stream.receive_stream.receive_some_hook`` for a reset).
        client: Whether the peer plays the client: its frames are then
            masked, and it expects the connection's frames unmasked.

    Attributes:
        stream: As above; ``await peer.stream.aclose()`` drops the TCP
            connection (EOF for the reader, broken pipe for writes).
        ws_stream: As above.
        client: As above.
    """

    def __init__(
        self, stream: trio.abc.Stream, ws_stream: trio.abc.Stream, *, client: bool
    ) -> None:
        self.stream = stream
        self.ws_stream = ws_stream
        self.client = client
        self._buffer = bytearray()

    def frame(
        self,
        opcode: int,
        payload: bytes = b"",
        *,
        fin: bool = True,
        rsv: int = 0,
        mask: bool | None = None,
    ) -> bytes:
        """Build a frame as this peer sends it (masked if it is the client).

        ``mask`` overrides the masking, to break RFC 6455 5.1 on purpose.
        """
        if mask is None:
            mask = self.client
        return frame(opcode, payload, fin=fin, rsv=rsv, mask=MASK if mask else None)

    async def send(self, data: bytes) -> None:
        """Write raw bytes to the connection."""
        await self.stream.send_all(data)

    async def send_frame(
        self,
        opcode: int,
        payload: bytes = b"",
        *,
        fin: bool = True,
        rsv: int = 0,
        mask: bool | None = None,
    ) -> None:
        """Build a frame with :meth:`frame` and write it."""
        await self.send(self.frame(opcode, payload, fin=fin, rsv=rsv, mask=mask))

    async def send_close(self, code: int | None = 1000, reason: str = "") -> None:
        """Write a close frame; ``code=None`` sends one without a payload."""
        payload = b"" if code is None else close_payload(code, reason)
        await self.send_frame(OP_CLOSE, payload)

    def stall_writes(self, keep: int) -> None:
        """Let ``keep`` more bytes written by the connection through, then hang.

        The connection's ``send_all`` blocks, as on a TCP connection whose
        peer stopped reading; bytes past ``keep`` never reach the peer, so
        cancelling that write leaves a partial frame on the wire. Closing the
        stream wakes a blocked ``send_all`` with
        :exc:`trio.ClosedResourceError`, as trio's sockets do. Only with
        ``memory_stream_pair``.
        """
        send, receive = self.ws_stream.send_stream, self.stream.receive_stream  # type: ignore[attr-defined]
        closed = trio.Event()

        async def hang() -> None:
            trio.testing.memory_stream_pump(send, receive, max_bytes=keep)
            await closed.wait()
            raise trio.ClosedResourceError("another task closed this stream")

        def close() -> None:
            closed.set()
            send.get_data_nowait()  # the rest is lost with the connection
            trio.testing.memory_stream_pump(send, receive)  # EOF

        send.send_all_hook = hang
        send.close_hook = close

    async def reset(self, data: bytes) -> None:
        """Write ``data``, after which the connection's next read fails.

        The reader gets ``data``, then :exc:`trio.BrokenResourceError`, as
        from a TCP reset; the reader must be waiting for data when this is
        called. Only with ``memory_stream_pair``.
        """

        async def reset() -> None:
            raise trio.BrokenResourceError("connection reset by peer")

        self.ws_stream.receive_stream.receive_some_hook = reset  # type: ignore[attr-defined]
        await self.send(data)

    async def receive_frame(self) -> Frame:
        """Read the next frame the connection wrote.

        Raises:
            AssertionError: The transport closed first, or the frame's mask
                bit breaks RFC 6455 5.1 (clients mask, servers do not).
        """
        while (size := _frame_size(self._buffer)) is None:
            data = await self.stream.receive_some()
            assert data, f"EOF instead of a frame; buffered: {bytes(self._buffer)!r}"
            self._buffer += data
        masked = bool(self._buffer[1] & 0x80)
        assert masked is not self.client, "mask bit breaks RFC 6455 5.1"
        (parsed,) = parse_frames(bytes(self._buffer[:size]))
        del self._buffer[:size]
        return parsed

    async def receive_eof(self) -> None:
        """Assert that the connection closed the transport and wrote nothing more."""
        data = bytes(self._buffer)
        while chunk := await self.stream.receive_some():
            data += chunk
        assert not data, f"data instead of EOF: {data!r}"


def _frame_size(buffer: bytearray) -> int | None:
    """The size of the frame at the start of ``buffer``, if it is all there."""
    if len(buffer) < 2:
        return None
    size = 2 + (4 if buffer[1] & 0x80 else 0)
    length = buffer[1] & 0x7F
    if length == 126:
        if len(buffer) < 4:
            return None
        size += 2
        (length,) = struct.unpack("!H", buffer[2:4])
    elif length == 127:
        if len(buffer) < 10:
            return None
        size += 8
        (length,) = struct.unpack("!Q", buffer[2:10])
    size += length
    return size if len(buffer) >= size else None


@asynccontextmanager
async def open_connection(
    cls: type[ConnectionT] = ServerConnection,  # type: ignore[assignment]
    *,
    stream_pair: StreamPair = trio.testing.memory_stream_pair,
    trailing_data: bytes = b"",
    extensions: Sequence[object] = (),
    ping_interval: float | None = None,
    **options: object,
) -> AsyncIterator[tuple[ConnectionT, Peer]]:
    """Open a connection of class ``cls`` against a raw :class:`Peer`.

    The connection is built on one end of ``stream_pair()``, switched to OPEN
    with ``_open(extensions, trailing_data)`` and started in a
    nursery, as ``connect`` and ``serve`` do after the opening handshake. The
    body of the ``async with`` block plays the user's code: leaving it closes
    the connection with 1000, 1001 if cancelled, or 1011 if it raised (the
    exception comes out unwrapped), waiting at most ``close_timeout``; then
    the reader is stopped and the nursery cancelled.

    Args:
        cls: :class:`~trio_ws.ServerConnection` (the peer plays the client
            and masks its frames) or :class:`~trio_ws.ClientConnection`.
        stream_pair: Makes the transport; ``memory_stream_pair`` (writes never
            block) or ``lockstep_stream_pair`` (writes wait for the reader),
            for back-pressure.
        trailing_data: Bytes the peer sent right behind its handshake.
        extensions: Negotiated extensions, e.g. ``[DeflateParams()]`` from
            ``trio_ws._extensions`` for permessage-deflate.
        ping_interval: Keepalive interval; off unless a test asks for it, so
            that pings do not interleave with the frames a test expects.
        options: Other arguments of the connection (``max_queue``,
            ``ping_timeout``, ``close_timeout``, ``max_size``, ``logger``).

    Yields:
        ``(ws, peer)``.
    """
    ws_stream, peer_stream = stream_pair()
    ws = cls(ws_stream, ping_interval=ping_interval, **options)  # type: ignore[arg-type]
    peer = Peer(peer_stream, ws_stream, client=not ws.is_client)
    ws._open(extensions, trailing_data)  # type: ignore[arg-type]
    # The same lifecycle as connect() and serve().
    with collapse_groups():
        async with trio.open_nursery() as nursery, running(ws, nursery):
            yield ws, peer


@pytest.fixture(params=SIDES, ids=["client", "server"])
def connection_class(request: pytest.FixtureRequest) -> type[Connection]:
    """Each connection class in turn, for tests that hold for both sides."""
    return request.param  # type: ignore[no-any-return]


# --- In-memory network -----------------------------------------------------------


class MemoryListener(trio.abc.Listener[trio.abc.Stream]):
    """A listener handing out one end of a memory stream pair per connection.

    ``stream_pair`` makes each pair: ``memory_stream_pair`` (writes never
    block) or ``lockstep_stream_pair`` (writes wait for the reader).

    Attributes:
        accepted: The server ends handed out, for tests that cut them.
        addresses: The ``(host, port)`` that ``connect`` asked for.
    """

    def __init__(
        self, stream_pair: StreamPair = trio.testing.memory_stream_pair
    ) -> None:
        self._stream_pair = stream_pair
        self._send, self._receive = trio.open_memory_channel[trio.abc.Stream](math.inf)
        self.accepted: list[trio.abc.Stream] = []
        self.addresses: list[tuple[str, int]] = []

    async def connect(self) -> trio.abc.Stream:
        """Open a connection; the client end is returned."""
        await trio.lowlevel.checkpoint()
        client, server = self._stream_pair()
        try:
            self._send.send_nowait(server)
        except trio.BrokenResourceError:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "refused") from None
        return client

    async def accept(self) -> trio.abc.Stream:
        stream = await self._receive.receive()
        self.accepted.append(stream)
        return stream

    async def aclose(self) -> None:
        # Connections still in the backlog are reset, as by a closed socket.
        while True:
            try:
                stream = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.ClosedResourceError):
                break
            await trio.aclose_forcefully(stream)
        self._receive.close()
        await trio.lowlevel.checkpoint()


def route_connect(
    monkeypatch: pytest.MonkeyPatch,
    open_stream: Callable[[str, int], Awaitable[trio.abc.Stream]],
) -> None:
    """Make ``trio_ws.connect`` get its TCP stream from ``open_stream``."""
    monkeypatch.setattr(trio_ws._client.trio, "open_tcp_stream", open_stream)


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch) -> MemoryListener:
    """A memory listener; ``trio_ws.connect`` connects to it, whatever the URI."""
    return memory_network(monkeypatch)


def memory_network(monkeypatch: pytest.MonkeyPatch) -> MemoryListener:
    """Make a memory listener and route ``trio_ws.connect`` to it."""
    listener = MemoryListener()

    async def open_tcp_stream(host: str, port: int) -> trio.abc.Stream:
        listener.addresses.append((host, port))
        return await listener.connect()

    route_connect(monkeypatch, open_tcp_stream)
    return listener


class Network:
    """Hands ``connect`` memory streams whose other end the test plays.

    Attributes:
        peers: The server ends, in order.
        addresses: The ``(host, port)`` of each connection opened, in order
            (not one cancelled during ``delay``).
        delay: Seconds that opening TCP takes; ``math.inf``: forever.
    """

    def __init__(self) -> None:
        self.peers: list[trio.abc.Stream] = []
        self.addresses: list[tuple[str, int]] = []
        self.delay = 0.0
        self._send, self._receive = trio.open_memory_channel[trio.abc.Stream](math.inf)

    async def open_tcp_stream(self, host: str, port: int) -> trio.abc.Stream:
        await trio.sleep(self.delay)
        self.addresses.append((host, port))
        client, server = trio.testing.memory_stream_pair()
        self.peers.append(server)
        self._send.send_nowait(server)
        return client

    async def accept(self) -> trio.abc.Stream:
        """The server end of the next connection."""
        return await self._receive.receive()


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> Network:
    """A :class:`Network`; ``trio_ws.connect`` opens its TCP streams there."""
    network = Network()
    route_connect(monkeypatch, network.open_tcp_stream)
    return network


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """connect() takes its proxy from the environment by default: tests run
    without the developer's proxy variables (tests/test_proxy.py sets them)."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
