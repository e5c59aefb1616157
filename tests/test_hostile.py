"""Hostile clients against a running ``serve()``, end to end, in memory.

Each test starts ``serve`` on a :class:`~tests.conftest.MemoryListener`
under ``autojump_clock``, lets a raw client misbehave (malformed, oversized or
trickled HTTP; garbage behind the request; idle connections; ping floods;
compressed bombs), asserts the exact answer (an HTTP status and body, a close
code, or a dropped connection at an exact virtual time), and then checks that
the same server still serves a normal client.
"""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from trio_ws import (
    ConnectionClosedError,
    PayloadTooBig,
    Server,
    ServerConnection,
    connect,
)
from trio_ws._extensions import DeflateParams

from .conformance.peer import RawPeer
from .conformance.test_deflate import bomb
from .conftest import MemoryListener, route_connect
from .helpers import MASK, OP_BINARY, OP_PING, OP_PONG, OP_TEXT, frame, parse_frames
from .test_server import echo, receive_all, receive_head, start, upgrade_request

#: The largest request head the server accepts (``ServerHandshake``'s default).
MAX_HEAD = 16 * 1024


async def assert_serves() -> None:
    """A normal client gets through to the echo server."""
    async with connect("ws://a/") as ws:
        await ws.send("still serving")
        assert await ws.recv() == "still serving"


def rejection(status: str, message: str) -> tuple[bytes, bytes]:
    """The status line and body of the server's answer to a bad request."""
    body = f"Failed to open a WebSocket connection: {message}.\n"
    return f"HTTP/1.1 {status}\r\n".encode(), body.encode()


async def assert_answer(stream: trio.abc.Stream, status: str, message: str) -> None:
    """The server answers ``status`` with the body for ``message``, then closes."""
    response = await receive_all(stream)
    status_line, body = rejection(status, message)
    assert response.startswith(status_line)
    assert response.endswith(b"\r\n\r\n" + body)


async def answer_to(
    nursery: trio.Nursery, listener: MemoryListener, request_bytes: bytes, message: str
) -> None:
    """Send ``request_bytes`` to a fresh echo server: it answers 400 ``message``."""
    await start(nursery, echo, listener)
    stream = await listener.connect()
    await stream.send_all(request_bytes)
    await assert_answer(stream, "400 Bad Request", message)


async def send_until_closed(stream: trio.abc.Stream, chunks: list[bytes]) -> int:
    """Send ``chunks`` one by one, letting the server react to each.

    Returns:
        How many chunks were sent before the server closed the connection.
    """
    for sent, chunk in enumerate(chunks):
        try:
            await stream.send_all(chunk)
        except trio.BrokenResourceError:
            return sent
        await trio.testing.wait_all_tasks_blocked()
    return len(chunks)


def padded_request(size: int) -> bytes:
    """A valid upgrade request whose head is exactly ``size`` bytes."""
    base = len(upgrade_request("/", "X-Pad: "))
    request = upgrade_request("/", "X-Pad: " + "p" * (size - base))
    assert len(request) == size
    return request


# --- Oversized heads ---------------------------------------------------------------


@pytest.mark.parametrize("chunk", [MAX_HEAD + 1, 1000, 1])
async def test_head_of_exactly_the_limit_is_accepted(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object, chunk: int
) -> None:
    await start(nursery, echo, listener)
    request = padded_request(MAX_HEAD)
    stream = await listener.connect()
    chunks = [request[i : i + chunk] for i in range(0, len(request), chunk)]
    assert await send_until_closed(stream, chunks) == len(chunks)
    head, rest = await receive_head(stream)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert rest == b""
    await stream.send_all(frame(OP_TEXT, b"in", mask=MASK))
    assert parse_frames(await stream.receive_some()) == [(OP_TEXT, True, 0, b"in")]
    await assert_serves()


@pytest.mark.parametrize("chunk", [MAX_HEAD + 1, 1000, 1])
async def test_head_one_byte_over_the_limit_gets_431(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object, chunk: int
) -> None:
    await start(nursery, echo, listener)
    request = padded_request(MAX_HEAD + 1)
    stream = await listener.connect()
    chunks = [request[i : i + chunk] for i in range(0, len(request), chunk)]
    await send_until_closed(stream, chunks)
    await assert_answer(
        stream,
        "431 Request Header Fields Too Large",
        f"request head exceeds {MAX_HEAD} bytes",
    )
    await assert_serves()


