"""Client proxies: the sans-I/O conversations, the environment, and connect().

The conversations (:class:`HTTPConnect`, :class:`Socks5Connect`) are checked
byte for byte on their own. The connect() tests route ``trio.open_tcp_stream``
to memory streams whose other end a scripted proxy plays; once it opened the
tunnel, it hands its end to a real ``serve`` through :class:`Tunnels`, so that
a whole WebSocket connection runs through it under ``autojump_clock``. The
real proxy servers are in ``tests/proxy``.
"""

from __future__ import annotations

import functools
import math
import os
import ssl
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import ProxyError, ServerConnection, connect
from trio_ws._proxy import (
    HTTPConnect,
    ProxyURI,
    Socks5Connect,
    bypasses_proxy,
    parse_proxy_uri,
    proxy_from_environment,
    resolve_proxy,
)

from .conftest import Network, route_connect
from .test_server import echo, tls_contexts

OK_200 = b"HTTP/1.1 200 Connection established\r\n\r\n"
# SOCKS5 success reply bound to 0.0.0.0:0.
SOCKS_OK = b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00"


# --- Proxy URIs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://proxy:3128", ProxyURI("http", "proxy", 3128)),
        ("http://proxy", ProxyURI("http", "proxy", 80)),
        ("proxy:3128", ProxyURI("http", "proxy", 3128)),
        ("HTTPS://Proxy.Example", ProxyURI("https", "proxy.example", 443)),
        ("socks5://127.0.0.1", ProxyURI("socks5", "127.0.0.1", 1080)),
        ("socks5h://[::1]:1081/", ProxyURI("socks5h", "::1", 1081)),
        (
            "http://us%40er:p%3Ass@proxy:8080",
            ProxyURI("http", "proxy", 8080, "us@er", "p:ss"),
        ),
        ("http://user@proxy", ProxyURI("http", "proxy", 80, "user", "")),
    ],
)
def test_parse_proxy_uri(uri: str, expected: ProxyURI) -> None:
    assert parse_proxy_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("socks4://proxy", "unsupported proxy scheme 'socks4'"),
        ("ftp://proxy", "unsupported proxy scheme 'ftp'"),
        ("http://", "proxy URI has no host"),
        ("http://proxy:port", "Port could not be cast"),
        ("http://proxy:99999", "Port out of range"),
    ],
)
def test_parse_proxy_uri_invalid(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_proxy_uri(uri)


def test_proxy_uri_str_leaves_credentials_out() -> None:
    assert str(parse_proxy_uri("http://u:secret@proxy:3128")) == "http://proxy:3128"
    assert str(parse_proxy_uri("socks5h://[::1]")) == "socks5h://[::1]:1080"


# --- The environment ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("secure", "environ", "expected"),
    [
        (False, {}, None),
        (False, {"http_proxy": "http://a:1"}, "http://a:1"),
        (False, {"HTTP_PROXY": "http://a:1"}, "http://a:1"),
        (False, {"http_proxy": "http://a:1", "HTTP_PROXY": "http://b:1"}, "http://a:1"),
        (False, {"https_proxy": "http://a:1"}, None),
        (True, {"https_proxy": "http://a:1"}, "http://a:1"),
        (True, {"HTTPS_PROXY": "http://a:1"}, "http://a:1"),
        (True, {"http_proxy": "http://a:1"}, None),
        (True, {"all_proxy": "socks5://s:1"}, "socks5://s:1"),
        (False, {"ALL_PROXY": "socks5://s:1"}, "socks5://s:1"),
        (True, {"https_proxy": "http://a:1", "all_proxy": "http://b:1"}, "http://a:1"),
        # An empty variable doesn't count: the next one is used.
        (False, {"http_proxy": " ", "all_proxy": "http://b:1"}, "http://b:1"),
        # CGI: HTTP_PROXY may come from the request's Proxy header.
        (False, {"HTTP_PROXY": "http://evil:1", "REQUEST_METHOD": "GET"}, None),
        (False, {"http_proxy": "http://a:1", "REQUEST_METHOD": "GET"}, "http://a:1"),
        (False, {"http_proxy": "http://a:1", "no_proxy": "example.com"}, None),
        (False, {"http_proxy": "http://a:1", "NO_PROXY": "*"}, None),
        (False, {"http_proxy": "http://a:1", "no_proxy": "other.org"}, "http://a:1"),
        # The lower-case no_proxy wins, as for the other variables.
        (False, {"http_proxy": "x:1", "no_proxy": "a.b", "NO_PROXY": "*"}, "x:1"),
    ],
)
def test_proxy_from_environment(
    secure: bool, environ: dict[str, str], expected: str | None
) -> None:
    assert proxy_from_environment(secure, "example.com", 80, environ) == expected


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypass"),
    [
        ("", "example.com", 80, False),
        ("*", "example.com", 80, True),
        ("example.com", "example.com", 80, True),
        ("example.com", "www.example.com", 80, True),
        ("example.com", "badexample.com", 80, False),
        (".example.com", "example.com", 80, True),
        (".example.com", "a.b.example.com", 80, True),
        ("*.example.com", "www.example.com", 80, True),
        ("EXAMPLE.com.", "Example.COM.", 80, True),
        ("other.org, example.com", "example.com", 80, True),
        ("other.org example.com", "example.com", 80, True),
        ("other.org,,", "example.com", 80, False),
        ("example.com:8080", "example.com", 8080, True),
        ("example.com:8080", "example.com", 80, False),
        ("example.com:http", "example.com", 80, False),
        ("127.0.0.1", "127.0.0.1", 80, True),
        ("127.0.0.1", "127.0.0.2", 80, False),
        ("10.0.0.0/8", "10.1.2.3", 80, True),
        ("10.0.0.0/8", "11.0.0.1", 80, False),
        ("10.0.0.0/8:443", "10.1.2.3", 443, True),
        ("10.0.0.0/8:443", "10.1.2.3", 80, False),
        ("::1", "::1", 80, True),
        ("[::1]", "::1", 80, True),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "::1", 80, False),
        ("fe80::/10", "fe80::1%eth0", 80, True),
        ("10.0.0.0/8", "::1", 80, False),
        # Names are never resolved, nor compared with addresses.
        ("localhost", "127.0.0.1", 80, False),
        ("127.0.0.1", "localhost", 80, False),
        ("10.0.0.0/8", "example.com", 80, False),
    ],
)
def test_bypasses_proxy(no_proxy: str, host: str, port: int, bypass: bool) -> None:
    assert bypasses_proxy(no_proxy, host, port) is bypass


