"""trio_ws clients through real proxy servers: tinyproxy, dante, microsocks.

Each test starts a trio_ws echo server on 127.0.0.1 and a proxy from
``conftest.py``, then connects through the proxy. Real sockets and real
time, each test under ``trio.fail_after``.
"""

from __future__ import annotations

import functools
import socket
import ssl
from typing import TYPE_CHECKING

import pytest
import trio
import trustme

import trio_ws

from ..test_server import echo

if TYPE_CHECKING:
    from .conftest import StartProxy

pytestmark = pytest.mark.proxy

#: Bound on each test (real sockets, real time).
TIMEOUT = 10


async def echo_server(nursery: trio.Nursery, **options: object) -> int:
    server: trio_ws.Server = await nursery.start(
        functools.partial(trio_ws.serve, echo, 0, host="127.0.0.1", **options)  # type: ignore[arg-type]
    )
    assert server.port is not None
    return server.port


async def round_trip(uri: str, **options: object) -> trio_ws.ClientConnection:
    async with trio_ws.connect(uri, **options) as ws:  # type: ignore[arg-type]
        await ws.send("through a real proxy")
        assert await ws.recv() == "through a real proxy"
        await ws.send(b"\x00" * 100_000)
        assert await ws.recv() == b"\x00" * 100_000
    assert ws.close_code == 1000
    return ws


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (a small race, as ever)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- HTTP CONNECT: tinyproxy ------------------------------------------------------


async def test_ws_through_tinyproxy(
    nursery: trio.Nursery, tinyproxy: StartProxy
) -> None:
    with trio.fail_after(TIMEOUT):
        port = await echo_server(nursery)
        proxy = await tinyproxy()
        await round_trip(f"ws://127.0.0.1:{port}/", proxy=proxy)


async def test_wss_through_tinyproxy_with_credentials(
    nursery: trio.Nursery, tinyproxy: StartProxy
) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with trio.fail_after(TIMEOUT):
        port = await echo_server(nursery, ssl=server_context)
        proxy = await tinyproxy(basic_auth=("alice", "s3cret"))
        # tinyproxy resolves "localhost"; TLS runs inside the tunnel.
        ws = await round_trip(
            f"wss://localhost:{port}/",
            proxy=proxy.replace("http://", "http://alice:s3cret@"),
            ssl=client_context,
        )
    assert isinstance(ws._stream, trio.SSLStream)


# tinyproxy answers 407 without credentials, 401 to wrong ones.
@pytest.mark.parametrize(("credentials", "status"), [("", 407), ("alice:wrong@", 401)])
async def test_tinyproxy_wants_credentials(
    nursery: trio.Nursery, tinyproxy: StartProxy, credentials: str, status: int
) -> None:
    with trio.fail_after(TIMEOUT):
        port = await echo_server(nursery)
        proxy = await tinyproxy(basic_auth=("alice", "s3cret"))
        with pytest.raises(trio_ws.ProxyError, match=f"refused the tunnel: {status} "):
            await round_trip(
                f"ws://127.0.0.1:{port}/",
                proxy=proxy.replace("http://", f"http://{credentials}"),
            )


async def test_tinyproxy_forbids_the_port(
    nursery: trio.Nursery, tinyproxy: StartProxy
) -> None:
    with trio.fail_after(TIMEOUT):
        port = await echo_server(nursery)
        proxy = await tinyproxy(connect_ports=[443])
        with pytest.raises(trio_ws.ProxyError, match="refused the tunnel: 403"):
            await round_trip(f"ws://127.0.0.1:{port}/", proxy=proxy)


async def test_tinyproxy_cannot_reach_the_server(tinyproxy: StartProxy) -> None:
    with trio.fail_after(TIMEOUT):
        proxy = await tinyproxy()
        with pytest.raises(trio_ws.ProxyError, match="refused the tunnel: 5"):
            await round_trip(f"ws://127.0.0.1:{closed_port()}/", proxy=proxy)


