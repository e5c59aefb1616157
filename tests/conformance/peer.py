"""A scriptable raw peer that drives trio_ws through the conformance cases.

:func:`echo_connection` opens a trio_ws connection (server or client role)
over :func:`trio.testing.memory_stream_pair` with the opening handshake
bypassed (``_open`` with the agreed extensions, as ``connect`` and ``serve``
do after a real handshake) and runs an echo handler on it. The test holds a
:class:`RawPeer`, the other end, which plays the opposite role: it builds
frames by hand (masked when it is the client, compressed with its own
:mod:`zlib` code when permessage-deflate is agreed), writes them whole or
a byte at a time, and parses, unmasks and inflates what trio_ws writes, so
tests assert exact bytes and exact close codes.

Nothing here uses trio_ws's frame code: the peer is an independent
implementation of RFC 6455 framing and RFC 7692 compression.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio
import trio.testing

from trio_ws import ClientConnection, Connection, ConnectionClosed, ServerConnection

if TYPE_CHECKING:
    from trio_ws._extensions import DeflateParams

__all__ = [
    "ROLES",
    "Echo",
    "PeerDeflate",
    "RawPeer",
    "ReadLimiter",
    "echo_connection",
    "mask_payload",
]

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

#: The role trio_ws plays in a test; the peer plays the other one.
ROLES = ["server", "client"]

KEY = b"\x37\xfa\x21\x3d"  # the RFC 6455 5.7 example masking key
TAIL = b"\x00\x00\xff\xff"  # RFC 7692 7.2.1


def mask_payload(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with ``key`` (RFC 6455 5.3), fast enough for 16 MiB."""
    n = len(data)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(
        n, "little"
    )