# --- HTTP CONNECT, sans-I/O ----------------------------------------------------------


def test_connect_request_bytes() -> None:
    assert HTTPConnect("example.com", 443, None, None).data_to_send() == (
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    )
    # RFC 7617: base64 of "user:pa:ss"; brackets around IPv6 (RFC 9110 7.2).
    conversation = HTTPConnect("::1", 8080, "user", "pa:ss")
    assert conversation.data_to_send() == (
        b"CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n"
        b"Proxy-Authorization: Basic dXNlcjpwYTpzcw==\r\n\r\n"
    )
    # The request goes out once.
    assert conversation.data_to_send() == b""


def test_connect_2xx_opens_the_tunnel_byte_by_byte() -> None:
    conversation = HTTPConnect("example.com", 443, None, None)
    reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 204 Tunnel\r\nVia: p\r\n\r\n"
    results = [conversation.receive_data(reply[i : i + 1]) for i in range(len(reply))]
    assert results == [False] * (len(reply) - 1) + [True]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            (
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="p"\r\nContent-Length: 0\r\n\r\n'
            ),
            "proxy refused the tunnel: 407 Proxy Authentication Required",
        ),
        (
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 5\r\n\r\nnope!",
            "proxy refused the tunnel: 502 Bad Gateway",
        ),
        (b"HTTP/1.1 403 \r\n\r\n", "proxy refused the tunnel: 403$"),
        (b"HTTP/1.1 301 Moved\r\n\r\n", "proxy refused the tunnel: 301 Moved"),
        (OK_200 + b"\x16\x03", "proxy sent data before the tunnel was used"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "invalid response from the proxy"),
        (
            b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 4000,
            "invalid response from the proxy",
        ),
    ],
)
def test_connect_failures(reply: bytes, message: str) -> None:
    conversation = HTTPConnect("example.com", 443, None, None)
    with pytest.raises(ProxyError, match=message):
        conversation.receive_data(reply)


@pytest.mark.parametrize(
    ("before_eof", "message"),
    [
        (b"", "proxy closed the connection before answering CONNECT"),
        (b"HTTP/1.1 200 OK\r\n", "proxy closed the connection before answering"),
    ],
)
def test_connect_eof(before_eof: bytes, message: str) -> None:
    conversation = HTTPConnect("example.com", 443, None, None)
    if before_eof:
        assert conversation.receive_data(before_eof) is False
    with pytest.raises(ProxyError, match=message):
        conversation.receive_data(b"")


