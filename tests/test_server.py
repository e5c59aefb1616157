"""serve(), Server and ServerConnection, mostly over in-memory listeners.

:class:`MemoryListener` hands out one end of a memory stream pair per
connection, so that these tests run under ``autojump_clock`` and assert exact
virtual times. The ``listener`` fixture also routes ``trio_ws.connect`` to it.
A few smoke tests use real loopback sockets.
"""

from __future__ import annotations

import email.utils
import errno
import functools
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import TypeAlias, TypeVar

import pytest
import trio
import trio.testing
import trustme

from trio_ws import (
    Connection,
    ConnectionClosedError,
    ConnectionClosedOK,
    Headers,
    InvalidStatus,
    Request,
    Response,
    Server,
    ServerConnection,
    State,
    connect,
    serve,
)
from trio_ws._handshake import DEFAULT_SERVER

from .conftest import MemoryListener, route_connect
from .helpers import OP_CLOSE, OP_TEXT, close_payload, frame, parse_frames

Handler: TypeAlias = Callable[[ServerConnection], Awaitable[None]]

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # the RFC 6455 1.3 example
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
DATE = "Thu, 01 Jan 2026 00:00:00 GMT"
MASK = b"\x00\x00\x00\x00"
CLOSE_1001 = b"\x88\x02\x03\xe9"  # unmasked close frame, code 1001


@pytest.fixture
def fixed_date(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the ``Date`` header of plain responses predictable."""
    monkeypatch.setattr(email.utils, "formatdate", lambda **kwargs: DATE)


async def start(
    nursery: trio.Nursery, handler: Handler, listener: MemoryListener, **options: object
) -> Server:
    """Start ``serve`` on ``listener``; return the server."""
    server: Server = await nursery.start(
        functools.partial(serve, handler, listeners=[listener], **options)  # type: ignore[arg-type]
    )
    return server


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def upgrade_request(path: str = "/", *headers: str) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def receive_all(stream: trio.abc.Stream) -> bytes:
    """Read until EOF."""
    data = b""
    while chunk := await stream.receive_some():
        data += chunk
    return data


async def receive_head(stream: trio.abc.Stream) -> tuple[bytes, bytes]:
    """Read an HTTP head; return it and what followed it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some()
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


async def send_raw(listener: MemoryListener, data: bytes) -> trio.abc.Stream:
    """Open a connection by hand and send ``data``; return the stream."""
    stream = await listener.connect()
    await stream.send_all(data)
    return stream


async def raw_upgrade(listener: MemoryListener, path: str = "/") -> trio.abc.Stream:
    """Open a connection by hand; the stream is ready for frames."""
    stream = await send_raw(listener, upgrade_request(path))
    head, rest = await receive_head(stream)
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert rest == b""
    return stream


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


async def assert_echoes(
    uri: str, message: str | bytes = "x", **options: object
) -> None:
    """Connect to ``uri`` and check that ``message`` comes back as sent."""
    async with connect(uri, **options) as ws:  # type: ignore[arg-type]
        await ws.send(message)
        assert await ws.recv() == message


async def start_catching_recv(
    nursery: trio.Nursery, listener: MemoryListener, catch: type[BaseException]
) -> list[BaseException]:
    """Serve a handler that waits in ``recv()``; return the list in which it
    records the ``catch`` exception that ends the wait."""
    raised: list[BaseException] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except catch as exc:
            raised.append(exc)

    await start(nursery, handler, listener)
    return raised


async def refused_response(uri: str = "ws://a/", **options: object) -> Response:
    """Connect to ``uri``; check that the opening handshake fails with
    :class:`InvalidStatus`; return the server's answer."""
    with pytest.raises(InvalidStatus) as info:
        async with connect(uri, **options):  # type: ignore[arg-type]
            pass
    return info.value.response


def sleeping_handler(cancelled_at: list[float]) -> Handler:
    """A handler that sleeps through the closure until it is cancelled, and
    appends the time of that to ``cancelled_at``."""

    async def handler(ws: ServerConnection) -> None:
        try:
            await trio.sleep_forever()
        finally:
            cancelled_at.append(trio.current_time())

    return handler


def logged_error(
    records: list[logging.LogRecord], message: str, error: type[BaseException]
) -> logging.LogRecord:
    """Check that ``records`` is one record of ``message`` with an ``error``
    traceback; return it."""
    (record,) = records
    assert record.getMessage() == message
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], error)
    return record


