"""trio_ws behind a real nginx: upgrade, large messages, compression, idle
timeouts against keepalive, and the client address from X-Forwarded-For.

nginx terminates TLS (``wss://`` on its side, ``ws://`` to trio_ws) with the
configuration in nginx.conf, its ``proxy_read_timeout`` set to 1 second.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest
import trio

import trio_ws

if TYPE_CHECKING:
    from .conftest import Nginx, StartNginx

pytestmark = pytest.mark.nginx

#: Bound on each test's network steps (real sockets, real time).
TIMEOUT = 10


async def echo(ws: trio_ws.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def behind_nginx(
    nursery: trio.Nursery,
    nginx: StartNginx,
    handler: Callable[[trio_ws.ServerConnection], Awaitable[None]] = echo,
    **options: object,
) -> tuple[trio_ws.Server, Nginx]:
    server: trio_ws.Server = await nursery.start(
        functools.partial(trio_ws.serve, handler, 0, host="127.0.0.1", **options)  # type: ignore[arg-type]
    )
    assert server.port is not None
    return server, await nginx(server.port)


async def test_upgrade_through_the_proxy(
    nursery: trio.Nursery, nginx: StartNginx
) -> None:
    async def report(ws: trio_ws.ServerConnection) -> None:
        assert ws.request is not None
        headers = ws.request.headers
        await ws.send(
            f"{ws.request.path} {headers['Host']} {headers['X-Forwarded-Proto']}"
        )
        await echo(ws)

    with trio.fail_after(TIMEOUT):
        _, proxy = await behind_nginx(
            nursery, nginx, report, subprotocols=["chat.v2", "chat.v1"]
        )
        async with trio_ws.connect(
            proxy.uri("/room/42?user=ann"), ssl=proxy.ssl, subprotocols=["chat.v1"]
        ) as ws:
            assert ws.response is not None
            assert ws.response.status_code == 101
            assert ws.subprotocol == "chat.v1"
            # Path and query reach the handler; Host is nginx's, TLS was nginx's.
            assert await ws.recv() == "/room/42?user=ann 127.0.0.1 https"
            await ws.send("hello")
            assert await ws.recv() == "hello"
        assert ws.close_code == 1000


async def test_plain_http_request_is_answered_not_upgraded(
    nursery: trio.Nursery, nginx: StartNginx
) -> None:
    # Without Upgrade, nginx sends "Connection: close" and trio_ws says 426.
    with trio.fail_after(TIMEOUT):
        _, proxy = await behind_nginx(nursery, nginx)
        stream = await trio.open_ssl_over_tcp_stream(
            "127.0.0.1", proxy.port, ssl_context=proxy.ssl
        )
        async with stream:
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = await stream.receive_some()
                assert chunk
                data += chunk
        status = data.split(b"\r\n", 1)[0]
        assert re.fullmatch(rb"HTTP/1\.1 4\d\d .*", status), status


@pytest.mark.parametrize("size", [2**16 + 1, 4 * 2**20])
async def test_large_messages(
    nursery: trio.Nursery, nginx: StartNginx, size: int
) -> None:
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    with trio.fail_after(TIMEOUT):
        _, proxy = await behind_nginx(nursery, nginx, max_size=2 * size)
        async with trio_ws.connect(
            proxy.uri(), ssl=proxy.ssl, max_size=2 * size, compression=None
        ) as ws:
            await ws.send(payload)
            assert await ws.recv() == payload
            text = "é" * (size // 2)
            await ws.send(text)
            assert await ws.recv() == text


async def test_compression_through_the_proxy(
    nursery: trio.Nursery, nginx: StartNginx
) -> None:
    payload = "abc" * 2**18  # 768 KiB that deflate squeezes to a few KiB
    with trio.fail_after(TIMEOUT):
        _, proxy = await behind_nginx(nursery, nginx)
        async with trio_ws.connect(proxy.uri(), ssl=proxy.ssl) as ws:
            assert ws.response is not None
            extensions = ws.response.headers["Sec-WebSocket-Extensions"]
            assert extensions.startswith("permessage-deflate")
            await ws.send(payload)
            assert await ws.recv() == payload
        # nginx logs the bytes it sent to the client once the connection
        # ends: the compressed echo, not 768 KiB.
        log = proxy.prefix / "access.log"
        # nginx gives no sign but the file: poll it.
        while "GET / HTTP/1.1" not in log.read_text():  # noqa: ASYNC110
            await trio.sleep(0.01)
    sent = int(re.search(r'" 101 (\d+) ', log.read_text()).group(1))  # type: ignore[union-attr]
    assert 0 < sent < 20_000


async def test_keepalive_pings_keep_an_idle_connection_open(
    nursery: trio.Nursery, nginx: StartNginx
) -> None:
    # nginx's proxy_read_timeout is 1 s; the server pings every 0.25 s.
    with trio.fail_after(TIMEOUT):
        _, proxy = await behind_nginx(nursery, nginx, ping_interval=0.25)
        async with trio_ws.connect(
            proxy.uri(), ssl=proxy.ssl, ping_interval=None
        ) as ws:
            start = trio.current_time()
            # Idle well past the proxy's timeout: recv() gets nothing.
            with trio.move_on_after(2.5):
                await ws.recv()
            assert trio.current_time() - start >= 2.5
            assert ws.state is trio_ws.State.OPEN
            await ws.send("still here")
            assert await ws.recv() == "still here"
        assert ws.close_code == 1000


async def test_without_keepalive_the_proxy_cuts_an_idle_connection(
    nursery: trio.Nursery, nginx: StartNginx
) -> None:
    server_side: list[BaseException] = []
    server_done = trio.Event()

    async def idle(ws: trio_ws.ServerConnection) -> None:
        try:
            await ws.recv()
        except trio_ws.ConnectionClosed as exc:
            server_side.append(exc)
        server_done.set()

    with trio.fail_after(TIMEOUT):
        _, proxy = await behind_nginx(nursery, nginx, idle, ping_interval=None)
        async with trio_ws.connect(
            proxy.uri(), ssl=proxy.ssl, ping_interval=None
        ) as ws:
            start = trio.current_time()
            with pytest.raises(trio_ws.ConnectionClosedError) as caught:
                await ws.recv()
            waited = trio.current_time() - start
        await server_done.wait()
    assert str(caught.value) == "no close frame received or sent"
    assert ws.close_code == 1006
    # proxy_read_timeout is 1 s; nginx's timers are coarse.
    assert 0.9 <= waited < 3
    # The server saw the same: a TCP close without a close frame.
    [exc] = server_side
    assert isinstance(exc, trio_ws.ConnectionClosedError)
    assert str(exc) == "no close frame received or sent"
    assert "upstream timed out" in proxy.error_log()


async def client_host_of(proxy: Nginx, *, forged: str | None = None) -> str:
    headers = {} if forged is None else {"X-Forwarded-For": forged}
    async with trio_ws.connect(
        proxy.uri(), ssl=proxy.ssl, additional_headers=headers
    ) as ws:
        return str(await ws.recv())


@pytest.fixture
def from_127_0_0_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connect from 127.0.0.2, so that the client is not nginx's address."""
    monkeypatch.setattr(
        trio,
        "open_tcp_stream",
        functools.partial(trio.open_tcp_stream, local_address="127.0.0.2"),
    )