# --- SOCKS5, sans-I/O ------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "request_bytes"),
    [
        ("example.com", b"\x05\x01\x00\x03\x0bexample.com\x01\xbb"),
        ("192.0.2.1", b"\x05\x01\x00\x01\xc0\x00\x02\x01\x01\xbb"),
        ("::1", b"\x05\x01\x00\x04" + b"\x00" * 15 + b"\x01\x01\xbb"),
    ],
)
def test_socks5_without_auth(host: str, request_bytes: bytes) -> None:
    conversation = Socks5Connect(host, 443, None, None)
    # RFC 1928 section 3: version 5, one method, "no authentication".
    assert conversation.data_to_send() == b"\x05\x01\x00"
    assert conversation.data_to_send() == b""
    assert conversation.receive_data(b"\x05\x00") is False
    assert conversation.data_to_send() == request_bytes
    assert conversation.receive_data(SOCKS_OK) is True
    assert conversation.data_to_send() == b""


def test_socks5_with_auth_byte_by_byte() -> None:
    conversation = Socks5Connect("example.com", 80, "user", "pass")
    # Both "no authentication" and username/password (RFC 1929) offered.
    assert conversation.data_to_send() == b"\x05\x02\x00\x02"
    for byte in b"\x05\x02":
        assert conversation.receive_data(bytes([byte])) is False
    assert conversation.data_to_send() == b"\x01\x04user\x04pass"
    for byte in b"\x01\x00":
        assert conversation.receive_data(bytes([byte])) is False
    assert conversation.data_to_send() == b"\x05\x01\x00\x03\x0bexample.com\x00\x50"
    # A reply bound to a domain name, then one bound to an IPv6 address.
    reply = b"\x05\x00\x00\x03\x04host\x12\x34"
    for byte in reply[:-1]:
        assert conversation.receive_data(bytes([byte])) is False
    assert conversation.receive_data(reply[-1:]) is True


def test_socks5_ipv6_reply() -> None:
    conversation = Socks5Connect("example.com", 80, None, None)
    assert conversation.receive_data(b"\x05\x00") is False
    reply = b"\x05\x00\x00\x04" + bytes(16) + b"\x00\x00"
    assert conversation.receive_data(reply[:-1]) is False
    assert conversation.receive_data(reply[-1:]) is True


def test_socks5_proxy_may_skip_auth_when_offered() -> None:
    conversation = Socks5Connect("example.com", 80, "user", "pass")
    conversation.data_to_send()
    assert conversation.receive_data(b"\x05\x00") is False
    assert conversation.data_to_send().startswith(b"\x05\x01\x00\x03")


@pytest.mark.parametrize(
    ("credentials", "replies", "message"),
    [
        (None, [b"\x04\x5a"], "proxy does not speak SOCKS5"),
        (None, [b"HTTP/1.1 400"], "proxy does not speak SOCKS5"),
        (None, [b"\x05\xff"], "accepts none of the authentication methods offered"),
        (None, [b"\x05\x02"], "chose a method that was not offered: 0x02"),
        (("u", "p"), [b"\x05\x01"], "chose a method that was not offered: 0x01"),
        (("u", "p"), [b"\x05\x02", b"\x01\x01"], "rejected the user name and password"),
        (("u", "p"), [b"\x05\x02", b"\x05\x00"], "invalid SOCKS5 authentication reply"),
        (None, [b"\x05\x00", b"\x04\x00"], "proxy does not speak SOCKS5"),
        (None, [b"\x05\x00", b"\x05\x00\x00\x02\x00"], "invalid address type .*0x02"),
        (None, [b"\x05\x00", SOCKS_OK + b"x"], "sent data before the tunnel was used"),
        (None, [b"\x05"], "closed the connection during the SOCKS5 handshake"),
        (None, [b"\x05\x00", b"\x05\x00\x00"], "closed the connection during"),
    ],
)
def test_socks5_failures(
    credentials: tuple[str, str] | None, replies: list[bytes], message: str
) -> None:
    username, password = credentials or (None, None)
    conversation = Socks5Connect("example.com", 80, username, password)
    with pytest.raises(ProxyError, match=message):
        for reply in replies:
            assert conversation.receive_data(reply) is False
        # Whatever is still expected, the proxy closed the connection.
        conversation.receive_data(b"")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (0x01, "general SOCKS server failure"),
        (0x02, "connection not allowed by ruleset"),
        (0x03, "network unreachable"),
        (0x04, "host unreachable"),
        (0x05, "connection refused"),
        (0x06, "TTL expired"),
        (0x07, "command not supported"),
        (0x08, "address type not supported"),
        (0x42, "unknown reply 0x42"),
    ],
)
def test_socks5_reply_codes(code: int, reason: str) -> None:
    conversation = Socks5Connect("example.com", 80, None, None)
    conversation.receive_data(b"\x05\x00")
    # The code is enough: the proxy may close without the rest of the reply.
    with pytest.raises(ProxyError) as exc_info:
        conversation.receive_data(bytes([5, code]))
    assert str(exc_info.value) == f"SOCKS5 proxy could not connect: {reason}"


