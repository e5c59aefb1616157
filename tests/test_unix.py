"""Unix sockets: ``connect(..., unix_socket_path=...)`` and ``serve(listeners=...)``.

End-to-end tests use real sockets in ``tmp_path`` under a trio-clock
``fail_after`` guard; timing tests route ``trio.open_unix_socket`` to memory
streams so that they run under ``autojump_clock``.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import pathlib
import sys
from types import ModuleType

import pytest
import trio
import trio.testing

import trio_ws

from .test_client import read_request, switching_protocols
from .test_server import receive_all, tls_contexts

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="trio has no Unix sockets on Windows"
)

EXAMPLE = (
    pathlib.Path(__file__).parent.parent
    / "docs"
    / "howto"
    / "examples"
    / "unix_socket.py"
)


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("howto_unix_socket", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def unix_listener() -> object:
    """The example's ``open_unix_listener``: the documented server recipe."""
    return load_example().open_unix_listener


async def test_howto_example(tmp_path: pathlib.Path) -> None:
    with trio.fail_after(10):
        assert await load_example().main(str(tmp_path)) == "hello over a Unix socket"
    # The example removes its socket file.
    assert not await trio.Path(tmp_path / "app.sock").exists()


async def test_serve_and_connect(
    tmp_path: pathlib.Path, unix_listener: object, nursery: trio.Nursery
) -> None:
    path = str(tmp_path / "s")
    seen: list[object] = []

    async def handler(ws: trio_ws.ServerConnection) -> None:
        seen.append((ws.request.path, ws.request.headers["Host"]))  # type: ignore[union-attr]
        seen.append(ws.remote_address)
        await ws.send(await ws.recv())

    with trio.fail_after(10):
        listener = await unix_listener(path)  # type: ignore[operator]
        server = await nursery.start(
            functools.partial(trio_ws.serve, handler, listeners=[listener])
        )
        # A Unix socket has no port.
        assert server.port is None
        async with trio_ws.connect(
            "ws://app.example:8080/chat?room=1", unix_socket_path=tmp_path / "s"
        ) as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
            assert ws.local_address == ""  # an unnamed client socket
            assert ws.remote_address == path
        await server.aclose()
    assert seen == [("/chat?room=1", "app.example:8080"), ""]


async def test_request_bytes(tmp_path: pathlib.Path, unix_listener: object) -> None:
    # The URI gives the request line and the Host header; the socket only
    # says where the server is.
    path = str(tmp_path / "s")
    requests: list[bytes] = []

    async def server(stream: trio.SocketStream) -> None:
        request = await read_request(stream)
        requests.append(request)
        await stream.send_all(switching_protocols(request))
        await stream.receive_some()  # the client's close frame
        await stream.aclose()  # the server closes TCP first (RFC 6455 7.1.1)

    with trio.fail_after(10):
        listener = await unix_listener(path)  # type: ignore[operator]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                functools.partial(trio.serve_listeners, server, [listener])
            )
            async with trio_ws.connect(
                "ws://localhost/path?q", unix_socket_path=path, compression=None
            ):
                pass
            nursery.cancel_scope.cancel()
    (request,) = requests
    assert request.startswith(b"GET /path?q HTTP/1.1\r\nHost: localhost\r\n")


async def test_wss_over_unix_socket(
    tmp_path: pathlib.Path, unix_listener: object, nursery: trio.Nursery
) -> None:
    server_context, client_context = tls_contexts()
    path = str(tmp_path / "s")

    async def echo(ws: trio_ws.ServerConnection) -> None:
        await ws.send(await ws.recv())

    with trio.fail_after(10):
        listener = await unix_listener(path)  # type: ignore[operator]
        server = await nursery.start(
            functools.partial(
                trio_ws.serve, echo, listeners=[listener], ssl=server_context
            )
        )
        # The certificate is checked against the URI's host name.
        async with trio_ws.connect(
            "wss://localhost/", unix_socket_path=path, ssl=client_context
        ) as ws:
            await ws.send(b"\x01" * 70000)
            assert await ws.recv() == b"\x01" * 70000
        await server.aclose()


async def test_missing_socket(tmp_path: pathlib.Path) -> None:
    with trio.fail_after(10), pytest.raises(FileNotFoundError):
        async with trio_ws.connect(
            "ws://localhost/", unix_socket_path=tmp_path / "nothing"
        ):
            pytest.fail("connected to nothing")  # pragma: no cover


