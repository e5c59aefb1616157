"""connect() and ClientConnection.

Most tests run against ``serve`` over the in-memory ``listener`` of
``conftest``, or against a server played by the test (``network``), with
``trio_ws.connect``'s ``trio.open_tcp_stream`` routed to memory streams so
that they run under ``autojump_clock`` with exact virtual times.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
import ssl
import sys

import pytest
import trio
import trio.testing

from trio_ws import (
    ClientConnection,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidURI,
    Request,
    Response,
    ServerConnection,
    State,
    connect,
)

from .conftest import MemoryListener, Network, route_connect
from .helpers import OP_CLOSE, close_payload, frame, parse_frames
from .test_server import (
    assert_echoes,
    create_connection_cases,
    echo,
    receive_all,
    refused_response,
    start,
    start_catching_recv,
    tls_contexts,
    with_extra_option,
)

if sys.version_info < (3, 11):  # pragma: no cover - trio installs the backport
    from exceptiongroup import ExceptionGroup

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def read_request(stream: trio.abc.Stream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive_some()
    return data


def switching_protocols(request: bytes) -> bytes:
    """A minimal valid 101 answer to ``request``."""
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


async def accept_upgrade(network: Network, after: bytes = b"") -> trio.abc.Stream:
    """Play a server: accept the next connection, answer its request with a
    101 and then ``after``; return the stream."""
    peer = await network.accept()
    await peer.send_all(switching_protocols(await read_request(peer)) + after)
    return peer


# --- Opening ---------------------------------------------------------------------


async def test_connect_opens_a_client_connection(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    await start(nursery, echo, listener)
    async with connect("ws://example.com/chat?x=1") as ws:
        assert isinstance(ws, ClientConnection)
        assert ws.state is State.OPEN
        assert ws.request is not None
        assert ws.request.path == "/chat?x=1"
        assert ws.request.headers["Host"] == "example.com"
        assert ws.response is not None
        assert ws.response.status_code == 101
        assert ws.logger.name == "trio_ws.client"
        await ws.send("hello")
        assert await ws.recv() == "hello"
        assert await ws.ping() == 0  # virtual time: the pong comes at once
    assert listener.addresses == [("example.com", 80)]


async def test_first_frame_right_behind_the_101(
    network: Network, autojump_clock: object
) -> None:
    async with trio.open_nursery() as nursery:

        async def server() -> None:
            peer = await accept_upgrade(network, b"\x81\x05early")
            await receive_all(peer)

        nursery.start_soon(server)
        async with connect("ws://a/") as ws:
            assert await ws.recv() == "early"


async def test_open_timeout_none(
    nursery: trio.Nursery, network: Network, autojump_clock: object
) -> None:
    network.delay = 1000

    async def server() -> None:
        peer = await accept_upgrade(network)
        await receive_all(peer)

    nursery.start_soon(server)
    async with connect("ws://a/", open_timeout=None) as ws:
        assert trio.current_time() == 1000
        assert ws.state is State.OPEN


# --- Leaving the block -----------------------------------------------------------


async def test_leaving_block_closes_1000(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    raised = await start_catching_recv(nursery, listener, ConnectionClosedOK)
    async with connect("ws://a/") as ws:
        pass
    assert ws.state is State.CLOSED
    assert ws.close_code == 1000
    assert trio.current_time() == 0
    await trio.testing.wait_all_tasks_blocked()
    assert [str(exc) for exc in raised] == ["received 1000 (OK); then sent 1000 (OK)"]


async def test_raising_in_block_closes_1011_and_comes_out_as_itself(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    raised = await start_catching_recv(nursery, listener, ConnectionClosedError)
    with pytest.raises(ValueError, match="user error") as info:
        async with connect("ws://a/"):
            try:
                raise KeyError("context")
            except KeyError:
                raise ValueError("user error")  # noqa: B904 - the context is checked
    assert type(info.value) is ValueError  # not an ExceptionGroup
    assert isinstance(info.value.__context__, KeyError)
    await trio.testing.wait_all_tasks_blocked()
    assert [exc.code for exc in raised] == [1011]  # type: ignore[attr-defined]


async def test_exception_group_from_block_comes_out_as_itself(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    await start(nursery, echo, listener)
    group = ExceptionGroup("user's own", [ValueError(), KeyError()])
    with pytest.raises(ExceptionGroup) as info:
        async with connect("ws://a/"):
            raise group
    # trio's cancel scopes rebuild groups passing through them (split), but
    # it is the same group: same message, same exceptions, not wrapped.
    assert info.value.message == "user's own"
    assert info.value.exceptions == group.exceptions


async def test_raising_after_server_vanished(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    await start(nursery, echo, listener)
    with pytest.raises(ValueError, match="after failure") as info:
        async with connect("ws://a/") as ws:
            await trio.aclose_forcefully(listener.accepted[0])  # server's TCP gone
            try:
                await ws.recv()
            except ConnectionClosedError as exc:
                closed = exc
                raise ValueError("after failure")  # noqa: B904 - the context is checked
    assert info.value.__context__ is closed
    assert str(closed) == "no close frame received or sent"
    assert closed.code == 1006
    assert isinstance(closed.__cause__, EOFError)
    assert ws.close_code == 1006


async def test_connection_closed_error_leaves_block_as_itself(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    await start(nursery, echo, listener)
    with pytest.raises(ConnectionClosedError) as info:
        async with connect("ws://a/") as ws:
            await trio.aclose_forcefully(listener.accepted[0])
            await ws.recv()
    assert str(info.value) == "no close frame received or sent"
    assert info.value.__cause__ is not None


async def test_cancelling_block_sends_1001(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    codes: list[int] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()
        assert ws.close_code is not None
        codes.append(ws.close_code)

    await start(nursery, handler, listener)
    with trio.move_on_after(5) as scope:
        async with connect("ws://a/") as ws:
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert trio.current_time() == 5
    assert ws.state is State.CLOSED
    await trio.testing.wait_all_tasks_blocked()
    assert codes == [1001]


async def test_cancelling_block_waits_at_most_close_timeout(
    nursery: trio.Nursery, network: Network, autojump_clock: object
) -> None:
    received: list[bytes] = []

    async def server() -> None:
        # Reads the close frame, never answers it.
        peer = await accept_upgrade(network)
        received.append(await receive_all(peer))

    nursery.start_soon(server)
    with trio.move_on_after(5):
        async with connect("ws://a/", close_timeout=2):
            await trio.sleep_forever()
    assert trio.current_time() == 7
    await trio.testing.wait_all_tasks_blocked()
    assert parse_frames(received[0]) == [(OP_CLOSE, True, 0, close_payload(1001))]


# --- Failures while opening ------------------------------------------------------


async def test_open_timeout_during_tcp(
    network: Network, autojump_clock: object
) -> None:
    network.delay = 100
    with pytest.raises(TimeoutError) as info:
        async with connect("ws://a/"):
            pass
    assert str(info.value) == "timed out while opening the connection"
    assert isinstance(info.value.__cause__, trio.TooSlowError)
    assert trio.current_time() == 10


async def test_open_timeout_during_handshake(
    nursery: trio.Nursery, network: Network, autojump_clock: object
) -> None:
    # TCP takes 2 s of the 3: the handshake gets what is left.
    network.delay = 2
    seen: list[tuple[bytes, float]] = []

    async def server() -> None:
        peer = await network.accept()
        request = await read_request(peer)
        rest = await receive_all(peer)  # never answered, then closed
        seen.append((request + rest, trio.current_time()))

    nursery.start_soon(server)
    with pytest.raises(TimeoutError) as info:
        async with connect("ws://a/", open_timeout=3):
            pass
    assert str(info.value) == "timed out during the opening handshake"
    assert isinstance(info.value.__cause__, trio.TooSlowError)
    assert trio.current_time() == 3
    await trio.testing.wait_all_tasks_blocked()
    ((data, closed_at),) = seen
    assert data.startswith(b"GET / HTTP/1.1\r\n")
    assert closed_at == 3


async def test_connection_closed_during_handshake(
    nursery: trio.Nursery, network: Network, autojump_clock: object
) -> None:
    async def server() -> None:
        peer = await network.accept()
        await read_request(peer)
        await peer.send_all(b"HTTP/1.1 101 Switching")
        await peer.aclose()

    nursery.start_soon(server)
    with pytest.raises(InvalidHandshake, match="connection closed during handshake"):
        async with connect("ws://a/"):
            pass


async def test_connection_lost_during_handshake(
    network: Network, autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def open_tcp_stream(host: str, port: int) -> trio.abc.Stream:
        client, server = trio.testing.memory_stream_pair()
        await server.aclose()  # gone before the request is sent
        return client

    route_connect(monkeypatch, open_tcp_stream)
    with pytest.raises(InvalidHandshake) as info:
        async with connect("ws://a/"):
            pass
    assert str(info.value) == "connection lost during the opening handshake"
    assert isinstance(info.value.__cause__, trio.BrokenResourceError)


async def test_invalid_status(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    def process_request(ws: ServerConnection, request: Request) -> Response:
        return ws.respond(401, "Who are you?\n")

    await start(nursery, echo, listener, process_request=process_request)
    response = await refused_response()
    assert response.status_code == 401
    assert response.reason_phrase == "Unauthorized"
    assert response.body == b"Who are you?\n"


async def test_invalid_uri(network: Network) -> None:
    with pytest.raises(InvalidURI):
        async with connect("http://example.com/"):
            pass
    assert network.addresses == []


async def test_ssl_with_ws_uri(network: Network) -> None:
    with pytest.raises(ValueError, match="ssl is only for wss:// URIs"):
        async with connect("ws://a/", ssl=ssl.create_default_context()):
            pass
    assert network.addresses == []


async def test_refused_in_memory(listener: MemoryListener) -> None:
    await listener.aclose()
    with pytest.raises(ConnectionRefusedError):
        async with connect("ws://a/"):
            pass


async def test_refused_port_real_socket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens there any more.
    with trio.fail_after(10), pytest.raises(OSError):  # noqa: PT011 - as trio raises it
        async with connect(f"ws://127.0.0.1:{port}/"):
            pass


def silent_server(nursery: trio.Nursery, network: Network) -> list[float]:
    """Accept one connection and answer nothing; return the list that gets
    the time at which the client closed it."""
    closed_at: list[float] = []

    async def server() -> None:
        peer = await network.accept()
        await receive_all(peer)
        closed_at.append(trio.current_time())

    nursery.start_soon(server)
    return closed_at


async def test_cancelled_before_connect(network: Network) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        async with connect("ws://a/"):
            raise AssertionError("not reached")
    assert scope.cancelled_caught
    assert network.peers == []


async def test_cancelled_during_tcp(network: Network, autojump_clock: object) -> None:
    network.delay = 100
    with trio.move_on_after(2) as scope:
        async with connect("ws://a/"):
            raise AssertionError("not reached")
    assert scope.cancelled_caught
    assert trio.current_time() == 2
    assert network.peers == []


async def test_cancelled_during_handshake(
    nursery: trio.Nursery, network: Network, autojump_clock: object
) -> None:
    closed_at = silent_server(nursery, network)
    with trio.move_on_after(2) as scope:
        async with connect("ws://a/"):
            raise AssertionError("not reached")
    assert scope.cancelled_caught
    await trio.testing.wait_all_tasks_blocked()
    assert closed_at == [2]  # the TCP connection was closed


# --- Options ---------------------------------------------------------------------


MyClientConnection = with_extra_option(ClientConnection)


@create_connection_cases(MyClientConnection)
async def test_create_connection(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    factory: object,
    extra: int,
) -> None:
    await start(nursery, echo, listener)
    async with connect(
        "ws://a/",
        create_connection=factory,  # type: ignore[arg-type]
        max_size=99,
        close_timeout=4,
    ) as ws:
        assert type(ws) is MyClientConnection
        assert ws.extra == extra
        assert ws.max_size == 99
        assert ws.close_timeout == 4
        await ws.send("x")
        assert await ws.recv() == "x"


async def test_logger_option(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await start(nursery, echo, listener)
    logger = logging.getLogger("my.app")
    async with connect("ws://user:secret@a:8080/x", logger=logger) as ws:
        assert ws.logger is logger
        assert ws.request is not None
        assert ws.request.headers["Authorization"] == "Basic dXNlcjpzZWNyZXQ="
    opened = [r for r in caplog.records if r.getMessage().startswith("connection ")]
    assert [r.name for r in opened][:1] == ["my.app"]
    # The credentials stay out of the logs.
    assert opened[0].getMessage() == f"connection {ws.id} open to ws://a:8080/x"
    assert listener.addresses == [("a", 8080)]


async def test_ipv6_literal(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    await start(nursery, echo, listener)
    async with connect("ws://[::1]:8080/") as ws:
        assert ws.request is not None
        assert ws.request.headers["Host"] == "[::1]:8080"
    assert listener.addresses == [("::1", 8080)]


# --- TLS -------------------------------------------------------------------------


def fake_default_context(
    monkeypatch: pytest.MonkeyPatch, context: ssl.SSLContext
) -> list[ssl.SSLContext]:
    """Make ``ssl.create_default_context`` return ``context``; return the
    list of the contexts it made, one per call."""
    made: list[ssl.SSLContext] = []

    def create_default_context() -> ssl.SSLContext:
        made.append(context)
        return context

    monkeypatch.setattr(ssl, "create_default_context", create_default_context)
    return made


async def test_wss_default_context(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_context, client_context = tls_contexts()
    made = fake_default_context(monkeypatch, client_context)
    await start(nursery, echo, listener, ssl=server_context)
    async with connect("wss://localhost/") as ws:
        assert isinstance(ws._stream, trio.SSLStream)
        await ws.send("over TLS")
        assert await ws.recv() == "over TLS"
    assert made == [client_context]
    assert listener.addresses == [("localhost", 443)]


async def test_wss_default_context_is_shared(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One default context for the wss:// connections without ssl=, made
    # again when a variable that create_default_context reads changed.
    server_context, client_context = tls_contexts()
    made = fake_default_context(monkeypatch, client_context)
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    await start(nursery, echo, listener, ssl=server_context)
    for _ in range(2):
        async with connect("wss://localhost/") as ws:
            await ws.send("over TLS")
            assert await ws.recv() == "over TLS"
    assert made == [client_context]
    monkeypatch.setenv("SSLKEYLOGFILE", "")
    async with connect("wss://localhost/") as ws:
        await ws.send("over TLS")
        assert await ws.recv() == "over TLS"
    assert made == [client_context, client_context]


async def test_wss_untrusted_certificate(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    server_context, _ = tls_contexts()
    await start(nursery, echo, listener, ssl=server_context)
    with pytest.raises(ssl.SSLCertVerificationError):  # an OSError
        async with connect("wss://localhost/", ssl=ssl.create_default_context()):
            pass


async def test_wss_open_timeout_during_tls(
    nursery: trio.Nursery, network: Network, autojump_clock: object
) -> None:
    closed_at = silent_server(nursery, network)  # a ClientHello, never answered
    with pytest.raises(TimeoutError, match="while opening the connection"):
        async with connect("wss://localhost/", ssl=tls_contexts()[1], open_timeout=4):
            pass
    assert trio.current_time() == 4
    await trio.testing.wait_all_tasks_blocked()
    assert closed_at == [4]


async def test_cancelled_during_tls(
    nursery: trio.Nursery, network: Network, autojump_clock: object
) -> None:
    closed_at = silent_server(nursery, network)  # a ClientHello, never answered
    with trio.move_on_after(2) as scope:
        async with connect("wss://localhost/", ssl=tls_contexts()[1]):
            raise AssertionError("not reached")
    assert scope.cancelled_caught
    assert trio.current_time() == 2
    await trio.testing.wait_all_tasks_blocked()
    assert closed_at == [2]


async def test_wss_explicit_port_large_message(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    # Frames after the handshake go through TLS both ways.
    server_context, client_context = tls_contexts()
    await start(nursery, echo, listener, ssl=server_context)
    await assert_echoes("wss://localhost:8443/", b"\x01" * 70000, ssl=client_context)
    assert listener.addresses == [("localhost", 8443)]


async def test_close_frame_bytes_from_client(
    nursery: trio.Nursery, network: Network, autojump_clock: object
) -> None:
    received: list[bytes] = []

    async def server() -> None:
        peer = await accept_upgrade(network)
        data = b""
        while len(data) < 2 + 4 + 2 + 3:  # close frame header, mask, code, "bye"
            data += await peer.receive_some()
        received.append(data)
        await peer.send_all(frame(OP_CLOSE, close_payload(1000)))
        await peer.aclose()

    nursery.start_soon(server)
    async with connect("ws://a/", compression=None) as ws:
        await ws.aclose(1000, "bye")
    assert parse_frames(received[0]) == [
        (OP_CLOSE, True, 0, close_payload(1000, "bye"))
    ]
    assert ws.close_code == 1000