@pytest.mark.parametrize(
    ("host", "username", "password"),
    [("a" * 256, None, None), ("h", "u" * 256, "p"), ("h", "u", "é" * 128)],
)
def test_socks5_fields_too_long(
    host: str, username: str | None, password: str | None
) -> None:
    with pytest.raises(ValueError, match="limited to 255 bytes"):
        Socks5Connect(host, 80, username, password)


# --- connect() through scripted proxies ------------------------------------------


class Tunnels(trio.abc.Listener[trio.abc.Stream]):
    """A listener for ``serve``: the far ends of the tunnels a proxy opened."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[trio.abc.Stream](math.inf)

    def hand_over(self, stream: trio.abc.Stream) -> None:
        self._send.send_nowait(stream)

    async def accept(self) -> trio.abc.Stream:
        return await self._receive.receive()

    async def aclose(self) -> None:
        self._receive.close()
        await trio.lowlevel.checkpoint()


@pytest.fixture
async def tunnels(nursery: trio.Nursery) -> Tunnels:
    """A running echo server on the far side of the tunnels."""
    tunnels = Tunnels()
    await nursery.start(functools.partial(trio_ws.serve, echo, listeners=[tunnels]))  # type: ignore[arg-type]
    return tunnels


async def receive_exactly(stream: trio.abc.Stream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await stream.receive_some(size - len(data))
        assert chunk, "unexpected EOF"
        data += chunk
    return data


async def read_head(stream: trio.abc.Stream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(1)
        assert chunk, "unexpected EOF"
        data += chunk
    return data


ProxyScript = Callable[[trio.abc.Stream], Awaitable[bytes]]


async def play(
    network: Network, tunnels: Tunnels, script: ProxyScript, seen: list[bytes]
) -> None:
    """Accept one connection, run ``script`` on it, hand it to the server."""
    stream = await network.accept()
    seen.append(await script(stream))
    tunnels.hand_over(stream)


async def http_ok(stream: trio.abc.Stream) -> bytes:
    request = await read_head(stream)
    await stream.send_all(OK_200)
    return request


async def socks5h_ok(stream: trio.abc.Stream) -> bytes:
    greeting = await receive_exactly(stream, 3)
    await stream.send_all(b"\x05\x00")
    request = await receive_exactly(stream, 4 + 1 + len("example.com") + 2)
    await stream.send_all(SOCKS_OK)
    return greeting + request


async def echo_once(uri: str, **options: object) -> trio_ws.ClientConnection:
    async with connect(uri, **options) as ws:  # type: ignore[arg-type]
        await ws.send("through the tunnel")
        assert await ws.recv() == "through the tunnel"
    return ws


async def test_http_proxy_end_to_end(
    nursery: trio.Nursery, network: Network, tunnels: Tunnels, autojump_clock: object
) -> None:
    seen: list[bytes] = []
    nursery.start_soon(play, network, tunnels, http_ok, seen)
    ws = await echo_once(
        "ws://alice:wonder@example.com:8080/chat",
        proxy="http://proxy%20user:se%3Acret@proxy.test:3128",
    )
    assert network.addresses == [("proxy.test", 3128)]
    # "proxy user:se:cret" for the proxy; alice's credentials for the server.
    assert seen == [
        (
            b"CONNECT example.com:8080 HTTP/1.1\r\nHost: example.com:8080\r\n"
            b"Proxy-Authorization: Basic cHJveHkgdXNlcjpzZTpjcmV0\r\n\r\n"
        )
    ]
    assert ws.request is not None
    assert "Proxy-Authorization" not in ws.request.headers
    assert ws.request.headers["Authorization"] == "Basic YWxpY2U6d29uZGVy"
    assert ws.request.headers["Host"] == "example.com:8080"
    assert ws.close_code == 1000
    assert trio.current_time() == 0


async def test_wss_through_http_proxy_runs_tls_inside_the_tunnel(
    nursery: trio.Nursery, network: Network, autojump_clock: object
) -> None:
    server_context, client_context = tls_contexts()
    tunnels = Tunnels()
    await nursery.start(
        functools.partial(trio_ws.serve, echo, listeners=[tunnels], ssl=server_context)  # type: ignore[arg-type]
    )
    seen: list[bytes] = []
    nursery.start_soon(play, network, tunnels, http_ok, seen)
    ws = await echo_once("wss://localhost/", proxy="proxy:3128", ssl=client_context)
    assert seen == [b"CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n"]
    assert isinstance(ws._stream, trio.SSLStream)
    assert network.addresses == [("proxy", 3128)]


async def test_https_proxy_then_tls_again_inside(
    nursery: trio.Nursery,
    network: Network,
    autojump_clock: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_context, client_context = tls_contexts()
    # The proxy's certificate is checked with the default context.
    monkeypatch.setattr(ssl, "create_default_context", lambda: client_context)
    tunnels = Tunnels()
    await nursery.start(
        functools.partial(trio_ws.serve, echo, listeners=[tunnels], ssl=server_context)  # type: ignore[arg-type]
    )
    seen: list[bytes] = []

    async def https_proxy() -> None:
        tcp = await network.accept()
        tls = trio.SSLStream(tcp, server_context, server_side=True)
        seen.append(await http_ok(tls))
        tunnels.hand_over(tls)

    nursery.start_soon(https_proxy)
    ws = await echo_once(
        "wss://127.0.0.1:8443/", proxy="https://localhost:8443", ssl=client_context
    )
    assert seen == [b"CONNECT 127.0.0.1:8443 HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n\r\n"]
    # TLS to the target inside TLS to the proxy.
    assert isinstance(ws._stream, trio.SSLStream)
    assert isinstance(ws._stream.transport_stream, trio.SSLStream)
    assert network.addresses == [("localhost", 8443)]


async def test_https_proxy_with_untrusted_certificate(
    network: Network, autojump_clock: object, nursery: trio.Nursery
) -> None:
    server_context, _ = tls_contexts()

    async def https_proxy() -> None:
        tls = trio.SSLStream(await network.accept(), server_context, server_side=True)
        with pytest.raises(trio.BrokenResourceError):
            await tls.do_handshake()

    nursery.start_soon(https_proxy)
    with pytest.raises(ssl.SSLCertVerificationError):
        async with connect("ws://example.com/", proxy="https://localhost"):
            pass  # pragma: no cover


async def test_socks5h_end_to_end(
    nursery: trio.Nursery, network: Network, tunnels: Tunnels, autojump_clock: object
) -> None:
    seen: list[bytes] = []
    nursery.start_soon(play, network, tunnels, socks5h_ok, seen)
    await echo_once("ws://example.com/", proxy="socks5h://127.0.0.1:1080")
    # The name goes to the proxy, which resolves it.
    assert seen == [b"\x05\x01\x00" + b"\x05\x01\x00\x03\x0bexample.com\x00\x50"]
    assert network.addresses == [("127.0.0.1", 1080)]


async def test_socks5_with_credentials_resolves_names_locally(
    nursery: trio.Nursery, network: Network, tunnels: Tunnels, autojump_clock: object
) -> None:
    class Resolver(trio.abc.HostnameResolver):
        async def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):  # type: ignore[no-untyped-def]  # noqa: A002
            assert (host, port) == (b"example.com", 443)
            return [(trio.socket.AF_INET, type, 6, "", ("192.0.2.7", port))]

        async def getnameinfo(self, sockaddr, flags):  # type: ignore[no-untyped-def]  # pragma: no cover
            raise NotImplementedError

    async def socks5_auth(stream: trio.abc.Stream) -> bytes:
        greeting = await receive_exactly(stream, 4)
        await stream.send_all(b"\x05\x02")
        auth = await receive_exactly(stream, 1 + 1 + 3 + 1 + 6)
        await stream.send_all(b"\x01\x00")
        request = await receive_exactly(stream, 10)
        await stream.send_all(SOCKS_OK)
        return greeting + auth + request

    seen: list[bytes] = []
    nursery.start_soon(play, network, tunnels, socks5_auth, seen)
    trio.socket.set_custom_hostname_resolver(Resolver())
    try:
        # The TLS server is skipped: wss only changes the port here.
        ws = await echo_once("ws://example.com:443/", proxy="socks5://bob:s3cret@[::1]")
    finally:
        trio.socket.set_custom_hostname_resolver(None)
    assert seen == [
        (
            b"\x05\x02\x00\x02"
            b"\x01\x03bob\x06s3cret"
            b"\x05\x01\x00\x01\xc0\x00\x02\x07\x01\xbb"
        )
    ]
    assert network.addresses == [("::1", 1080)]
    assert ws.request is not None
    assert "Authorization" not in ws.request.headers


# --- Failures through connect() ---------------------------------------------------


async def refuse_with(reply: bytes, stream: trio.abc.Stream) -> bytes:
    request = await read_head(stream)
    await stream.send_all(reply)
    # connect() closes the connection to the proxy on failure.
    assert await stream.receive_some() == b""
    return request


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
            "proxy refused the tunnel: 407 Proxy Authentication Required",
        ),
        (b"HTTP/1.1 503 Service Unavailable\r\n\r\n", "503 Service Unavailable"),
    ],
)
async def test_http_proxy_refuses(
    nursery: trio.Nursery,
    network: Network,
    tunnels: Tunnels,
    autojump_clock: object,
    reply: bytes,
    message: str,
) -> None:
    seen: list[bytes] = []
    nursery.start_soon(
        play, network, tunnels, functools.partial(refuse_with, reply), seen
    )
    with pytest.raises(ProxyError, match=message) as exc_info:
        async with connect("ws://example.com/", proxy="http://proxy"):
            pass  # pragma: no cover
    assert isinstance(exc_info.value, trio_ws.InvalidHandshake)
    await trio.testing.wait_all_tasks_blocked()
    assert seen == [b"CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\n"]


@pytest.mark.parametrize(
    ("proxy", "script", "message"),
    [
        (
            "socks5h://u:bad@proxy",
            [(b"\x05\x02\x00\x02", b"\x05\x02"), (b"\x01\x01u\x03bad", b"\x01\x01")],
            "rejected the user name and password",
        ),
        (
            "socks5h://proxy",
            [(b"\x05\x01\x00", b"\x05\xff")],
            "accepts none of the authentication methods offered",
        ),
        (
            "socks5h://proxy",
            [
                (b"\x05\x01\x00", b"\x05\x00"),
                (
                    b"\x05\x01\x00\x03\x0bexample.com\x00\x50",
                    b"\x05\x05\x00\x01" + bytes(6),
                ),
            ],
            "SOCKS5 proxy could not connect: connection refused",
        ),
    ],
)
async def test_socks5_refusals_through_connect(
    nursery: trio.Nursery,
    network: Network,
    autojump_clock: object,
    proxy: str,
    script: list[tuple[bytes, bytes]],
    message: str,
) -> None:
    async def scripted_proxy() -> None:
        stream = await network.accept()
        for expected, reply in script:
            assert await receive_exactly(stream, len(expected)) == expected
            await stream.send_all(reply)
        # connect() closes the connection to the proxy on failure.
        assert await stream.receive_some() == b""

    nursery.start_soon(scripted_proxy)
    with pytest.raises(ProxyError, match=message):
        async with connect("ws://example.com/", proxy=proxy):
            pass  # pragma: no cover


@pytest.mark.parametrize("proxy", ["http://proxy", "socks5h://proxy"])
async def test_proxy_closes_the_connection(
    nursery: trio.Nursery, network: Network, autojump_clock: object, proxy: str
) -> None:
    async def close_after_request() -> None:
        stream = await network.accept()
        await stream.receive_some()
        await stream.aclose()

    nursery.start_soon(close_after_request)
    with pytest.raises(ProxyError, match="proxy closed the connection"):
        async with connect("ws://example.com/", proxy=proxy):
            pass  # pragma: no cover


async def test_connection_to_the_proxy_lost(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: object
) -> None:
    async def send_all_hook() -> None:
        raise trio.BrokenResourceError

    async def open_tcp_stream(host: str, port: int) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        return trio.StapledStream(
            trio.testing.MemorySendStream(send_all_hook),
            trio.testing.MemoryReceiveStream(),
        )

    route_connect(monkeypatch, open_tcp_stream)
    with pytest.raises(ProxyError, match="connection to the proxy lost") as exc_info:
        async with connect("ws://example.com/", proxy="http://proxy"):
            pass  # pragma: no cover
    assert isinstance(exc_info.value.__cause__, trio.BrokenResourceError)


async def test_unreachable_proxy_raises_oserror(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def refuse(host: str, port: int) -> trio.abc.Stream:
        raise ConnectionRefusedError(111, f"refused: {host}:{port}")

    route_connect(monkeypatch, refuse)
    with pytest.raises(ConnectionRefusedError, match="refused: proxy:3128"):
        async with connect("ws://example.com/", proxy="proxy:3128"):
            pass  # pragma: no cover


@pytest.mark.parametrize("delay", [0, 4, 100])
async def test_open_timeout_covers_the_proxy(
    nursery: trio.Nursery, network: Network, autojump_clock: object, delay: float
) -> None:
    """TCP to the proxy (``delay`` seconds) and its silence share open_timeout."""
    network.delay = delay

    async def silent_proxy() -> None:
        stream = await network.accept()
        await read_head(stream)
        assert await stream.receive_some() == b""  # closed at the deadline

    nursery.start_soon(silent_proxy)
    start = trio.current_time()
    with pytest.raises(TimeoutError, match="timed out while opening the connection"):
        async with connect("ws://example.com/", proxy="http://proxy", open_timeout=10):
            pass  # pragma: no cover
    assert trio.current_time() - start == 10


async def test_open_timeout_covers_proxy_and_handshake(
    nursery: trio.Nursery, network: Network, autojump_clock: object
) -> None:
    async def slow_proxy_silent_server() -> None:
        stream = await network.accept()
        await read_head(stream)
        await trio.sleep(6)
        await stream.send_all(OK_200)
        await read_head(stream)  # the upgrade request, never answered
        assert await stream.receive_some() == b""

    nursery.start_soon(slow_proxy_silent_server)
    with pytest.raises(TimeoutError, match="timed out during the opening handshake"):
        async with connect("ws://example.com/", proxy="http://proxy", open_timeout=10):
            pass  # pragma: no cover
    assert trio.current_time() == 10


async def test_cancelled_before_connect(network: Network) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        async with connect("ws://example.com/", proxy="http://proxy"):
            pass  # pragma: no cover
    assert scope.cancelled_caught
    assert network.addresses == []


async def test_cancelled_during_the_proxy_conversation(
    nursery: trio.Nursery, network: Network, autojump_clock: object
) -> None:
    closed = trio.Event()

    async def silent_proxy() -> None:
        stream = await network.accept()
        assert await receive_exactly(stream, 3) == b"\x05\x01\x00"
        assert await stream.receive_some() == b""
        closed.set()

    nursery.start_soon(silent_proxy)
    with trio.move_on_after(3) as scope:
        async with connect("ws://example.com/", proxy="socks5h://proxy"):
            pass  # pragma: no cover
    assert scope.cancelled_caught
    await closed.wait()
    assert trio.current_time() == 3


async def test_invalid_proxy_fails_before_connecting(network: Network) -> None:
    with pytest.raises(ValueError, match="unsupported proxy scheme 'socks4'"):
        async with connect("ws://example.com/", proxy="socks4://proxy"):
            pass  # pragma: no cover
    assert network.addresses == []


# --- The environment through connect() ----------------------------------------------


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    def set_environ(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    return set_environ


def test_resolve_proxy_follows_changes_to_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What resolve_proxy read is reused only while the variables are as
    # they were: every change shows at the next call.
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
    assert resolve_proxy(True, False, "example.com", 80) is None
    monkeypatch.setenv("http_proxy", "http://a:1")
    assert resolve_proxy(True, False, "example.com", 80) == parse_proxy_uri(
        "http://a:1"
    )
    assert resolve_proxy(True, True, "example.com", 443) is None
    monkeypatch.setenv("http_proxy", "http://b:2")
    assert resolve_proxy(True, False, "example.com", 80) == parse_proxy_uri(
        "http://b:2"
    )
    monkeypatch.setenv("NO_PROXY", "example.com")
    assert resolve_proxy(True, False, "example.com", 80) is None
    assert resolve_proxy(True, False, "other.org", 80) == parse_proxy_uri("http://b:2")
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.setenv("REQUEST_METHOD", "GET")
    monkeypatch.setenv("http_proxy", "")
    monkeypatch.setenv("HTTP_PROXY", "http://evil:1")
    assert resolve_proxy(True, False, "example.com", 80) is None
    monkeypatch.delenv("REQUEST_METHOD")
    assert resolve_proxy(True, False, "example.com", 80) == parse_proxy_uri(
        "http://evil:1"
    )
    monkeypatch.delenv("http_proxy")
    monkeypatch.delenv("HTTP_PROXY")
    assert resolve_proxy(True, False, "example.com", 80) is None
    # os.environ replaced by a plain mapping, as some tests do: read as is.
    monkeypatch.setattr(os, "environ", {"http_proxy": "http://c:3"})
    assert resolve_proxy(True, False, "example.com", 80) == parse_proxy_uri(
        "http://c:3"
    )


async def test_default_takes_the_proxy_from_the_environment(
    nursery: trio.Nursery,
    network: Network,
    tunnels: Tunnels,
    autojump_clock: object,
    environ: Callable[..., None],
) -> None:
    environ(http_proxy="http://envproxy:3128", https_proxy="http://other:1")
    seen: list[bytes] = []
    nursery.start_soon(play, network, tunnels, http_ok, seen)
    await echo_once("ws://example.com/")
    assert network.addresses == [("envproxy", 3128)]
    assert seen == [b"CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\n"]


async def assert_connects_directly(
    nursery: trio.Nursery, network: Network, tunnels: Tunnels, **options: object
) -> None:
    """``connect("ws://example.com/", **options)`` goes to example.com:80, no proxy."""

    async def direct() -> None:
        tunnels.hand_over(await network.accept())

    nursery.start_soon(direct)
    await echo_once("ws://example.com/", **options)
    assert network.addresses == [("example.com", 80)]


@pytest.mark.parametrize("no_proxy", ["*", "example.com", ".com", "example.com:80"])
async def test_no_proxy_connects_directly(
    nursery: trio.Nursery,
    network: Network,
    tunnels: Tunnels,
    autojump_clock: object,
    environ: Callable[..., None],
    no_proxy: str,
) -> None:
    environ(http_proxy="http://envproxy:3128", NO_PROXY=no_proxy)
    await assert_connects_directly(nursery, network, tunnels)


async def test_proxy_none_ignores_the_environment(
    nursery: trio.Nursery,
    network: Network,
    tunnels: Tunnels,
    autojump_clock: object,
    environ: Callable[..., None],
) -> None:
    environ(http_proxy="http://envproxy:3128", all_proxy="socks5://s")
    await assert_connects_directly(nursery, network, tunnels, proxy=None)


async def test_invalid_proxy_in_the_environment(
    network: Network, environ: Callable[..., None]
) -> None:
    environ(https_proxy="ftp://envproxy")
    with pytest.raises(ValueError, match="unsupported proxy scheme 'ftp'"):
        async with connect("wss://example.com/"):
            pass  # pragma: no cover
    assert network.addresses == []


async def test_open_connection_takes_the_proxy(
    nursery: trio.Nursery, network: Network, tunnels: Tunnels, autojump_clock: object
) -> None:
    seen: list[bytes] = []
    nursery.start_soon(play, network, tunnels, socks5h_ok, seen)
    ws = await trio_ws.open_connection(
        nursery, "ws://example.com/", proxy="socks5h://p"
    )
    await ws.send("hi")
    assert await ws.recv() == "hi"
    await ws.aclose()
    assert network.addresses == [("p", 1080)]


async def test_server_sees_the_tunnel_as_a_connection(
    nursery: trio.Nursery, network: Network, autojump_clock: object
) -> None:
    """Through a tunnel, the server sends and receives as it would directly."""
    tunnels = Tunnels()

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        await ws.send(ws.request.path)

    await nursery.start(functools.partial(trio_ws.serve, handler, listeners=[tunnels]))  # type: ignore[arg-type]
    nursery.start_soon(play, network, tunnels, http_ok, [])
    async with connect("ws://example.com/a?b=c", proxy="http://p") as ws:
        assert await ws.recv() == "/a?b=c"


async def test_socks5_sends_ip_addresses_as_they_are(
    nursery: trio.Nursery, network: Network, tunnels: Tunnels, autojump_clock: object
) -> None:
    async def socks5_ip(stream: trio.abc.Stream) -> bytes:
        greeting = await receive_exactly(stream, 3)
        await stream.send_all(b"\x05\x00")
        request = await receive_exactly(stream, 10)
        await stream.send_all(SOCKS_OK)
        return greeting + request

    seen: list[bytes] = []
    nursery.start_soon(play, network, tunnels, socks5_ip, seen)
    await echo_once("ws://192.0.2.1:8080/", proxy="socks5://proxy")
    assert seen == [b"\x05\x01\x00\x05\x01\x00\x01\xc0\x00\x02\x01\x1f\x90"]


async def test_http_proxy_answer_in_pieces(
    nursery: trio.Nursery, network: Network, tunnels: Tunnels, autojump_clock: object
) -> None:
    async def trickle(stream: trio.abc.Stream) -> bytes:
        request = await read_head(stream)
        await stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")
        await trio.sleep(1)
        await stream.send_all(b"HTTP/1.1 200 OK\r\n")
        await trio.sleep(1)
        await stream.send_all(b"\r\n")
        return request

    nursery.start_soon(play, network, tunnels, trickle, [])
    await echo_once("ws://example.com/", proxy="http://proxy")
    assert trio.current_time() == 2