def build_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    key: bytes | None = None,
) -> bytes:
    """One frame with the shortest length encoding; ``key`` masks it."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mask_bit = 0x80 if key is not None else 0
    if n < 126:
        header = struct.pack("!BB", first, mask_bit | n)
    elif n < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, n)
    if key is None:
        return header + payload
    return header + key + mask_payload(payload, key)


class PeerDeflate:
    """The peer's own permessage-deflate contexts (RFC 7692 7.2).

    A peer that must keep to an 8-bit window compresses with 9 bits, as
    zlib-based endpoints do; trio_ws is documented to accept that. Inflating,
    the peer uses exactly the window trio_ws agreed to, so a back-reference
    beyond it fails the test.
    """

    def __init__(self, params: DeflateParams, *, client: bool) -> None:
        self.params = params
        if client:
            self.local_bits = params.client_max_window_bits
            self.remote_bits = params.server_max_window_bits
            self.local_reset = params.client_no_context_takeover
            self.remote_reset = params.server_no_context_takeover
        else:
            self.local_bits = params.server_max_window_bits
            self.remote_bits = params.client_max_window_bits
            self.local_reset = params.server_no_context_takeover
            self.remote_reset = params.client_no_context_takeover
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None

    def compress(self, data: bytes, *, fin: bool = True) -> bytes:
        if self._compressor is None:
            bits = max(self.local_bits, 9)
            self._compressor = zlib.compressobj(6, zlib.DEFLATED, -bits)
        out = self._compressor.compress(data)
        if fin:
            out += self._compressor.flush(zlib.Z_SYNC_FLUSH)
            assert out.endswith(TAIL)
            out = out[:-4]
            if self.local_reset:
                self._compressor = None
        return out

    def decompress(self, data: bytes) -> bytes:
        if self._decompressor is None:
            self._decompressor = zlib.decompressobj(-self.remote_bits)
        out = self._decompressor.decompress(data + TAIL)
        if self.remote_reset:
            self._decompressor = None
        return out


@dataclass
class Message:
    """A message trio_ws wrote, reassembled by the peer."""

    opcode: int
    payload: bytes
    #: The raw frames: ``(opcode, fin, rsv, payload as sent)``.
    frames: list[tuple[int, bool, int, bytes]] = field(default_factory=list)


class RawPeer:
    """The other end of a trio_ws connection.

    Args:
        stream: The peer's end of the transport.
        client: Whether the peer plays the client (masks its frames).
        deflate: The agreed permessage-deflate parameters, if any.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        client: bool,
        deflate: DeflateParams | None = None,
    ) -> None:
        self.stream = stream
        self.client = client
        self.deflate = None if deflate is None else PeerDeflate(deflate, client=client)
        self._buffer = bytearray()
        #: Control frames trio_ws wrote while :meth:`receive_message` waited.
        self.controls: list[tuple[int, bytes]] = []

    # --- Building and sending ----------------------------------------------

    def frame(
        self,
        opcode: int,
        payload: bytes = b"",
        *,
        fin: bool = True,
        rsv: int = 0,
        mask: bool | None = None,
    ) -> bytes:
        """A frame as this peer sends it (masked if it is the client)."""
        if mask is None:
            mask = self.client
        return build_frame(opcode, payload, fin=fin, rsv=rsv, key=KEY if mask else None)

    def message(self, data: str | bytes, *, fragment: int | None = None) -> bytes:
        """The frames of one message, compressed if deflate was agreed.

        ``fragment`` splits the (compressed) payload into frames of that size.
        """
        opcode = OP_TEXT if isinstance(data, str) else OP_BINARY
        payload = data.encode() if isinstance(data, str) else data
        rsv = 0
        if self.deflate is not None:
            payload = self.deflate.compress(payload)
            rsv = 4
        if fragment is None or len(payload) <= fragment:
            return self.frame(opcode, payload, rsv=rsv)
        chunks = [payload[i : i + fragment] for i in range(0, len(payload), fragment)]
        frames = [self.frame(opcode, chunks[0], fin=False, rsv=rsv)]
        frames += [self.frame(OP_CONT, c, fin=False) for c in chunks[1:-1]]
        frames.append(self.frame(OP_CONT, chunks[-1]))
        return b"".join(frames)

    def close_frame(self, code: int | None = 1000, reason: bytes = b"") -> bytes:
        payload = b"" if code is None else struct.pack("!H", code) + reason
        return self.frame(OP_CLOSE, payload)

    async def send(self, data: bytes) -> None:
        """Write raw bytes."""
        await self.stream.send_all(data)

    # --- Receiving and parsing -------------------------------------------------

    async def _fill(self, size: int) -> bool:
        while len(self._buffer) < size:
            data = await self.stream.receive_some()
            if not data:
                return False
            self._buffer += data
        return True

    async def receive_frame(self) -> tuple[int, bool, int, bytes]:
        """The next frame trio_ws wrote: ``(opcode, fin, rsv, payload)``.

        Raises:
            AssertionError: EOF came first, or the mask bit is wrong
                (RFC 6455 5.1: clients mask, servers do not).
        """
        assert await self._fill(2), f"EOF; buffered {bytes(self._buffer)!r}"
        first, second = self._buffer[0], self._buffer[1]
        masked = bool(second & 0x80)
        assert masked is not self.client, "mask bit breaks RFC 6455 5.1"
        n, pos = second & 0x7F, 2
        if n == 126:
            assert await self._fill(4)
            (n,) = struct.unpack("!H", self._buffer[2:4])
            assert n >= 126, "non-minimal length"
            pos = 4
        elif n == 127:
            assert await self._fill(10)
            (n,) = struct.unpack("!Q", self._buffer[2:10])
            assert n >= 65536, "non-minimal length"
            pos = 10
        key = None
        if masked:
            assert await self._fill(pos + 4)
            key = bytes(self._buffer[pos : pos + 4])
            pos += 4
        assert await self._fill(pos + n), "EOF inside a frame"
        payload = bytes(self._buffer[pos : pos + n])
        del self._buffer[: pos + n]
        if key is not None:
            payload = mask_payload(payload, key)
        return first & 0x0F, bool(first & 0x80), (first >> 4) & 7, payload

    async def receive_message(self) -> Message:
        """The next data message, reassembled and inflated.

        Control frames met on the way go to :attr:`controls`.
        """
        message: Message | None = None
        while True:
            opcode, fin, rsv, payload = await self.receive_frame()
            if opcode >= 0x8:
                assert fin, "fragmented control frame"
                self.controls.append((opcode, payload))
                continue
            if message is None:
                assert opcode in (OP_TEXT, OP_BINARY), f"opcode {opcode}"
                message = Message(opcode, b"")
            else:
                assert opcode == OP_CONT, f"opcode {opcode} inside a message"
                assert rsv == 0
            message.frames.append((opcode, fin, rsv, payload))
            message.payload += payload
            if fin:
                break
        first_rsv = message.frames[0][2]
        if self.deflate is None:
            assert first_rsv == 0
        else:
            assert first_rsv == 4, "trio_ws did not compress"
            message.payload = self.deflate.decompress(message.payload)
        return message

    async def receive_data(self) -> str | bytes:
        """The next data message as trio_ws's user would send it."""
        message = await self.receive_message()
        if message.opcode == OP_TEXT:
            return message.payload.decode()
        return message.payload

    async def expect_close(self, code: int | None, reason: bytes | None = None) -> None:
        """Assert that the next frame is a close frame with ``code``.

        ``code=None`` expects an empty close frame; ``reason`` (if given) the
        exact reason bytes.
        """
        opcode, fin, rsv, payload = await self.receive_frame()
        assert (opcode, fin, rsv) == (OP_CLOSE, True, 0), (opcode, payload)
        if code is None:
            assert payload == b""
            return
        assert len(payload) >= 2
        assert struct.unpack("!H", payload[:2])[0] == code, payload
        if reason is not None:
            assert payload[2:] == reason

    async def expect_eof(self) -> None:
        """Assert that trio_ws closed the transport and wrote nothing more."""
        data = bytes(self._buffer)
        while chunk := await self.stream.receive_some():
            data += chunk
        assert not data, f"data instead of EOF: {data[:200]!r}"

    async def expect_failure(self, code: int) -> None:
        """trio_ws failed the connection: a close frame, then TCP closes."""
        await self.expect_close(code)
        await self.expect_eof()

    async def close(self, code: int = 1000) -> None:
        """Run the closing handshake from the peer's side, then drop TCP."""
        await self.send(self.close_frame(code))
        await self.expect_close(code)
        if self.client:
            await self.expect_eof()  # RFC 6455 7.1.1: the server closes first
        await self.stream.aclose()