ConnectionT = TypeVar("ConnectionT", bound=Connection)


def with_extra_option(base: type[ConnectionT]) -> type[ConnectionT]:
    """A subclass of ``base`` taking one more keyword, ``extra``, for the
    ``create_connection`` tests."""

    class WithExtra(base):  # type: ignore[valid-type,misc]
        def __init__(
            self, stream: trio.abc.Stream, *, extra: int = 0, **options: object
        ) -> None:
            super().__init__(stream, **options)
            self.extra = extra

    return WithExtra


def create_connection_cases(cls: type[Connection]) -> pytest.MarkDecorator:
    """Parametrize ``factory`` and ``extra``: the class itself, and a partial
    that passes ``extra=42``."""
    return pytest.mark.parametrize(
        ("factory", "extra"), [(cls, 0), (functools.partial(cls, extra=42), 42)]
    )


# --- Starting and stopping -----------------------------------------------------


async def test_serve_reports_server_once_listening(
    nursery: trio.Nursery, listener: MemoryListener
) -> None:
    server = await start(nursery, echo, listener)
    assert isinstance(server, Server)
    assert server.listeners == [listener]
    assert server.port is None  # not a socket
    assert server.connections == set()
    assert repr(server) == "<Server port=None connections=0>"
    # Started means accepting: connecting now is race-free.
    await assert_echoes("ws://example.com/", "hi")
    assert listener.addresses == [("example.com", 80)]


async def test_serve_real_socket_port_zero() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                functools.partial(serve, echo, 0, host="127.0.0.1")
            )
            port = server.port
            assert isinstance(port, int)
            assert port > 0
            async with connect(f"ws://127.0.0.1:{port}/path?q=1") as ws:
                await ws.send(b"\x00\xff")
                assert await ws.recv() == b"\x00\xff"
                assert ws.remote_address == ("127.0.0.1", port)
                (server_ws,) = server.connections
                assert server_ws.request is not None
                assert server_ws.request.path == "/path?q=1"
                assert server_ws.local_address == ("127.0.0.1", port)
                assert server_ws.client_host == "127.0.0.1"
            await server.aclose()


class Stop(BaseException):
    pass


def test_trio_run_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    # trio.run(serve, handler, port): positional port, host defaulting to
    # None, no nursery.start. The listener is made on a free loopback port
    # and a client runs in a system task beside the server.
    real_open_tcp_listeners = trio.open_tcp_listeners
    asked: list[tuple[int, object]] = []
    received: list[str | bytes] = []

    async def client(port: int) -> None:
        with trio.fail_after(10):
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send("hello")
                received.append(await ws.recv())

    async def open_tcp_listeners(
        port: int, *, host: object = None
    ) -> list[trio.SocketListener]:
        asked.append((port, host))
        listeners = await real_open_tcp_listeners(0, host="127.0.0.1")
        address = listeners[0].socket.getsockname()
        trio.lowlevel.spawn_system_task(client, address[1])
        return listeners

    async def handler(ws: ServerConnection) -> None:
        await ws.send(await ws.recv())
        await ws.wait_closed()
        raise Stop  # a BaseException: it stops the server, unwrapped

    monkeypatch.setattr(trio, "open_tcp_listeners", open_tcp_listeners)
    with pytest.raises(Stop):
        trio.run(serve, handler, 8765)
    assert asked == [(8765, None)]
    assert received == ["hello"]


async def test_serve_needs_port_or_listeners() -> None:
    with pytest.raises(TypeError, match="needs a port or listeners"):
        await serve(echo)


async def test_serve_without_listeners_returns(nursery: trio.Nursery) -> None:
    server: Server = await nursery.start(functools.partial(serve, echo, listeners=[]))
    assert server.port is None
    await server.aclose()  # serve had nothing to do and returned