async def test_endless_headers_refused_once_past_the_limit(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    """Headers that never end: 431 as soon as the unfinished head is over the
    limit, without reading the rest (there is no separate count limit: the
    size bounds the number of headers)."""
    await start(nursery, echo, listener)
    stream = await listener.connect()
    # 100 headers of 10 bytes per chunk: 1000 bytes.
    chunks = [b"GET / HTTP/1.1\r\n"] + [b"X-Hdr: a\r\n" * 100] * 1000
    sent = await send_until_closed(stream, chunks)
    # 16 + 16 * 1000 bytes fit; the 18th chunk crosses the limit.
    assert sent == 18
    await assert_answer(
        stream,
        "431 Request Header Fields Too Large",
        f"request head exceeds {MAX_HEAD} bytes",
    )
    await assert_serves()


async def test_many_small_headers_within_the_limit_are_accepted(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    handled: list[int] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        handled.append(len(ws.request.headers.get_all("X-Hdr")))
        await echo(ws)

    await start(nursery, handler, listener)
    stream = await listener.connect()
    await stream.send_all(upgrade_request("/", *["X-Hdr: a"] * 1500))
    head, _ = await receive_head(stream)
    assert head.startswith(b"HTTP/1.1 101 ")
    await trio.testing.wait_all_tasks_blocked()
    assert handled == [1500]
    await assert_serves()


# --- Bodies, versions and invalid bytes ---------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "message"),
    [
        (
            upgrade_request("/", "Content-Length: 5") + b"hello",
            "unsupported request body",
        ),
        (upgrade_request("/", "Content-Length: 1"), "unsupported request body"),
        (
            upgrade_request("/", "Transfer-Encoding: chunked") + b"0\r\n\r\n",
            "unsupported request body",
        ),
        (
            upgrade_request("/", "Content-Length: -1"),
            "did not receive a valid HTTP request",
        ),
        (
            upgrade_request("/", "Content-Length: 1", "Content-Length: 2"),
            "did not receive a valid HTTP request",
        ),
    ],
    ids=["length-5", "length-1-unsent", "chunked", "negative", "conflicting"],
)
async def test_request_body_gets_400(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    request_bytes: bytes,
    message: str,
) -> None:
    await answer_to(nursery, listener, request_bytes, message)
    assert trio.current_time() == 0
    await assert_serves()


async def test_content_length_zero_upgrades(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    await start(nursery, echo, listener)
    stream = await listener.connect()
    await stream.send_all(upgrade_request("/", "Content-Length: 0"))
    head, rest = await receive_head(stream)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert rest == b""
    await assert_serves()


def with_version(version: bytes) -> bytes:
    return upgrade_request().replace(b" HTTP/1.1\r\n", b" " + version + b"\r\n", 1)


@pytest.mark.parametrize(
    ("request_bytes", "message"),
    [
        (with_version(b"HTTP/2.0"), "unsupported HTTP version: 2.0"),
        (with_version(b"HTTP/0.9"), "unsupported HTTP version: 0.9"),
        (with_version(b"HTTP/3.0"), "unsupported HTTP version: 3.0"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "unsupported HTTP version: 2.0"),
        (with_version(b"HTTP/1.1.1"), "did not receive a valid HTTP request"),
        (with_version(b"HTTP/11"), "did not receive a valid HTTP request"),
        (with_version(b"http/1.1"), "did not receive a valid HTTP request"),
        (with_version(b"HTTPS/1.1"), "did not receive a valid HTTP request"),
        (with_version(b""), "did not receive a valid HTTP request"),
    ],
)
async def test_bad_http_version_gets_400(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    request_bytes: bytes,
    message: str,
) -> None:
    await answer_to(nursery, listener, request_bytes, message)
    await assert_serves()


async def test_later_http_1x_minor_version_upgrades(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    """RFC 9110 2.5: a higher minor version is understood as HTTP/1.1."""
    await start(nursery, echo, listener)
    stream = await listener.connect()
    await stream.send_all(with_version(b"HTTP/1.2"))
    head, _ = await receive_head(stream)
    assert head.startswith(b"HTTP/1.1 101 ")
    await assert_serves()


@pytest.mark.parametrize(
    "request_bytes",
    [
        upgrade_request("/", "X-Nul: a\x00b"),
        upgrade_request("/", "X-Cr: a\rb"),
        upgrade_request().replace(b"Host:", b"Ho\xffst:"),
        upgrade_request().replace(b"Host:", b"Host :"),
        upgrade_request().replace(b"GET /", b"GET /\xff", 1),
        upgrade_request().replace(b"GET /", b"GET /a b", 1),
        upgrade_request().replace(b"GET", b"G\x00T", 1),
        upgrade_request().replace(b"Host: example.com\r\n", b": nameless\r\n"),
        b"\x00" * 100 + b"\r\n\r\n",
        bytes(range(256)) * 40,
    ],
    ids=[
        "nul-in-value",
        "bare-cr-in-value",
        "non-ascii-name",
        "space-before-colon",
        "non-ascii-target",
        "space-in-target",
        "nul-in-method",
        "empty-name",
        "nuls",
        "every-byte",
    ],
)
async def test_invalid_bytes_get_400(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    request_bytes: bytes,
) -> None:
    await answer_to(
        nursery, listener, request_bytes, "did not receive a valid HTTP request"
    )
    await assert_serves()


# --- Garbage behind the request -----------------------------------------------------


async def test_pipelined_request_after_upgrade_fails_with_1002(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    """What follows the head is read as frames: a second HTTP request is a
    frame with RSV bits set and a reserved opcode, so 1002 at once; the
    valid message before it still reaches the handler."""
    received: list[str | bytes] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        if ws.request.path != "/pipelined":
            await echo(ws)
            return
        with pytest.raises(ConnectionClosedError) as caught:
            while True:
                received.append(await ws.recv())
        assert caught.value.sent is not None
        assert caught.value.sent.code == 1002

    await start(nursery, handler, listener)
    stream = await listener.connect()
    await stream.send_all(
        upgrade_request("/pipelined")
        + frame(OP_TEXT, b"first", mask=MASK)
        + b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    head, rest = await receive_head(stream)
    assert head.startswith(b"HTTP/1.1 101 ")
    peer = RawPeer(stream, client=True)
    peer._buffer += rest
    await peer.expect_close(1002, b"Invalid opcode 0x7")
    await peer.expect_eof()
    assert trio.current_time() == 0
    assert received == ["first"]
    await assert_serves()


async def test_pipelined_garbage_after_rejected_request_is_ignored(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    """One response per connection: what follows a refused request is not
    answered; the connection closes after the 4xx."""
    await start(nursery, echo, listener)
    stream = await listener.connect()
    refused = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"  # no Upgrade: 426
    await stream.send_all(refused + upgrade_request() + b"\xff" * 1000)
    response = await receive_all(stream)
    assert response.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
    assert response.count(b"HTTP/1.1") == 1
    await assert_serves()


# --- Slow trickle -------------------------------------------------------------------


async def trickle(stream: trio.abc.Stream, data: bytes, interval: float) -> None:
    """Send ``data`` a byte at a time, ``interval`` seconds apart."""
    for i in range(len(data)):
        if i:
            await trio.sleep(interval)
        try:
            await stream.send_all(data[i : i + 1])
        except trio.BrokenResourceError:
            return


async def test_trickled_request_within_open_timeout_completes(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    request = upgrade_request()
    # The last byte arrives one second before the deadline.
    await start(nursery, echo, listener, open_timeout=len(request), ping_interval=None)
    stream = await listener.connect()
    nursery.start_soon(trickle, stream, request, 1)
    head, rest = await receive_head(stream)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert trio.current_time() == len(request) - 1
    # The opening deadline no longer applies once the connection is open.
    await trio.sleep(3600)
    await stream.send_all(frame(OP_TEXT, b"late", mask=MASK))
    assert parse_frames(rest + await stream.receive_some()) == [
        (OP_TEXT, True, 0, b"late")
    ]
    await assert_serves()


async def test_trickled_request_past_open_timeout_is_dropped_at_the_deadline(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    request = upgrade_request()
    # The last byte would arrive one second after the deadline.
    await start(nursery, echo, listener, open_timeout=len(request) - 2)
    stream = await listener.connect()
    nursery.start_soon(trickle, stream, request, 1)
    assert await receive_all(stream) == b""
    assert trio.current_time() == len(request) - 2
    await assert_serves()


async def test_client_not_reading_the_response_is_dropped_at_open_timeout(
    nursery: trio.Nursery,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The slow-read variant: writing the response counts against
    ``open_timeout`` too (lockstep streams: the server's write waits for a
    reader that never comes)."""
    caplog.set_level(logging.DEBUG, logger="trio_ws.server")
    listener = MemoryListener(trio.testing.lockstep_stream_pair)
    route_connect(monkeypatch, lambda host, port: listener.connect())
    await start(nursery, echo, listener, open_timeout=7)
    stream = await listener.connect()
    await stream.send_all(upgrade_request())
    # Blocks until the server reads again (never) or drops the connection.
    with pytest.raises(trio.BrokenResourceError):
        await stream.send_all(b"x")
    assert trio.current_time() == 7
    assert [r.getMessage() for r in caplog.records] == ["opening handshake timed out"]
    await stream.aclose()
    await assert_serves()


# --- Resource limits ----------------------------------------------------------------


async def test_idle_connections_never_handshaking_are_dropped_at_open_timeout(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    """Hundreds of silent connections hold the server for ``open_timeout``
    only; meanwhile it serves others, and afterwards nothing is left."""
    server: Server = await start(nursery, echo, listener, open_timeout=10)
    idle = [await listener.connect() for _ in range(500)]
    dropped_at: list[float] = []

    async def wait_dropped(stream: trio.abc.Stream) -> None:
        assert await receive_all(stream) == b""
        dropped_at.append(trio.current_time())

    async with trio.open_nursery() as waiting:
        for stream in idle:
            waiting.start_soon(wait_dropped, stream)
        await trio.sleep(5)
        await assert_serves()
        assert dropped_at == []
    assert dropped_at == [10] * 500
    assert server.connections == set()
    await assert_serves()


async def test_ping_flood_is_paced_by_reading_pongs(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch, autojump_clock: object
) -> None:
    """A client that floods pings without reading the pongs: once a write of
    pongs blocks, the server stops reading, so the flood stalls in TCP
    instead of piling up pongs in memory (lockstep streams: a write waits
    for the reader, as on a full socket buffer)."""
    listener = MemoryListener(trio.testing.lockstep_stream_pair)
    route_connect(monkeypatch, lambda host, port: listener.connect())
    await start(nursery, echo, listener, ping_interval=None)
    stream = await listener.connect()
    await stream.send_all(upgrade_request())
    head, rest = await receive_head(stream)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert rest == b""
    pings = 3000  # 33 000 bytes, read by the server in one chunk
    batch = frame(OP_PING, b"flood", mask=MASK) * pings
    batches_sent = 0

    async def flood() -> None:
        nonlocal batches_sent
        for _ in range(1000):
            await stream.send_all(batch)
            batches_sent += 1

    async with trio.open_nursery() as flooding:
        flooding.start_soon(flood)
        await trio.testing.wait_all_tasks_blocked()
        # The server read one batch and is stuck writing its pongs.
        assert batches_sent == 1
        pong = frame(OP_PONG, b"flood")
        data = b""
        while len(data) < pings * len(pong):
            data += await stream.receive_some(pings * len(pong) - len(data))
        assert data == pong * pings
        await trio.testing.wait_all_tasks_blocked()
        assert batches_sent == 2
        flooding.cancel_scope.cancel()
    await stream.aclose()
    assert trio.current_time() == 0
    await assert_serves()


async def test_compressed_bomb_refused_with_1009_through_the_handshake(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    await start(nursery, echo, listener)
    stream = await listener.connect()
    await stream.send_all(
        upgrade_request("/", "Sec-WebSocket-Extensions: permessage-deflate")
    )
    head, rest = await receive_head(stream)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n" in head
    assert rest == b""
    peer = RawPeer(stream, client=True, deflate=DeflateParams())
    await peer.send(peer.frame(OP_BINARY, bomb(2**20), rsv=4))
    assert await peer.receive_data() == b"\x00" * 2**20
    await peer.send(peer.frame(OP_BINARY, bomb(64 * 2**20), rsv=4))
    await peer.expect_failure(1009)
    await assert_serves()


async def test_compressed_message_past_max_size_refused_by_client(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    """The client side of the same limit, between two trio_ws ends."""
    closed: list[ConnectionClosedError] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        if ws.request.path != "/big":
            await echo(ws)
            return
        try:
            await ws.send(b"\x00" * (2**20 + 1))
            await ws.recv()
        except ConnectionClosedError as exc:
            closed.append(exc)

    await start(nursery, handler, listener)
    async with connect("ws://a/big") as ws:
        with pytest.raises(ConnectionClosedError) as caught:
            await ws.recv()
    assert caught.value.sent is not None
    assert caught.value.sent.code == 1009
    assert isinstance(caught.value.__cause__, PayloadTooBig)
    await trio.testing.wait_all_tasks_blocked()
    assert [exc.code for exc in closed] == [1009]
    await assert_serves()