async def send_client_host(ws: trio_ws.ServerConnection) -> None:
    await ws.send(str(ws.client_host))


@pytest.mark.usefixtures("from_127_0_0_2")
async def test_x_forwarded_for_from_a_trusted_proxy(
    nursery: trio.Nursery, nginx: StartNginx
) -> None:
    with trio.fail_after(TIMEOUT):
        server, proxy = await behind_nginx(
            nursery, nginx, send_client_host, trusted_proxies=["127.0.0.1"]
        )
        assert await client_host_of(proxy) == "127.0.0.2"
        # A client's own header is kept left of what nginx adds; trio_ws
        # believes only the hop that its trusted proxy wrote.
        assert await client_host_of(proxy, forged="203.0.113.9") == "127.0.0.2"
        # Straight to trio_ws (no proxy), the header is ignored.
        async with trio_ws.connect(
            f"ws://127.0.0.1:{server.port}/",
            additional_headers={"X-Forwarded-For": "203.0.113.9"},
        ) as ws:
            assert await ws.recv() == "127.0.0.2"


@pytest.mark.usefixtures("from_127_0_0_2")
async def test_x_forwarded_for_is_ignored_by_default(
    nursery: trio.Nursery, nginx: StartNginx
) -> None:
    with trio.fail_after(TIMEOUT):
        _, proxy = await behind_nginx(nursery, nginx, send_client_host)
        # Without trusted_proxies the client is the socket's peer: nginx.
        assert await client_host_of(proxy, forged="203.0.113.9") == "127.0.0.1"