async def test_refused_when_nobody_listens(
    tmp_path: pathlib.Path, unix_listener: object
) -> None:
    path = str(tmp_path / "s")
    listener = await unix_listener(path)  # type: ignore[operator]
    await listener.aclose()  # the file stays, nobody listens
    with trio.fail_after(10), pytest.raises(ConnectionRefusedError):
        async with trio_ws.connect("ws://localhost/", unix_socket_path=path):
            pytest.fail("connected to nobody")  # pragma: no cover


# --- Routed to memory: timing and cancellation -------------------------------


class UnixNetwork:
    """Hands ``connect`` memory streams for ``open_unix_socket``."""

    def __init__(self) -> None:
        self.paths: list[object] = []
        self.peers: list[trio.abc.Stream] = []
        self.delay = 0.0

    async def open_unix_socket(self, path: object) -> trio.abc.Stream:
        await trio.sleep(self.delay)
        self.paths.append(path)
        client, server = trio.testing.memory_stream_pair()
        self.peers.append(server)
        return client


@pytest.fixture
def unix_network(monkeypatch: pytest.MonkeyPatch) -> UnixNetwork:
    network = UnixNetwork()
    monkeypatch.setattr(trio, "open_unix_socket", network.open_unix_socket)

    async def no_tcp(host: str, port: int) -> trio.abc.Stream:
        raise AssertionError("TCP used instead of the Unix socket")  # pragma: no cover

    monkeypatch.setattr(trio, "open_tcp_stream", no_tcp)
    return network


async def test_unix_socket_bypasses_proxies(
    unix_network: UnixNetwork,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: object,
    nursery: trio.Nursery,
) -> None:
    monkeypatch.setenv("http_proxy", "http://proxy.invalid:3128")
    monkeypatch.setenv("all_proxy", "socks5://proxy.invalid:1080")

    async def server() -> None:
        await trio.testing.wait_all_tasks_blocked()
        (peer,) = unix_network.peers
        request = await read_request(peer)
        await peer.send_all(switching_protocols(request))

    nursery.start_soon(server)
    async with trio_ws.connect(
        "ws://localhost/", unix_socket_path="/run/app.sock", compression=None
    ) as ws:
        assert ws.response is not None
        assert ws.response.status_code == 101
        ws._abort(None)  # no closing handshake with this silent peer
    assert unix_network.paths == ["/run/app.sock"]


async def assert_open_timeout(message: str) -> None:
    """Connecting over ``/s`` with ``open_timeout=3`` fails with ``message`` at 3 s."""
    with pytest.raises(TimeoutError) as info:
        async with trio_ws.connect(
            "ws://localhost/", unix_socket_path="/s", open_timeout=3
        ):
            pytest.fail("connected")  # pragma: no cover
    assert str(info.value) == message
    assert trio.current_time() == 3


async def test_open_timeout_while_connecting(
    unix_network: UnixNetwork, autojump_clock: object
) -> None:
    unix_network.delay = math.inf
    await assert_open_timeout("timed out while opening the connection")


async def test_open_timeout_during_handshake(
    unix_network: UnixNetwork, autojump_clock: object
) -> None:
    unix_network.delay = 1
    await assert_open_timeout("timed out during the opening handshake")
    # The client closed its end: the silent server sees the request, then EOF.
    (peer,) = unix_network.peers
    assert (await receive_all(peer)).startswith(b"GET / HTTP/1.1\r\n")


async def test_cancelled_before(unix_network: UnixNetwork) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        async with trio_ws.connect("ws://localhost/", unix_socket_path="/s"):
            pytest.fail("connected")  # pragma: no cover
    assert scope.cancelled_caught
    assert unix_network.paths == []


async def test_cancelled_during_handshake(
    unix_network: UnixNetwork, autojump_clock: object
) -> None:
    with trio.move_on_after(2) as scope:
        async with trio_ws.connect("ws://localhost/", unix_socket_path="/s"):
            pytest.fail("connected")  # pragma: no cover
    assert scope.cancelled_caught
    assert trio.current_time() == 2
    (peer,) = unix_network.peers
    assert (await receive_all(peer)).startswith(b"GET / HTTP/1.1\r\n")