async def test_environment_and_no_proxy(
    nursery: trio.Nursery, tinyproxy: StartProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(TIMEOUT):
        port = await echo_server(nursery)
        proxy = await tinyproxy(basic_auth=("alice", "s3cret"))
        # The default, proxy=True, reads http_proxy for ws://.
        monkeypatch.setenv("http_proxy", proxy)
        with pytest.raises(trio_ws.ProxyError, match="407"):
            await round_trip(f"ws://127.0.0.1:{port}/")
        monkeypatch.setenv("http_proxy", proxy.replace("//", "//alice:s3cret@"))
        await round_trip(f"ws://127.0.0.1:{port}/")
        # no_proxy by CIDR: straight to the server, tinyproxy unused.
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port()}")
        monkeypatch.setenv("no_proxy", "example.com, 127.0.0.0/8")
        await round_trip(f"ws://127.0.0.1:{port}/")
        monkeypatch.delenv("no_proxy")
        with pytest.raises(OSError, match="all attempts to connect"):
            await round_trip(f"ws://127.0.0.1:{port}/")
        await round_trip(f"ws://127.0.0.1:{port}/", proxy=None)


# --- SOCKS5: dante and microsocks --------------------------------------------------


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
async def test_through_dante(
    nursery: trio.Nursery, dante: StartProxy, scheme: str
) -> None:
    with trio.fail_after(TIMEOUT):
        port = await echo_server(nursery)
        proxy = await dante()
        # socks5: the client resolves localhost; socks5h: dante does.
        await round_trip(f"ws://localhost:{port}/", proxy=f"{scheme}://{proxy}")


async def test_dante_reply_codes(dante: StartProxy) -> None:
    with trio.fail_after(TIMEOUT):
        proxy = f"socks5h://{await dante()}"
        with pytest.raises(trio_ws.ProxyError, match="not allowed by ruleset"):
            await round_trip("ws://127.0.0.1:9/", proxy=proxy)
        with pytest.raises(
            trio_ws.ProxyError, match="could not connect: connection refused"
        ):
            await round_trip(f"ws://127.0.0.1:{closed_port()}/", proxy=proxy)


async def test_dante_refuses_username_auth_only(
    nursery: trio.Nursery, microsocks: StartProxy, dante: StartProxy
) -> None:
    with trio.fail_after(TIMEOUT):
        port = await echo_server(nursery)
        # dante takes "no authentication" even when a user name is offered.
        await round_trip(
            f"ws://127.0.0.1:{port}/", proxy=f"socks5h://u:p@{await dante()}"
        )
        # microsocks with credentials takes only username/password.
        with pytest.raises(trio_ws.ProxyError, match="none of the authentication"):
            await round_trip(
                f"ws://127.0.0.1:{port}/",
                proxy=f"socks5h://{await microsocks('bob', 'pw')}",
            )


async def test_microsocks_with_credentials(
    nursery: trio.Nursery, microsocks: StartProxy
) -> None:
    with trio.fail_after(TIMEOUT):
        port = await echo_server(nursery)
        proxy = await microsocks("bob", "p@ss word")
        await round_trip(
            f"ws://localhost:{port}/", proxy=f"socks5h://bob:p%40ss%20word@{proxy}"
        )
        with pytest.raises(
            trio_ws.ProxyError, match="rejected the user name and password"
        ):
            await round_trip(
                f"ws://localhost:{port}/", proxy=f"socks5h://bob:nope@{proxy}"
            )


async def test_open_timeout_covers_a_silent_proxy(nursery: trio.Nursery) -> None:
    # A listener that accepts and never answers stands for a stuck proxy.
    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, _never_answer, 0, host="127.0.0.1")
    )
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(TIMEOUT):
        start = trio.current_time()
        with pytest.raises(TimeoutError, match="timed out while opening"):
            await round_trip(
                "ws://127.0.0.1:1/", proxy=f"http://127.0.0.1:{port}", open_timeout=0.5
            )
        assert 0.5 <= trio.current_time() - start < 5


async def _never_answer(stream: trio.SocketStream) -> None:
    await trio.sleep_forever()


async def test_howto_example(nursery: trio.Nursery, tinyproxy: StartProxy) -> None:
    """docs/howto/examples/proxy_client.py, through a real proxy."""
    from ..test_howto_examples import load

    main = load("proxy_client").main
    with trio.fail_after(TIMEOUT):
        uri = f"ws://127.0.0.1:{await echo_server(nursery)}/"
        proxy = await tinyproxy(basic_auth=("alice", "s3cret"))
        with_credentials = proxy.replace("//", "//alice:s3cret@")
        assert await main(uri, with_credentials) == "hello through the proxy"
        assert await main(uri, proxy) == (
            "the proxy said no: proxy refused the tunnel: 407 Proxy Authentication Required"
        )