async def test_serve_unix_socket_listener(tmp_path: object) -> None:
    path = f"{tmp_path}/ws.sock"
    sock = trio.socket.socket(socket.AF_UNIX)
    await sock.bind(path)
    sock.listen()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                functools.partial(serve, echo, listeners=[trio.SocketListener(sock)])
            )
            assert server.port is None  # a path, not a port
            client = trio.socket.socket(socket.AF_UNIX)
            await client.connect(path)
            stream = trio.SocketStream(client)
            await stream.send_all(upgrade_request())
            head, _ = await receive_head(stream)
            assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
            await stream.aclose()
            await server.aclose()


async def test_serve_cancelled_before(listener: MemoryListener) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        await serve(echo, listeners=[listener])
    assert scope.cancelled_caught
    with pytest.raises(ConnectionRefusedError):
        await listener.connect()  # the listener was closed


async def test_connections_are_the_open_ones(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    opened: list[ServerConnection] = []
    release = trio.Event()

    async def handler(ws: ServerConnection) -> None:
        opened.append(ws)
        await release.wait()
        await ws.aclose()

    server = await start(nursery, handler, listener)
    async with connect("ws://a/") as ws1, connect("ws://b/") as ws2:
        await trio.testing.wait_all_tasks_blocked()
        assert server.connections == set(opened)
        assert len(opened) == 2
        assert repr(server) == "<Server port=None connections=2>"
        # A closing connection is no longer listed.
        await ws1.aclose()
        assert server.connections == {opened[1]}
        release.set()
        await ws2.wait_closed()
    await trio.testing.wait_all_tasks_blocked()
    assert server.connections == set()


# --- Server.aclose ---------------------------------------------------------------


async def test_aclose_closes_connections_with_1001(
    listener: MemoryListener, autojump_clock: object
) -> None:
    serve_returned = trio.Event()

    async def run_serve(task_status: trio.TaskStatus[Server]) -> None:
        await serve(echo, listeners=[listener], task_status=task_status)
        serve_returned.set()

    async with trio.open_nursery() as nursery:
        server: Server = await nursery.start(run_serve)
        async with connect("ws://a/") as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            await server.aclose()
            assert trio.current_time() == 0
            assert serve_returned.is_set()
            with pytest.raises(ConnectionClosedOK) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 1001
        # The listener is closed: new clients are refused.
        with pytest.raises(ConnectionRefusedError):
            await listener.connect()
        await server.aclose()  # again: nothing left to do


async def test_aclose_cancels_stubborn_handler_at_close_timeout(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    cancelled_at: list[float] = []
    handler = sleeping_handler(cancelled_at)
    refused: list[float] = []

    async def connect_while_closing() -> None:
        await trio.sleep(2)
        with pytest.raises(ConnectionRefusedError):
            await listener.connect()
        refused.append(trio.current_time())

    server = await start(nursery, handler, listener, close_timeout=3)
    async with connect("ws://a/") as ws:
        await trio.sleep(1)
        nursery.start_soon(connect_while_closing)
        await server.aclose()
        assert trio.current_time() == 4
        assert cancelled_at == [4]
        assert ws.state is State.CLOSED
        assert ws.close_code == 1001
    # The listener was closed at once, not after the handlers.
    assert refused == [3]


async def test_aclose_returns_when_handlers_finish(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()
        await trio.sleep(2)  # some cleanup

    server = await start(nursery, handler, listener, close_timeout=10)
    async with connect("ws://a/"):
        await trio.testing.wait_all_tasks_blocked()
        await server.aclose()
        assert trio.current_time() == 2


async def test_aclose_cancelled_cancels_connections(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    cancelled_at: list[float] = []
    handler = sleeping_handler(cancelled_at)
    server = await start(nursery, handler, listener, close_timeout=10)
    async with connect("ws://a/"):
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(1):
            await server.aclose()
        assert trio.current_time() == 1
        await trio.testing.wait_all_tasks_blocked()
        assert cancelled_at == [1]


async def test_aclose_cancelled_before(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    cancelled_at: list[float] = []
    serve_returned = trio.Event()
    handler = sleeping_handler(cancelled_at)

    async def run_serve(task_status: trio.TaskStatus[Server]) -> None:
        await serve(handler, listeners=[listener], task_status=task_status)
        serve_returned.set()

    server: Server = await nursery.start(run_serve)
    async with connect("ws://a/"):
        await trio.sleep(1)
        with trio.CancelScope() as scope:
            scope.cancel()
            await server.aclose()
        await serve_returned.wait()
        assert trio.current_time() == 1
        assert cancelled_at == [1]


async def test_aclose_answers_pending_handshake_with_503(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    server = await start(nursery, echo, listener)
    stream = await listener.connect()
    request = upgrade_request()
    await stream.send_all(request[:10])
    await trio.testing.wait_all_tasks_blocked()
    async with trio.open_nursery() as closing:
        closing.start_soon(server.aclose)
        await trio.testing.wait_all_tasks_blocked()
        await stream.send_all(request[10:])
        response = await receive_all(stream)
    assert status_of(response) == 503
    assert response.endswith(b"\r\n\r\nServer is shutting down.\n")


async def test_cancel_serve_sends_1001_within_close_timeout(
    listener: MemoryListener, autojump_clock: object
) -> None:
    # The client reads the close frame but never answers it: the server
    # waits close_timeout for the answer, shielded, then drops the client.
    async with trio.open_nursery() as nursery:
        await start(nursery, echo, listener, close_timeout=5)
        stream = await raw_upgrade(listener)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert trio.current_time() == 6
    assert await receive_all(stream) == CLOSE_1001


async def test_cancel_serve_during_a_handshake_drops_the_client(
    listener: MemoryListener, autojump_clock: object
) -> None:
    # The request is still incomplete: the handshake's own deadline
    # (open_timeout) is far off, serve's cancellation ends it at once.
    async with trio.open_nursery() as nursery:
        await start(nursery, echo, listener, open_timeout=100)
        stream = await send_raw(listener, upgrade_request()[:30])
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert trio.current_time() == 1
    assert await receive_all(stream) == b""


async def test_cancel_serve_during_process_request_drops_the_client(
    listener: MemoryListener, autojump_clock: object
) -> None:
    entered: list[float] = []

    async def process_request(ws: ServerConnection, request: Request) -> None:
        entered.append(trio.current_time())
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        await start(nursery, echo, listener, process_request=process_request)
        stream = await send_raw(listener, upgrade_request())
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert entered == [0]
    assert trio.current_time() == 1
    assert await receive_all(stream) == b""


async def test_cancel_serve_completes_closing_handshake(
    listener: MemoryListener, autojump_clock: object
) -> None:
    serve_scope = trio.CancelScope()

    async def run_serve() -> None:
        with serve_scope:
            await serve(echo, listeners=[listener])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_serve)
        await trio.testing.wait_all_tasks_blocked()
        async with connect("ws://a/") as ws:
            serve_scope.cancel()
            with pytest.raises(ConnectionClosedOK) as info:
                await ws.recv()
    assert str(info.value) == "received 1001 (going away); then sent 1001 (going away)"
    assert trio.current_time() == 0


# --- Handlers --------------------------------------------------------------------


async def test_handler_returns_closes_1000(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("bye")

    await start(nursery, handler, listener)
    async with connect("ws://a/") as ws:
        assert await ws.recv() == "bye"
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.recv()
        assert str(info.value) == "received 1000 (OK); then sent 1000 (OK)"


async def test_handler_raises_closes_1011_and_logs(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path == "/fail":
            raise ValueError("boom")
        await echo(ws)

    await start(nursery, handler, listener)
    async with connect("ws://a/fail") as ws:
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.code == 1011
    record = logged_error(
        [r for r in caplog.records if r.levelno >= logging.WARNING],
        "connection handler failed",
        ValueError,
    )
    assert record.name == "trio_ws.server"
    assert record.levelno == logging.ERROR
    # The server goes on serving.
    await assert_echoes("ws://a/ok", "still here")


async def test_handler_connection_closed_ok_is_not_logged(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    raised: list[BaseException] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()  # the client closes normally
        except BaseException as exc:
            raised.append(exc)
            raise

    await start(nursery, handler, listener)
    async with connect("ws://a/"):
        pass
    await trio.testing.wait_all_tasks_blocked()
    assert [type(exc) for exc in raised] == [ConnectionClosedOK]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_failing_connection_does_not_disturb_another(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            if message == "fail":
                raise RuntimeError("this connection only")
            await ws.send(message)

    await start(nursery, handler, listener)
    async with connect("ws://a/") as good, connect("ws://a/") as bad:
        await good.send("1")
        assert await good.recv() == "1"
        await bad.send("fail")
        with pytest.raises(ConnectionClosedError):
            await bad.recv()
        await good.send("2")
        assert await good.recv() == "2"


async def serve_catching(
    raised: list[BaseException],
    handler: Handler,
    listener: MemoryListener,
    task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run serve; record what it raises."""
    try:
        await serve(handler, listeners=[listener], task_status=task_status)
    except BaseException as exc:
        raised.append(exc)


async def test_base_exception_in_handler_leaves_serve_unwrapped(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    async def handler(ws: ServerConnection) -> None:
        raise Stop

    raised: list[BaseException] = []
    await nursery.start(serve_catching, raised, handler, listener)
    async with connect("ws://a/") as ws:
        await ws.wait_closed()
        assert ws.close_code == 1011
    await trio.testing.wait_all_tasks_blocked()
    assert [type(exc) for exc in raised] == [Stop]  # not an ExceptionGroup


async def test_create_connection_failure_costs_one_connection(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    def factory(stream: trio.abc.Stream, **options: object) -> ServerConnection:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("factory bug")
        return ServerConnection(stream, **options)  # type: ignore[arg-type]

    await start(nursery, echo, listener, create_connection=factory)
    stream = await send_raw(listener, upgrade_request())
    assert await receive_all(stream) == b""  # dropped
    (record,) = caplog.records
    assert record.getMessage() == "create_connection failed"
    assert record.levelno == logging.ERROR
    await assert_echoes("ws://a/", "ok")


MyServerConnection = with_extra_option(ServerConnection)


@create_connection_cases(MyServerConnection)
async def test_create_connection(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    factory: object,
    extra: int,
) -> None:
    seen: list[ServerConnection] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append(ws)
        await echo(ws)

    await start(nursery, handler, listener, create_connection=factory, max_size=1234)
    await assert_echoes("ws://a/")
    (server_ws,) = seen
    assert type(server_ws) is MyServerConnection
    assert server_ws.extra == extra
    assert server_ws.max_size == 1234


# --- Opening handshake -----------------------------------------------------------


async def test_process_request_401_exact_response(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    fixed_date: None,
) -> None:
    seen: list[tuple[ServerConnection, Request]] = []

    def process_request(ws: ServerConnection, request: Request) -> Response:
        seen.append((ws, request))
        return ws.respond(401, "Missing token.\n")

    async def handler(ws: ServerConnection) -> None:
        raise AssertionError("not upgraded")

    await start(nursery, handler, listener, process_request=process_request)
    stream = await send_raw(listener, upgrade_request("/private?x=1"))
    assert await receive_all(stream) == (
        b"HTTP/1.1 401 Unauthorized\r\n"
        b"Date: " + DATE.encode() + b"\r\n"
        b"Server: " + DEFAULT_SERVER.encode() + b"\r\n"
        b"Connection: close\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 15\r\n"
        b"\r\n"
        b"Missing token.\n"
    )
    ((ws, request),) = seen
    assert request.path == "/private?x=1"
    assert request.headers["Sec-WebSocket-Key"] == KEY
    assert ws.request is request
    assert ws.response is not None
    assert ws.response.status_code == 401


async def test_process_request_async_health_check(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    async def process_request(
        ws: ServerConnection, request: Request
    ) -> Response | None:
        await trio.sleep(1)
        if request.path == "/healthz":
            return ws.respond(200, "OK\n")
        return None

    await start(nursery, echo, listener, process_request=process_request)
    stream = await listener.connect()
    # A plain GET, as a load balancer sends it: no upgrade headers.
    await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: example.com\r\n\r\n")
    response = await receive_all(stream)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.endswith(b"\r\n\r\nOK\n")
    assert trio.current_time() == 1
    await assert_echoes("ws://a/other", "upgraded")


async def test_process_request_raises_gives_500(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def process_request(ws: ServerConnection, request: Request) -> None:
        raise KeyError("bug")

    await start(nursery, echo, listener, process_request=process_request)
    response = await refused_response()
    assert response.status_code == 500
    assert response.body == b"Failed to open a WebSocket connection.\n"
    logged_error(caplog.records, "opening handshake failed", KeyError)


async def test_process_response_modifies_101(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    def process_response(
        ws: ServerConnection, request: Request, response: Response
    ) -> None:
        assert response.status_code == 101
        response.headers["X-Extra"] = request.path

    await start(nursery, echo, listener, process_response=process_response)
    async with connect("ws://a/p") as ws:
        assert ws.response is not None
        assert ws.response.headers["X-Extra"] == "/p"
        await ws.send("x")
        assert await ws.recv() == "x"


async def test_process_response_replaces_101(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    handled: list[ServerConnection] = []

    async def handler(ws: ServerConnection) -> None:
        handled.append(ws)

    async def process_response(
        ws: ServerConnection, request: Request, response: Response
    ) -> Response:
        await trio.lowlevel.checkpoint()
        return ws.respond(403, "Go away.\n")

    await start(nursery, handler, listener, process_response=process_response)
    response = await refused_response()
    assert response.status_code == 403
    assert response.body == b"Go away.\n"
    assert handled == []


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (Response(99, "Nonsense", Headers()), ValueError),  # h11 refuses it
        ("not a Response", AttributeError),
    ],
)
async def test_invalid_response_drops_connection(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    caplog: pytest.LogCaptureFixture,
    answer: object,
    error: type[Exception],
) -> None:
    def process_request(ws: ServerConnection, request: Request) -> object:
        return answer if request.path == "/bad" else None

    await start(nursery, echo, listener, process_request=process_request)
    stream = await send_raw(listener, upgrade_request("/bad"))
    assert await receive_all(stream) == b""
    logged_error(caplog.records, "opening handshake failed", error)
    await assert_echoes("ws://a/good")  # nothing else broke


async def test_origins(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    await start(nursery, echo, listener, origins=["https://good.example"])
    await assert_echoes("ws://a/", origin="https://good.example")
    response = await refused_response("ws://a/", origin="https://evil.example")
    assert response.status_code == 403
    assert b"Origin" in response.body


async def test_subprotocol_negotiation(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    seen: list[str | None] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append(ws.subprotocol)

    await start(nursery, handler, listener, subprotocols=["superchat", "chat"])
    async with connect("ws://a/", subprotocols=["chat", "superchat"]) as ws:
        assert ws.subprotocol == "superchat"  # the server's preference
        await ws.wait_closed()
    async with connect("ws://a/", subprotocols=["other"]) as ws:
        assert ws.subprotocol is None
        await ws.wait_closed()
    assert seen == ["superchat", None]


async def test_select_subprotocol(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    calls: list[tuple[ServerConnection, list[str]]] = []

    def select_subprotocol(ws: ServerConnection, offered: object) -> str | None:
        assert isinstance(offered, list)
        calls.append((ws, offered))
        return offered[-1] if offered else None

    async def handler(ws: ServerConnection) -> None:
        assert ws.subprotocol == "b"
        assert calls[0][0] is ws

    await start(nursery, handler, listener, select_subprotocol=select_subprotocol)
    async with connect("ws://a/", subprotocols=["a", "b"]) as ws:
        assert ws.subprotocol == "b"
        await ws.wait_closed()
        assert ws.close_code == 1000
    assert calls[0][1] == ["a", "b"]


async def test_server_header(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    await start(nursery, echo, listener, server_header=None)
    async with connect("ws://a/") as ws:
        assert ws.response is not None
        assert "Server" not in ws.response.headers
    stream = await send_raw(
        listener, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
    )
    response = await receive_all(stream)
    assert status_of(response) == 405
    assert b"\r\nServer:" not in response


async def test_compression_negotiated(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    await start(nursery, echo, listener)
    async with connect("ws://a/") as ws:
        assert ws.response is not None
        assert ws.response.headers["Sec-WebSocket-Extensions"].startswith(
            "permessage-deflate"
        )
        await ws.send("z" * 100_000)
        assert await ws.recv() == "z" * 100_000
    async with connect("ws://a/", compression=None) as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers


# --- Bad clients -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"hello\r\n\r\n", 400),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 20, 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 405),
        (b"GET / HTTP/1.0\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 426),
        (upgrade_request().replace(b"Version: 13", b"Version: 8"), 426),
        (upgrade_request().replace(KEY.encode(), b"short"), 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"x" * 20000 + b"\r\n\r\n", 431),
    ],
)
async def test_bad_request_gets_4xx_and_server_goes_on(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    caplog: pytest.LogCaptureFixture,
    request_bytes: bytes,
    status: int,
) -> None:
    await start(nursery, echo, listener)
    stream = await send_raw(listener, request_bytes)
    response = await receive_all(stream)
    assert status_of(response) == status
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"\r\nContent-Type: text/plain; charset=utf-8\r\n" in head
    assert body.startswith(b"Failed to open a WebSocket connection: ")
    assert len(body) < 300
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    await assert_echoes("ws://a/", "next")


async def test_eof_during_request_is_dropped_quietly(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws.server")
    await start(nursery, echo, listener)
    stream = await send_raw(listener, upgrade_request()[:20])
    await stream.aclose()
    await trio.testing.wait_all_tasks_blocked()
    assert [r.getMessage() for r in caplog.records] == [
        "invalid request: connection closed during handshake",
        "connection lost during the opening handshake",
    ]


async def test_client_gone_before_response(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws.server")
    handled: list[ServerConnection] = []

    async def process_request(ws: ServerConnection, request: Request) -> None:
        await trio.sleep(1)

    async def handler(ws: ServerConnection) -> None:
        handled.append(ws)

    await start(nursery, handler, listener, process_request=process_request)
    stream = await send_raw(listener, upgrade_request())
    await trio.testing.wait_all_tasks_blocked()
    await stream.aclose()
    await trio.sleep(2)
    assert [r.getMessage() for r in caplog.records] == [
        "connection lost during the opening handshake"
    ]
    assert handled == []


async def test_idle_client_dropped_at_open_timeout(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws.server")
    await start(nursery, echo, listener, open_timeout=7)
    stream = await send_raw(listener, upgrade_request()[:30])
    assert await receive_all(stream) == b""
    assert trio.current_time() == 7
    assert [r.getMessage() for r in caplog.records] == ["opening handshake timed out"]


async def test_idle_clients_do_not_block_accept(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    await start(nursery, echo, listener, open_timeout=None)
    idle = [await listener.connect() for _ in range(300)]
    for stream in idle:
        await stream.send_all(b"GET / HTTP/1.1\r\n")
    await trio.sleep(3600)
    await assert_echoes("ws://a/", "served")
    assert trio.current_time() == 3600
    for stream in idle:
        await stream.aclose()


async def test_trailing_frames_after_request(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    # A client may send its first frame right behind its request.
    await start(nursery, echo, listener)
    stream = await send_raw(
        listener, upgrade_request() + frame(OP_TEXT, b"early", mask=MASK)
    )
    head, rest = await receive_head(stream)
    assert f"Sec-WebSocket-Accept: {ACCEPT}\r\n".encode() in head
    while len(rest) < 7:
        rest += await stream.receive_some()
    assert parse_frames(rest) == [(OP_TEXT, True, 0, b"early")]
    await stream.send_all(frame(OP_CLOSE, close_payload(1000), mask=MASK))
    assert parse_frames(await receive_all(stream)) == [
        (OP_CLOSE, True, 0, close_payload(1000))
    ]


# --- Accept loop -----------------------------------------------------------------


class FlakyListener(MemoryListener):
    """Raises the given errors from accept() first."""

    def __init__(self, *errors: OSError) -> None:
        super().__init__()
        self.errors = list(errors)

    async def accept(self) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        if self.errors:
            raise self.errors.pop(0)
        return await super().accept()


async def test_accept_out_of_file_descriptors_retries(
    nursery: trio.Nursery, autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakyListener(OSError(errno.EMFILE, "Too many open files"))
    server: Server = await nursery.start(
        functools.partial(serve, echo, listeners=[flaky])
    )
    await trio.testing.wait_all_tasks_blocked()
    (record,) = caplog.records
    assert record.getMessage() == "accept failed; retrying"
    assert record.levelno == logging.ERROR
    stream = await flaky.connect()
    await stream.send_all(upgrade_request())
    head, _ = await receive_head(stream)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert trio.current_time() == 0.1
    await stream.aclose()
    await server.aclose()


async def test_accept_error_stops_serve_and_closes_connections(
    nursery: trio.Nursery, autojump_clock: object
) -> None:
    flaky = FlakyListener()
    error = OSError(errno.EBADF, "Bad file descriptor")
    raised: list[BaseException] = []
    await nursery.start(serve_catching, raised, echo, flaky)
    stream = await raw_upgrade(flaky)
    flaky.errors.append(error)
    await flaky.connect()  # wakes accept(), which raises
    assert await receive_all(stream) == CLOSE_1001
    assert trio.current_time() == 10  # close_timeout: the client never answered
    await trio.testing.wait_all_tasks_blocked()
    assert raised == [error]  # itself, not in an ExceptionGroup


# --- Abnormal closure ------------------------------------------------------------


async def test_handler_sees_client_vanish(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    raised = await start_catching_recv(nursery, listener, ConnectionClosedError)
    stream = await raw_upgrade(listener)
    await stream.aclose()  # TCP gone, no close frame
    await trio.testing.wait_all_tasks_blocked()
    (exc,) = raised
    assert isinstance(exc, ConnectionClosedError)
    assert str(exc) == "no close frame received or sent"
    assert exc.code == 1006
    assert exc.__cause__ is not None


# --- TLS -------------------------------------------------------------------------


@functools.cache
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for 127.0.0.1 and localhost, and
    a client context trusting it, from a test CA."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    return server, client


@pytest.fixture
def server_context() -> ssl.SSLContext:
    return tls_contexts()[0]


@pytest.fixture
def client_context() -> ssl.SSLContext:
    return tls_contexts()[1]


async def test_tls_real_sockets(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                functools.partial(serve, echo, 0, host="127.0.0.1", ssl=server_context)
            )
            assert isinstance(server.listeners[0], trio.SSLListener)
            port = server.port
            assert isinstance(port, int)
            async with connect(f"wss://127.0.0.1:{port}/", ssl=client_context) as ws:
                await ws.send("secret")
                assert await ws.recv() == "secret"
                assert isinstance(ws._stream, trio.SSLStream)
                assert ws.remote_address == ("127.0.0.1", port)
            await server.aclose()


async def test_tls_handshake_failure_is_dropped(
    nursery: trio.Nursery,
    listener: MemoryListener,
    autojump_clock: object,
    server_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws.server")
    await start(nursery, echo, listener, ssl=server_context)
    stream = await listener.connect()
    await stream.send_all(upgrade_request())  # plain HTTP to a TLS server
    assert await receive_all(stream) == b""  # dropped
    assert [r.getMessage() for r in caplog.records] == [
        "connection lost during the opening handshake"
    ]


# --- Logging ---------------------------------------------------------------------


async def test_logger_option(
    autojump_clock: object,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger = logging.getLogger("my.server")
    flaky = FlakyListener(OSError(errno.ENFILE, "Too many open files in system"))
    route_connect(monkeypatch, lambda host, port: flaky.connect())
    seen: list[ServerConnection] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append(ws)
        raise ValueError("logged on my.server")

    async with trio.open_nursery() as nursery:
        server: Server = await nursery.start(
            functools.partial(serve, handler, listeners=[flaky], logger=logger)
        )
        assert server.logger is logger
        async with connect("ws://a/") as ws:
            await ws.wait_closed()
        nursery.cancel_scope.cancel()
    assert seen[0].logger is logger
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("my.server", "accept failed; retrying"),
        ("my.server", "connection handler failed"),
    ]


async def test_aclose_from_a_handler_cancels_it_at_close_timeout(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    servers: list[Server] = []
    outcome: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            await servers[0].aclose()
        except trio.Cancelled:
            outcome.append(f"cancelled at {trio.current_time()}")
            raise

    servers.append(await start(nursery, handler, listener, close_timeout=4))
    async with connect("ws://a/") as ws:
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.recv()
    assert info.value.code == 1001
    assert trio.current_time() == 0  # the connection closes at once
    await trio.sleep(10)
    assert outcome == ["cancelled at 4.0"]