class ReadLimiter(trio.abc.Stream):
    """trio_ws's end of the transport, reading at most ``chunk`` bytes at once.

    With ``chunk = 1`` every byte the peer writes reaches trio_ws alone: a
    message trickles in a byte at a time.
    """

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.chunk: int | None = None
        #: Bytes trio_ws has read so far.
        self.received = 0

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self.chunk is not None:
            max_bytes = self.chunk if max_bytes is None else min(max_bytes, self.chunk)
        data = await self.stream.receive_some(max_bytes)
        self.received += len(data)
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:  # pragma: no cover
        await self.stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:  # pragma: no cover - not used by trio_ws
        assert isinstance(self.stream, trio.abc.HalfCloseableStream)
        await self.stream.send_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()


@dataclass
class Echo:
    """What the echo handler saw."""

    ws: Connection
    #: The exception that ended the handler (always a ConnectionClosed).
    closed: ConnectionClosed | None = None
    received: list[str | bytes] = field(default_factory=list)
    done: trio.Event = field(default_factory=trio.Event)


async def _echo(echo: Echo) -> None:
    ws = echo.ws
    try:
        while True:
            message = await ws.recv()
            echo.received.append(message)
            await ws.send(message)
    except ConnectionClosed as exc:
        echo.closed = exc
    finally:
        echo.done.set()


@asynccontextmanager
async def echo_connection(
    role: str,
    *,
    deflate: DeflateParams | None = None,
    max_size: int | None = 2**20,
    max_queue: int | None = 16,
    stream_pair: Callable[
        [], tuple[trio.abc.Stream, trio.abc.Stream]
    ] = trio.testing.memory_stream_pair,
    handler: Callable[[Echo], Awaitable[None]] = _echo,
) -> AsyncIterator[tuple[RawPeer, Echo, ReadLimiter]]:
    """A trio_ws connection in ``role`` running ``handler`` (echo by default).

    Yields the peer, the handler's record and trio_ws's end of the
    transport (set ``.chunk = 1`` to trickle). Leaving the block waits for
    the handler to finish, at most 10 seconds of (virtual) time, then stops
    the connection.
    """
    ws_end, peer_end = stream_pair()
    limiter = ReadLimiter(ws_end)
    cls: type[Connection] = ServerConnection if role == "server" else ClientConnection
    ws = cls(
        limiter,
        max_size=max_size,
        max_queue=max_queue,
        ping_interval=None,
        close_timeout=5,
    )
    peer = RawPeer(peer_end, client=role == "server", deflate=deflate)
    echo = Echo(ws)
    async with trio.open_nursery() as nursery:
        ws._open([deflate] if deflate is not None else [], b"")
        ws._start(nursery)
        nursery.start_soon(handler, echo)
        try:
            yield peer, echo, limiter
            with trio.fail_after(10):
                await echo.done.wait()
                await ws.wait_closed()
        finally:
            ws._stop()
            nursery.cancel_scope.cancel()
