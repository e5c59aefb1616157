"""The opening handshake (RFC 6455 section 4): both sides back to back, no I/O.

The client and the server each run on h11; tests feed one side's bytes to the
other, or hand-built bytes to either, and assert the bytes and objects that
come out.
"""

from __future__ import annotations

import base64
import itertools
import sys
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import trio_ws._handshake_client
from trio_ws import (
    InvalidHandshake,
    InvalidHeader,
    InvalidStatus,
    NegotiationError,
    Request,
    Response,
)
from trio_ws._extensions import DeflateParams
from trio_ws._handshake import (
    DEFAULT_SERVER,
    DEFAULT_USER_AGENT,
    HandshakeResult,
    InvalidRequest,
)
from trio_ws._handshake_client import ClientHandshake
from trio_ws._handshake_server import ServerHandshake
from trio_ws._http import Headers
from trio_ws._protocol import Protocol
from trio_ws._uri import parse_uri
from trio_ws._version import __version__

# The example of RFC 6455 section 4.2.2 (also in section 1.3).
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
DATE = "Thu, 01 Jan 2026 00:00:00 GMT"
UA = f"Python/{sys.version_info.major}.{sys.version_info.minor} trio_ws/{__version__}"

REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)

RESPONSE_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"\r\n"
)


@pytest.fixture(autouse=True)
def fixed_key_and_date(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the client's key the RFC's and the Date header constant."""
    monkeypatch.setattr(trio_ws._handshake_client, "generate_nonce", KEY.encode)
    monkeypatch.setattr("email.utils.formatdate", lambda usegmt: DATE)


def client(
    uri: str = "ws://server.example.com/chat", **kwargs: object
) -> ClientHandshake:
    return ClientHandshake(parse_uri(uri), **kwargs)  # type: ignore[arg-type]


def with_headers(request: bytes, *lines: bytes) -> bytes:
    """Add header lines at the end of a request (or response) head."""
    head, _, rest = request.partition(b"\r\n\r\n")
    return head + b"".join(b"\r\n" + line for line in lines) + b"\r\n\r\n" + rest


def without(request: bytes, name: bytes) -> bytes:
    """Remove the header ``name`` from a request (or response) head."""
    lines = request.split(b"\r\n")
    return b"\r\n".join(
        line for line in lines if not line.lower().startswith(name.lower() + b":")
    )


def split_response(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
    """Status line, header pairs and body of serialised response bytes."""
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep
    status_line, *lines = head.split(b"\r\n")
    pairs = [tuple(line.split(b": ", 1)) for line in lines]
    return status_line, pairs, body  # type: ignore[return-value]


def serve(
    data: bytes | Sequence[bytes], *, eof: bool = False, **accept: object
) -> tuple[Response, bytes, ServerHandshake]:
    """Run the server side on ``data`` as the server layer does.

    Returns the response, its bytes and the handshake.
    """
    server = ServerHandshake(
        max_request_size=accept.pop("max_request_size", 16 * 1024)  # type: ignore[arg-type]
    )
    chunks = [data] if isinstance(data, bytes) else data
    request = None
    try:
        for chunk in chunks:
            request = server.receive_data(chunk)
            if request is not None:
                break
        else:
            if eof:
                server.receive_eof()
        assert request is not None, "the request is incomplete"
        response, _ = server.accept(request, **accept)  # type: ignore[arg-type]
    except InvalidHandshake as exc:
        response = server.bad_request(exc)
    return response, server.data_for_response(response), server


def rejection(
    data: bytes | Sequence[bytes], status: int, msg: str, **kwargs: object
) -> list[tuple[bytes, bytes]]:
    """Check a plain-text error response; return its headers for more checks."""
    response, out, _ = serve(data, **kwargs)  # type: ignore[arg-type]
    body = f"Failed to open a WebSocket connection: {msg}.\n".encode()
    if status == 426:
        body += (
            b"\nYou cannot access a WebSocket server directly with a browser. "
            b"You need a WebSocket client.\n"
        )
    status_line, headers, wire_body = split_response(out)
    assert status_line.startswith(f"HTTP/1.1 {status} ".encode())
    assert response.status_code == status
    assert response.body == wire_body == body
    assert (b"Content-Type", b"text/plain; charset=utf-8") in headers
    assert (b"Content-Length", str(len(body)).encode()) in headers
    assert (b"Date", DATE.encode()) in headers
    return headers


def received(data: bytes) -> tuple[ServerHandshake, Request]:
    """A server handshake that has read the whole request ``data``, and the
    request."""
    server = ServerHandshake()
    request = server.receive_data(data)
    assert request is not None
    return server, request


def accepted(
    data: bytes, **options: object
) -> tuple[ServerHandshake, Response, HandshakeResult]:
    """Accept the request ``data`` with ``options``; return the server
    handshake, its 101 response and the result."""
    server, request = received(data)
    response, result = server.accept(request, **options)  # type: ignore[arg-type]
    assert result is not None
    return server, response, result


# --- Client request: exact bytes (RFC 6455 section 4.1) ------------------------


def test_client_request_bytes() -> None:
    handshake = client()
    assert handshake.data_to_send() == (
        b"GET /chat HTTP/1.1\r\n"
        b"Host: server.example.com\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        b"User-Agent: " + UA.encode() + b"\r\n"
        b"\r\n"
    )
    # The request goes out once.
    assert handshake.data_to_send() == b""
    assert handshake.request.path == "/chat"
    assert handshake.request.headers["Sec-WebSocket-Key"] == KEY
    assert handshake.response is None


def test_default_user_agent_and_server() -> None:
    assert DEFAULT_USER_AGENT == UA
    assert DEFAULT_SERVER == UA


def test_client_request_every_option() -> None:
    handshake = client(
        "wss://alice:s%40cret@[::1]:8443/path?q=1",
        origin="https://client.example",
        subprotocols=["chat", "superchat"],
        additional_headers=[("X-Trace", "a"), ("X-Trace", "b")],
        user_agent_header=None,
        compression=None,
    )
    assert handshake.data_to_send() == (
        b"GET /path?q=1 HTTP/1.1\r\n"
        b"Host: [::1]:8443\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Authorization: Basic " + base64.b64encode(b"alice:s@cret") + b"\r\n"
        b"Origin: https://client.example\r\n"
        b"Sec-WebSocket-Protocol: chat, superchat\r\n"
        b"X-Trace: a\r\n"
        b"X-Trace: b\r\n"
        b"\r\n"
    )


@pytest.mark.parametrize(
    ("uri", "host"),
    [
        ("ws://h/", b"h"),
        ("ws://h:80/", b"h"),
        ("ws://h:8080/", b"h:8080"),
        ("wss://h:443/", b"h"),
        ("wss://h:80/", b"h:80"),
        ("ws://[2001:db8::1]/", b"[2001:db8::1]"),
        ("ws://[2001:db8::1]:9000/", b"[2001:db8::1]:9000"),
    ],
)
def test_client_host_header(uri: str, host: bytes) -> None:
    assert b"\r\nHost: " + host + b"\r\n" in client(uri).data_to_send()


def test_client_additional_headers_mapping_and_user_agent() -> None:
    # A User-Agent among the additional headers replaces the default one.
    handshake = client(additional_headers={"user-agent": "bot/1", "X-A": "1"})
    data = handshake.data_to_send()
    assert data.endswith(b"\r\nuser-agent: bot/1\r\nX-A: 1\r\n\r\n")
    assert UA.encode() not in data
    handshake = client(user_agent_header="custom/2")
    assert b"\r\nUser-Agent: custom/2\r\n" in handshake.data_to_send()
    handshake = client(additional_headers=Headers(A="1"), user_agent_header=None)
    assert handshake.data_to_send().endswith(b"\r\nA: 1\r\n\r\n")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"compression": "gzip"}, "unsupported compression: 'gzip'"),
        ({"subprotocols": ["chat", "a b"]}, "invalid subprotocol: 'a b'"),
        ({"subprotocols": [""]}, "invalid subprotocol: ''"),
        ({"origin": "http://ü€"}, "header names must be ASCII and values Latin-1"),
        ({"additional_headers": {"Ä": "1"}}, "header names must be ASCII"),
        # h11 refuses to send a header that would split the request.
        ({"additional_headers": {"X": "a\r\nY: b"}}, "invalid request"),
        ({"additional_headers": {"X Y": "1"}}, "invalid request"),
    ],
)
def test_client_invalid_options(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        client(**kwargs)  # type: ignore[arg-type]


def test_client_random_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    keys = {client().request.headers["Sec-WebSocket-Key"] for _ in range(3)}
    assert len(keys) == 3
    for key in keys:
        # RFC 6455 4.1: a random 16-byte value, base64-encoded.
        assert len(base64.b64decode(key, validate=True)) == 16


# --- Server: the 101 response (RFC 6455 section 4.2.2) --------------------------


def test_server_accept_rfc_example() -> None:
    server = ServerHandshake()
    request = server.receive_data(REQUEST)
    assert request == Request(
        "/chat",
        Headers(
            [
                ("Host", "server.example.com"),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", KEY),
                ("Sec-WebSocket-Version", "13"),
            ]
        ),
    )
    response, result = server.accept(request)
    assert result == HandshakeResult(None, [], b"")
    assert response == Response(
        101,
        "Switching Protocols",
        Headers(
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", ACCEPT),
                ("Server", UA),
            ]
        ),
    )
    assert server.data_for_response(response) == (
        RESPONSE_101[:-2] + b"Server: " + UA.encode() + b"\r\n\r\n"
    )


def test_server_header_none_and_custom() -> None:
    _, out, _ = serve(REQUEST, server_header=None)
    assert out == RESPONSE_101
    _, out, _ = serve(REQUEST, server_header="srv/1")
    assert out == RESPONSE_101[:-2] + b"Server: srv/1\r\n\r\n"


def test_back_to_back() -> None:
    handshake = client()
    server = ServerHandshake()
    request = server.receive_data(handshake.data_to_send())
    assert request == handshake.request
    response, server_result = server.accept(request)
    assert server_result is not None
    assert handshake.receive_data(server.data_for_response(response))
    assert handshake.response == response
    client_result = handshake.result()
    assert client_result.subprotocol is None
    assert client_result.trailing_data == b""
    # permessage-deflate was offered and accepted.
    assert response.headers["Sec-WebSocket-Extensions"] == (
        "permessage-deflate; client_max_window_bits=15"
    )
    assert client_result.extensions == [DeflateParams()]
    assert server_result.extensions == [DeflateParams()]


def test_request_trailing_data() -> None:
    # A client may send frames right behind its request.
    server = ServerHandshake()
    assert server.receive_data(REQUEST[:10]) is None
    request = server.receive_data(REQUEST[10:] + b"\x81\x80")
    assert request is not None
    assert server.trailing_data == b"\x81\x80"
    assert server.receive_data(bytearray(b"abcd")) is None
    assert server.trailing_data == b"\x81\x80abcd"
    _, result = server.accept(request)
    assert result is not None
    assert result.trailing_data == b"\x81\x80abcd"
    server.receive_eof()  # nothing to say once the request is complete


def test_request_byte_by_byte() -> None:
    server = ServerHandshake()
    for i in range(len(REQUEST) - 1):
        assert server.receive_data(REQUEST[i : i + 1]) is None
    assert server.receive_data(b"") is None
    assert server.receive_data(REQUEST[-1:]) is not None


@pytest.mark.parametrize(
    "lines",
    [
        # Tokens are case-insensitive and may come in lists (RFC 9110 7.8).
        [b"Upgrade: WebSocket"],
        [b"Upgrade: h2c, websocket"],
        [b"Connection: keep-alive, upgrade"],
        [b"Connection: keep-alive", b"Connection: Upgrade"],
        [b"Connection: ,, Upgrade ,"],
    ],
)
def test_server_lenient_tokens(lines: list[bytes]) -> None:
    request = REQUEST
    for line in lines:
        name = line.split(b":")[0]
        request = without(request, name)
    response, _, _ = serve(with_headers(request, *lines))
    assert response.status_code == 101


def test_server_absolute_form_target() -> None:
    # RFC 6455 4.2.1 item 1: an absolute HTTP URI containing the resource.
    for target, path in [
        (b"http://server.example.com/chat?x=1", "/chat?x=1"),
        (b"https://server.example.com", "/"),
    ]:
        _, request = received(REQUEST.replace(b"/chat", target, 1))
        assert request.path == path


# --- Server: subprotocols -------------------------------------------------------

WITH_PROTOCOLS = with_headers(REQUEST, b"Sec-WebSocket-Protocol: chat, superchat")


@pytest.mark.parametrize(
    ("request_bytes", "subprotocols", "chosen"),
    [
        # The server's preference wins (RFC 6455 4.2.2 item 5.4 leaves it to
        # the server).
        (WITH_PROTOCOLS, ["superchat", "chat"], "superchat"),
        (WITH_PROTOCOLS, ["other", "chat"], "chat"),
        (WITH_PROTOCOLS, ["other"], None),
        (WITH_PROTOCOLS, None, None),
        (WITH_PROTOCOLS, [], None),
        (REQUEST, ["chat"], None),
        # Repeated headers are one list.
        (
            with_headers(
                REQUEST, b"Sec-WebSocket-Protocol: a", b"Sec-WebSocket-Protocol: b"
            ),
            ["b"],
            "b",
        ),
    ],
)
def test_server_subprotocol(
    request_bytes: bytes, subprotocols: list[str] | None, chosen: str | None
) -> None:
    _, response, result = accepted(request_bytes, subprotocols=subprotocols)
    assert result.subprotocol == chosen
    assert response.headers.get_all("Sec-WebSocket-Protocol") == (
        [] if chosen is None else [chosen]
    )


def test_server_select_subprotocol() -> None:
    offers: list[Sequence[str]] = []

    def select(offered: Sequence[str]) -> str | None:
        offers.append(offered)
        return offered[-1] if offered else None

    response, _, _ = serve(WITH_PROTOCOLS, select_subprotocol=select)
    assert response.headers["Sec-WebSocket-Protocol"] == "superchat"
    # Given the offer in the client's order; ``subprotocols`` is ignored.
    response, _, _ = serve(REQUEST, subprotocols=["chat"], select_subprotocol=select)
    assert "Sec-WebSocket-Protocol" not in response.headers
    assert offers == [["chat", "superchat"], []]


def test_server_select_subprotocol_not_offered() -> None:
    server, request = received(WITH_PROTOCOLS)
    with pytest.raises(
        ValueError, match="select_subprotocol returned 'x', which wasn't offered"
    ):
        server.accept(request, select_subprotocol=lambda offered: "x")


def test_server_select_subprotocol_raises() -> None:
    def select(offered: Sequence[str]) -> str | None:
        raise KeyError("boom")

    server, request = received(WITH_PROTOCOLS)
    with pytest.raises(KeyError, match="boom"):
        server.accept(request, select_subprotocol=select)


def test_server_invalid_subprotocol_header() -> None:
    data = with_headers(REQUEST, b"Sec-WebSocket-Protocol: chat, a/b")
    rejection(
        data,
        400,
        "invalid Sec-WebSocket-Protocol header: chat, a/b",
        subprotocols=["chat"],
    )
    # Not looked at when the server has no subprotocols.
    assert serve(data)[0].status_code == 101


# --- Server: origins (RFC 6455 10.2) --------------------------------------------


@pytest.mark.parametrize(
    ("lines", "origins", "status", "msg"),
    [
        ([b"Origin: https://a.example"], ["https://a.example"], 101, ""),
        ([], ["https://a.example", None], 101, ""),
        ([b"Origin: https://evil.example"], None, 101, ""),
        (
            [b"Origin: https://evil.example"],
            ["https://a.example"],
            403,
            "invalid Origin header: https://evil.example",
        ),
        ([], ["https://a.example"], 403, "missing Origin header"),
        ([b"Origin: "], ["https://a.example"], 403, "empty Origin header"),
        # Origin is compared exactly: no case folding, no default ports.
        (
            [b"Origin: HTTPS://A.EXAMPLE"],
            ["https://a.example"],
            403,
            "invalid Origin header: HTTPS://A.EXAMPLE",
        ),
        # RFC 6454 7.3: at most one Origin header.
        (
            [b"Origin: https://a.example", b"Origin: https://a.example"],
            ["https://a.example"],
            400,
            "invalid Origin header: https://a.example, https://a.example",
        ),
        # Bytes that aren't UTF-8 read as Latin-1.
        (
            [b"Origin: https://\xe9.example"],
            ["https://a.example"],
            403,
            "invalid Origin header: https://\xe9.example",
        ),
    ],
)
def test_server_origins(
    lines: list[bytes], origins: list[str | None] | None, status: int, msg: str
) -> None:
    data = with_headers(REQUEST, *lines)
    if status == 101:
        assert serve(data, origins=origins)[0].status_code == 101
    else:
        rejection(data, status, msg, origins=origins)


# --- Server: requests that can't be upgraded ------------------------------------


@pytest.mark.parametrize(
    ("data", "status", "msg"),
    [
        (without(REQUEST, b"Upgrade"), 426, "missing Upgrade header"),
        (
            with_headers(without(REQUEST, b"Upgrade"), b"Upgrade: h2c"),
            426,
            "invalid Upgrade header: h2c",
        ),
        (
            with_headers(without(REQUEST, b"Upgrade"), b"Upgrade: websocket2"),
            426,
            "invalid Upgrade header: websocket2",
        ),
        (without(REQUEST, b"Connection"), 400, "missing Connection header"),
        (
            with_headers(without(REQUEST, b"Connection"), b"Connection: keep-alive"),
            400,
            "invalid Connection header: keep-alive",
        ),
        (
            without(REQUEST, b"Sec-WebSocket-Version"),
            426,
            "missing Sec-WebSocket-Version header",
        ),
        (
            REQUEST.replace(b"Version: 13", b"Version: 8"),
            426,
            "invalid Sec-WebSocket-Version header: 8",
        ),
        (
            with_headers(REQUEST, b"Sec-WebSocket-Version: 13"),
            426,
            "invalid Sec-WebSocket-Version header: 13, 13",
        ),
        (
            without(REQUEST, b"Sec-WebSocket-Key"),
            400,
            "missing Sec-WebSocket-Key header",
        ),
        (
            REQUEST.replace(KEY.encode(), b""),
            400,
            "empty Sec-WebSocket-Key header",
        ),
        (
            REQUEST.replace(KEY.encode(), b"not base64!"),
            400,
            "invalid Sec-WebSocket-Key header: not base64!",
        ),
        (
            # Valid base64, but 15 bytes.
            REQUEST.replace(KEY.encode(), base64.b64encode(b"x" * 15)),
            400,
            "invalid Sec-WebSocket-Key header: eHh4eHh4eHh4eHh4eHh4",
        ),
        (
            REQUEST.replace(KEY.encode(), b"\xe9" * 24),
            400,
            "invalid Sec-WebSocket-Key header: " + "\xe9" * 24,
        ),
        (
            with_headers(REQUEST, b"Sec-WebSocket-Key: " + KEY.encode()),
            400,
            f"invalid Sec-WebSocket-Key header: {KEY}, {KEY}",
        ),
        (
            REQUEST.replace(b"GET", b"POST"),
            405,
            "unsupported HTTP method: POST",
        ),
        (
            REQUEST.replace(b"GET", b"CONNECT").replace(b"/chat", b"h:80"),
            405,
            "unsupported HTTP method: CONNECT",
        ),
        (
            REQUEST.replace(b"HTTP/1.1", b"HTTP/1.0"),
            400,
            "WebSocket requires HTTP/1.1",
        ),
        (
            REQUEST.replace(b"HTTP/1.1", b"HTTP/2.0"),
            400,
            "unsupported HTTP version: 2.0",
        ),
        (
            with_headers(REQUEST, b"Content-Length: 3") + b"abc",
            400,
            "unsupported request body",
        ),
        (
            with_headers(REQUEST, b"Transfer-Encoding: chunked") + b"0\r\n\r\n",
            400,
            "unsupported request body",
        ),
        (REQUEST.replace(b"/chat", b"*"), 400, "invalid request target"),
        (REQUEST.replace(b"/chat", b"chat"), 400, "invalid request target"),
        (REQUEST.replace(b"/chat", b"ftp://h/chat"), 400, "invalid request target"),
        (REQUEST.replace(b"/chat", b"http://[::1/"), 400, "invalid request target"),
        (REQUEST.replace(b"/chat", b"http:/chat"), 400, "invalid request target"),
        # h11 refuses these outright.
        (without(REQUEST, b"Host"), 400, "did not receive a valid HTTP request"),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            400,
            "did not receive a valid HTTP request",
        ),
        (b"GET /\xff HTTP/1.1\r\n\r\n", 400, "did not receive a valid HTTP request"),
        (
            with_headers(REQUEST, b"Bad\xffName: 1"),
            400,
            "did not receive a valid HTTP request",
        ),
        (
            with_headers(REQUEST, b"X: a\x00b"),
            400,
            "did not receive a valid HTTP request",
        ),
        (
            REQUEST.replace(b"\r\n", b"\n\r"),
            400,
            "did not receive a valid HTTP request",
        ),
    ],
)
def test_server_rejects(data: bytes, status: int, msg: str) -> None:
    headers = rejection(data, status, msg)
    # The server closes the connection after any response but a 101.
    assert (b"Connection", b"Upgrade, close" if status == 426 else b"close") in headers
    assert (b"Server", UA.encode()) in headers


def test_server_rejects_426_headers() -> None:
    # RFC 6455 4.2.2: a server that doesn't speak the client's version says
    # which versions it speaks.
    headers = rejection(
        REQUEST.replace(b"Version: 13", b"Version: 7, 8"),
        426,
        "invalid Sec-WebSocket-Version header: 7, 8",
    )
    assert (b"Upgrade", b"websocket") in headers
    assert (b"Sec-WebSocket-Version", b"13") in headers


def test_server_rejects_405_allow() -> None:
    headers = rejection(
        REQUEST.replace(b"GET", b"PUT"), 405, "unsupported HTTP method: PUT"
    )
    assert (b"Allow", b"GET") in headers


def test_server_rejection_without_server_header() -> None:
    server = ServerHandshake()
    with pytest.raises(InvalidRequest) as exc_info:
        server.receive_data(REQUEST.replace(b"GET", b"POST"))
    exc = exc_info.value
    assert (exc.status_code, str(exc)) == (405, "unsupported HTTP method: POST")
    response = server.bad_request(exc, server_header=None)
    assert "Server" not in response.headers
    _, headers, _ = split_response(server.data_for_response(response))
    assert [name for name, _ in headers] == [
        b"Date",
        b"Connection",
        b"Content-Type",
        b"Content-Length",
        b"Allow",
    ]


def test_server_rejects_in_accept_without_server_header() -> None:
    server, request = received(without(REQUEST, b"Connection"))
    response, result = server.accept(request, server_header=None)
    assert result is None
    assert response.status_code == 400
    assert "Server" not in response.headers


def test_server_quotes_are_short() -> None:
    # Whatever the client sends, the error body stays short.
    origin = b"https://" + b"x" * 10_000
    response, _, _ = serve(
        with_headers(REQUEST, b"Origin: " + origin), origins=["https://a.example"]
    )
    assert response.status_code == 403
    assert response.body == (
        b"Failed to open a WebSocket connection: invalid Origin header: "
        + origin[: 200 - len("invalid Origin header: ")]
        + b"....\n"
    )
    response, _, _ = serve(REQUEST.replace(b"GET", b"X" * 10_000))
    assert response.status_code == 405
    assert len(response.body) < 300


def test_server_quotes_are_short_in_bytes() -> None:
    # A quoted value past ASCII takes two bytes a character in the body:
    # the quote is cut at 200 bytes, on a character boundary.
    origin = b"https://" + b"\xe9" * 300
    response, _, _ = serve(
        with_headers(REQUEST, b"Origin: " + origin), origins=["https://a.example"]
    )
    assert response.status_code == 403
    quoted = ("invalid Origin header: https://" + "\xe9" * 300).encode()
    assert response.body == (
        b"Failed to open a WebSocket connection: "
        + quoted[:199]  # 200 would cut an \xe9 in two
        + b"....\n"
    )


# --- Server: size limits and EOF ------------------------------------------------


def test_server_head_too_large_in_one_read() -> None:
    # h11 only bounds incomplete heads; a complete one is measured too.
    data = with_headers(REQUEST, b"X-Big: " + b"x" * 20_000)
    rejection(data, 431, "request head exceeds 16384 bytes")


def test_server_head_too_large_trickled() -> None:
    data = with_headers(REQUEST, b"X-Big: " + b"x" * 20_000)
    chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    rejection(chunks, 431, "request head exceeds 16384 bytes")


def test_server_request_line_too_long() -> None:
    # A request line that never ends: the server stops buffering it.
    server = ServerHandshake(max_request_size=1000)
    assert server.receive_data(b"GET /" + b"a" * 995) is None
    with pytest.raises(InvalidRequest) as exc_info:
        server.receive_data(b"a" * 1000)
    assert exc_info.value.status_code == 431
    assert str(exc_info.value) == "request head exceeds 1000 bytes"


def test_server_many_headers() -> None:
    lines = [b"X-%d: y" % i for i in range(5000)]
    rejection(with_headers(REQUEST, *lines), 431, "request head exceeds 16384 bytes")
    # Within the limit, many headers are fine.
    lines = [b"X: y"] * 100
    response, _, _ = serve(with_headers(REQUEST, *lines))
    assert response.status_code == 101


def test_server_head_exactly_at_limit() -> None:
    response, _, _ = serve(REQUEST, max_request_size=len(REQUEST))
    assert response.status_code == 101
    rejection(
        REQUEST,
        431,
        f"request head exceeds {len(REQUEST) - 1} bytes",
        max_request_size=len(REQUEST) - 1,
    )


def test_server_eof_before_request() -> None:
    server = ServerHandshake()
    with pytest.raises(
        InvalidHandshake, match=r"^connection closed before any request$"
    ):
        server.receive_eof()


def test_server_eof_during_request() -> None:
    server = ServerHandshake()
    assert server.receive_data(REQUEST[:-2]) is None
    with pytest.raises(InvalidHandshake) as exc_info:
        server.receive_eof()
    exc = exc_info.value
    assert not isinstance(exc, InvalidRequest)
    assert str(exc) == "connection closed during handshake"
    # It still gets a 400, should the client read it.
    rejection([REQUEST[:-2]], 400, "did not receive a valid HTTP request", eof=True)


# --- Server: serialising responses ----------------------------------------------


def server_after(request: bytes) -> ServerHandshake:
    server = ServerHandshake()
    server.receive_data(request)
    return server


def test_data_for_response_user_response() -> None:
    # What process_request returns gets Content-Length and Connection: close.
    server = server_after(REQUEST)
    response = Response(200, "OK", Headers([("X", "1")]), b"healthy\n")
    assert server.data_for_response(response) == (
        b"HTTP/1.1 200 OK\r\nX: 1\r\nContent-Length: 8\r\nConnection: close\r\n\r\n"
        b"healthy\n"
    )


def test_data_for_response_keeps_user_framing() -> None:
    server = server_after(REQUEST)
    headers = Headers([("Content-Length", "0"), ("Connection", "keep-alive")])
    assert server.data_for_response(Response(401, "Unauthorized", headers)) == (
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n"
        b"Connection: keep-alive\r\n\r\n"
    )
    server = server_after(REQUEST)
    assert server.data_for_response(Response(204, "No Content", Headers())) == (
        b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
    )


def test_data_for_response_informational() -> None:
    server = server_after(with_headers(REQUEST, b"Expect: 100-continue"))
    assert server.data_for_response(Response(100, "Continue", Headers())) == (
        b"HTTP/1.1 100 Continue\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (Response(101, "Switching Protocols", Headers()), "invalid response"),
        (Response(200, "OK", Headers(X="a\nb")), "invalid response"),
        (Response(200, "OK", Headers(X="€")), "values Latin-1"),
    ],
)
def test_data_for_response_invalid(response: Response, match: str) -> None:
    # 101 to a request that didn't ask to upgrade, a header h11 refuses...
    server = server_after(without(REQUEST, b"Upgrade"))
    with pytest.raises(ValueError, match=match):
        server.data_for_response(response)


# --- Client: reading the response -----------------------------------------------


def response_101(*lines: bytes) -> bytes:
    return with_headers(RESPONSE_101, *lines)


def test_client_accepts_rfc_example() -> None:
    handshake = client(compression=None)
    assert handshake.receive_data(RESPONSE_101)
    assert handshake.response == Response(
        101,
        "Switching Protocols",
        Headers(
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", ACCEPT),
            ]
        ),
    )
    assert handshake.result() == HandshakeResult(None, [], b"")


def test_client_trailing_data() -> None:
    # Frames the server sends right behind the 101 belong to the connection.
    handshake = client()
    assert not handshake.receive_data(RESPONSE_101[:20])
    assert handshake.receive_data(bytearray(RESPONSE_101[20:] + b"\x81\x02hi"))
    assert handshake.receive_data(b"\x89\x00")
    assert handshake.result().trailing_data == b"\x81\x02hi\x89\x00"


def test_client_byte_by_byte() -> None:
    handshake = client()
    for i in range(len(RESPONSE_101) - 1):
        assert not handshake.receive_data(RESPONSE_101[i : i + 1])
    with pytest.raises(RuntimeError, match="the handshake response isn't complete"):
        handshake.result()
    assert not handshake.receive_data(b"")
    assert handshake.receive_data(RESPONSE_101[-1:])
    assert handshake.result().trailing_data == b""


def test_client_skips_100_continue() -> None:
    handshake = client()
    assert handshake.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n" + RESPONSE_101)
    assert handshake.result().extensions == []


@pytest.mark.parametrize(
    ("data", "body"),
    [
        (
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\nX: y\r\n\r\nnope.\n",
            b"nope.\n",
        ),
        (
            (
                b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            ),
            b"abcde",
        ),
        (b"HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n", b""),
    ],
)
def test_client_invalid_status(data: bytes, body: bytes) -> None:
    handshake = client()
    assert handshake.receive_data(data)
    # Data after a refusal is no WebSocket data.
    assert handshake.receive_data(b"more")
    with pytest.raises(InvalidStatus) as exc_info:
        handshake.result()
    exc = exc_info.value
    assert exc.response is handshake.response
    assert exc.response.body == body
    status = int(data[9:12])
    assert exc.response.status_code == status
    assert str(exc) == f"server rejected WebSocket connection: HTTP {status}"


def test_client_invalid_status_headers_and_reason() -> None:
    handshake = client()
    handshake.receive_data(
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\n"
        b"Content-Length: 2\r\nX: \xe9\r\n\r\nno"
    )
    response = handshake.response
    assert response is not None
    assert response.reason_phrase == "Unauthorized"
    assert response.headers["www-authenticate"] == "Basic"
    assert response.headers["X"] == "\xe9"


def test_client_body_until_eof() -> None:
    handshake = client()
    assert not handshake.receive_data(
        b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nbusy"
    )
    handshake.receive_eof()
    assert handshake.receive_data(b"")
    handshake.receive_eof()  # again: nothing happens
    with pytest.raises(InvalidStatus) as exc_info:
        handshake.result()
    assert exc_info.value.response.body == b"busy"


def test_client_body_cut_by_eof() -> None:
    # The status matters more than the missing end of the body.
    handshake = client()
    assert not handshake.receive_data(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 10\r\n\r\nabc"
    )
    handshake.receive_eof()
    with pytest.raises(InvalidStatus) as exc_info:
        handshake.result()
    assert exc_info.value.response.body == b"abc"


def test_client_body_cut_at_max_size() -> None:
    handshake = client(max_response_size=1000)
    head = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 100000\r\n\r\n"
    assert not handshake.receive_data(head + b"a" * 600)
    assert handshake.receive_data(b"b" * 600)
    with pytest.raises(InvalidStatus) as exc_info:
        handshake.result()
    assert exc_info.value.response.body == b"a" * 600 + b"b" * 400


@pytest.mark.parametrize(
    "data",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 abc Nope\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nBad Header\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    ],
)
def test_client_invalid_http(data: bytes) -> None:
    handshake = client()
    with pytest.raises(InvalidHandshake) as exc_info:
        handshake.receive_data(data)
    assert type(exc_info.value) is InvalidHandshake
    assert str(exc_info.value) == "did not receive a valid HTTP response"


def test_client_head_too_large() -> None:
    big = response_101(b"X: " + b"x" * 2000)
    # In one read: measured once parsed.
    handshake = client(max_response_size=1000)
    with pytest.raises(InvalidHandshake, match=r"^response head exceeds 1000 bytes$"):
        handshake.receive_data(big)
    # Trickled: h11 stops buffering.
    handshake = client(max_response_size=1000)
    with pytest.raises(InvalidHandshake, match=r"^response head exceeds 1000 bytes$"):
        for i in range(0, len(big), 100):
            handshake.receive_data(big[i : i + 100])
    # A 1xx response counts too.
    handshake = client(max_response_size=1000)
    with pytest.raises(InvalidHandshake, match=r"^response head exceeds 1000 bytes$"):
        handshake.receive_data(
            b"HTTP/1.1 100 Continue\r\nX: " + b"x" * 2000 + b"\r\n\r\n"
        )
    # Each head is measured on its own.
    handshake = client(max_response_size=len(RESPONSE_101))
    assert handshake.receive_data(
        b"HTTP/1.1 100 Continue\r\n\r\n" + RESPONSE_101 + b"x" * 1000
    )


@pytest.mark.parametrize("data", [b"", b"HTTP/1.1 101 Switching"])
def test_client_eof_before_head(data: bytes) -> None:
    handshake = client()
    handshake.receive_data(data)
    with pytest.raises(InvalidHandshake) as exc_info:
        handshake.receive_eof()
    assert str(exc_info.value) == "connection closed during handshake"
    assert isinstance(exc_info.value.__cause__, InvalidHandshake)


@pytest.mark.parametrize(
    ("data", "name", "value", "msg"),
    [
        (
            without(RESPONSE_101, b"Upgrade"),
            "Upgrade",
            None,
            "missing Upgrade header",
        ),
        (
            RESPONSE_101.replace(b"Upgrade: websocket", b"Upgrade: h2c"),
            "Upgrade",
            "h2c",
            "invalid Upgrade header: h2c",
        ),
        (
            RESPONSE_101.replace(b"Upgrade: websocket", b"Upgrade: websocket, h2c"),
            "Upgrade",
            "websocket, h2c",
            "invalid Upgrade header: websocket, h2c",
        ),
        (
            without(RESPONSE_101, b"Connection"),
            "Connection",
            None,
            "missing Connection header",
        ),
        (
            RESPONSE_101.replace(b"Connection: Upgrade", b"Connection: close"),
            "Connection",
            "close",
            "invalid Connection header: close",
        ),
        (
            without(RESPONSE_101, b"Sec-WebSocket-Accept"),
            "Sec-WebSocket-Accept",
            None,
            "missing Sec-WebSocket-Accept header",
        ),
        (
            RESPONSE_101.replace(ACCEPT.encode(), b"x" + ACCEPT[1:].encode()),
            "Sec-WebSocket-Accept",
            "x" + ACCEPT[1:],
            "invalid Sec-WebSocket-Accept header: x" + ACCEPT[1:],
        ),
        (
            response_101(b"Sec-WebSocket-Accept: " + ACCEPT.encode()),
            "Sec-WebSocket-Accept",
            f"{ACCEPT}, {ACCEPT}",
            f"invalid Sec-WebSocket-Accept header: {ACCEPT}, {ACCEPT}",
        ),
        (
            response_101(b"Sec-WebSocket-Protocol: "),
            "Sec-WebSocket-Protocol",
            "",
            "empty Sec-WebSocket-Protocol header",
        ),
        (
            response_101(b"Sec-WebSocket-Protocol: chat, superchat"),
            "Sec-WebSocket-Protocol",
            "chat, superchat",
            "invalid Sec-WebSocket-Protocol header: chat, superchat",
        ),
        (
            response_101(b"Sec-WebSocket-Extensions: permessage-deflate;"),
            "Sec-WebSocket-Extensions",
            "permessage-deflate;",
            "invalid Sec-WebSocket-Extensions header: permessage-deflate;",
        ),
    ],
)
def test_client_invalid_header(
    data: bytes, name: str, value: str | None, msg: str
) -> None:
    handshake = client(subprotocols=["chat", "superchat"])
    assert handshake.receive_data(data)
    with pytest.raises(InvalidHeader) as exc_info:
        handshake.result()
    exc = exc_info.value
    assert (exc.name, exc.value, str(exc)) == (name, value, msg)


def test_client_lenient_tokens() -> None:
    data = RESPONSE_101.replace(b"Upgrade: websocket", b"Upgrade: WebSocket")
    data = data.replace(b"Connection: Upgrade", b"Connection: keep-alive, upgrade")
    handshake = client()
    assert handshake.receive_data(data)
    assert handshake.result().subprotocol is None


@pytest.mark.parametrize(
    ("subprotocols", "line", "chosen"),
    [
        (["chat", "superchat"], b"Sec-WebSocket-Protocol: superchat", "superchat"),
        (["chat"], None, None),
    ],
)
def test_client_subprotocol(
    subprotocols: list[str], line: bytes | None, chosen: str | None
) -> None:
    handshake = client(subprotocols=subprotocols)
    assert handshake.receive_data(response_101(line) if line else RESPONSE_101)
    assert handshake.result().subprotocol == chosen


@pytest.mark.parametrize("subprotocols", [None, ["chat"]])
def test_client_unexpected_subprotocol(subprotocols: list[str] | None) -> None:
    handshake = client(subprotocols=subprotocols)
    handshake.receive_data(response_101(b"Sec-WebSocket-Protocol: superchat"))
    with pytest.raises(NegotiationError, match=r"^unexpected subprotocol: superchat$"):
        handshake.result()


def test_subprotocol_back_to_back() -> None:
    handshake = client(subprotocols=["v2.chat", "v1.chat"])
    server, response, result = accepted(
        handshake.data_to_send(), subprotocols=["v1.chat"]
    )
    assert result.subprotocol == "v1.chat"
    handshake.receive_data(server.data_for_response(response))
    assert handshake.result().subprotocol == "v1.chat"


# --- permessage-deflate negotiation (RFC 7692 section 7.1) ----------------------

PMD = "permessage-deflate"


def offering(offer: str) -> bytes:
    """The RFC's request with ``offer`` as its Sec-WebSocket-Extensions."""
    return with_headers(REQUEST, b"Sec-WebSocket-Extensions: " + offer.encode())


def client_after(answer: str, **options: object) -> ClientHandshake:
    """A client handshake that has read a 101 with ``answer`` as its
    Sec-WebSocket-Extensions."""
    handshake = client(**options)
    handshake.receive_data(response_101(f"Sec-WebSocket-Extensions: {answer}".encode()))
    return handshake


# Agreed parameters: server_no_context_takeover, client_no_context_takeover,
# server_max_window_bits, client_max_window_bits (DeflateParams' order).
@pytest.mark.parametrize(
    ("offer", "answer", "params"),
    [
        (PMD, PMD, (False, False, 15, 15)),
        (
            f"{PMD}; client_max_window_bits",
            f"{PMD}; client_max_window_bits=15",
            (False, False, 15, 15),
        ),
        (
            f"{PMD}; server_no_context_takeover",
            f"{PMD}; server_no_context_takeover",
            (True, False, 15, 15),
        ),
        (
            f"{PMD}; client_no_context_takeover",
            f"{PMD}; client_no_context_takeover",
            (False, True, 15, 15),
        ),
        (
            f"{PMD}; server_max_window_bits=10",
            f"{PMD}; server_max_window_bits=10",
            (False, False, 10, 15),
        ),
        (
            f"{PMD}; client_max_window_bits=9",
            f"{PMD}; client_max_window_bits=9",
            (False, False, 15, 9),
        ),
        (
            f'{PMD};server_max_window_bits="12" ; client_no_context_takeover',
            f"{PMD}; client_no_context_takeover; server_max_window_bits=12",
            (False, True, 12, 15),
        ),
        (
            (
                f"{PMD}; server_no_context_takeover; client_no_context_takeover; "
                "server_max_window_bits=9; client_max_window_bits=11"
            ),
            (
                f"{PMD}; client_no_context_takeover; server_no_context_takeover; "
                "client_max_window_bits=11; server_max_window_bits=9"
            ),
            (True, True, 9, 11),
        ),
        # Unknown extensions are skipped; the first acceptable offer wins.
        (f"x-webkit-deflate-frame, {PMD}", PMD, (False, False, 15, 15)),
        # RFC 7692 allows 8-bit windows; trio_ws's deflate provides them.
        (
            f"{PMD}; server_max_window_bits=8; client_max_window_bits=8",
            f"{PMD}; client_max_window_bits=8; server_max_window_bits=8",
            (False, False, 8, 8),
        ),
        (
            f"{PMD}; server_max_window_bits=7, {PMD}; client_no_context_takeover",
            f"{PMD}; client_no_context_takeover",
            (False, True, 15, 15),
        ),
        (f"{PMD}; unknown, {PMD}", PMD, (False, False, 15, 15)),
        # Empty list elements are ignored (RFC 9110 5.6.1).
        (f", ,{PMD} ,", PMD, (False, False, 15, 15)),
    ],
)
def test_server_accepts_deflate(
    offer: str, answer: str, params: tuple[bool, bool, int, int]
) -> None:
    _, response, result = accepted(offering(offer))
    assert response.headers["Sec-WebSocket-Extensions"] == answer
    [extension] = result.extensions
    assert extension == DeflateParams(*params)
    # The client reads the answer into the same parameters.
    [extension] = client_after(answer).result().extensions
    assert extension == DeflateParams(*params)


@pytest.mark.parametrize(
    "offer",
    [
        "x-webkit-deflate-frame",
        f"{PMD}; server_max_window_bits",
        f"{PMD}; server_max_window_bits=16",
        f"{PMD}; server_max_window_bits=7",
        f"{PMD}; server_max_window_bits=010",
        f"{PMD}; server_no_context_takeover=1",
        f"{PMD}; server_no_context_takeover; server_no_context_takeover",
        f"{PMD}; mystery=1",
    ],
)
def test_server_declines_deflate(offer: str) -> None:
    # RFC 7692 7.1: an offer the server can't accept is declined, not fatal.
    _, response, result = accepted(offering(offer))
    assert result.extensions == []
    assert "Sec-WebSocket-Extensions" not in response.headers


@pytest.mark.parametrize(
    "offer",
    [
        f"{PMD}",
        f"{PMD}; client_no_context_takeover; server_no_context_takeover",
        f"{PMD}; server_max_window_bits=8; client_max_window_bits=8",
        f"{PMD}; server_max_window_bits=9; client_max_window_bits",
    ],
)
def test_deflate_round_trip(offer: str) -> None:
    # What both sides agreed to compresses and inflates, both ways.
    handshake = client()
    data = handshake.data_to_send()
    server, response, server_result = accepted(
        data.replace(b"permessage-deflate; client_max_window_bits", offer.encode())
    )
    handshake.receive_data(server.data_for_response(response))
    client_result = handshake.result()
    assert client_result.extensions == server_result.extensions
    client_side = Protocol(client=True, extensions=client_result.extensions)
    server_side = Protocol(client=False, extensions=server_result.extensions)
    message = "compress me " * 500
    for _ in range(2):
        client_side.send_message(message)
        wire = bytes(client_side.data_to_send())
        assert wire[0] == 0xC1  # FIN, RSV1 (compressed), text
        assert len(wire) < len(message) // 2
        server_side.receive_data(wire)
        assert server_side.take_messages() == [message]
        server_side.send_message(message.encode())
        client_side.receive_data(bytes(server_side.data_to_send()))
        assert client_side.take_messages() == [message.encode()]


def test_server_compression_none() -> None:
    server, request = received(offering(PMD))
    response, result = server.accept(request, compression=None)
    assert result is not None
    assert result.extensions == []
    assert "Sec-WebSocket-Extensions" not in response.headers
    with pytest.raises(ValueError, match="unsupported compression: 'br'"):
        server.accept(request, compression="br")


@pytest.mark.parametrize(
    "value",
    [
        f"{PMD};",
        f"{PMD};;",
        f"{PMD}; =1",
        f"{PMD} x",
        f"{PMD}; a=",
        f'{PMD}; a="b',
        f'{PMD}; a="b c"',
        f'{PMD}; server_max_window_bits="1 0"',
        f'{PMD}; a=""',
        "a/b",
    ],
)
def test_server_malformed_extensions(value: str) -> None:
    data = offering(value)
    rejection(data, 400, f"invalid Sec-WebSocket-Extensions header: {value}")
    # Not looked at without compression.
    assert serve(data, compression=None)[0].status_code == 101


def test_server_extensions_split_over_headers() -> None:
    data = with_headers(
        REQUEST,
        b"Sec-WebSocket-Extensions: x-foo; a=1",
        b"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover",
    )
    response, _, _ = serve(data)
    assert response.headers["Sec-WebSocket-Extensions"] == (
        f"{PMD}; client_no_context_takeover"
    )


@pytest.mark.parametrize(
    ("answer", "msg"),
    [
        ("x-foo", "unexpected extension: x-foo"),
        (f"{PMD}, {PMD}", f"{PMD} accepted twice"),
        (
            f"{PMD}; client_max_window_bits",
            f"invalid {PMD} response: client_max_window_bits needs a value",
        ),
        (
            f"{PMD}; server_max_window_bits",
            f"invalid {PMD} response: server_max_window_bits needs a value",
        ),
        (
            f"{PMD}; client_max_window_bits=08",
            f"invalid {PMD} response: invalid value for client_max_window_bits: 08",
        ),
        (
            f"{PMD}; server_max_window_bits=16",
            f"invalid {PMD} response: invalid value for server_max_window_bits: 16",
        ),
        (
            f"{PMD}; client_no_context_takeover=yes",
            f"invalid {PMD} response: client_no_context_takeover takes no value",
        ),
        (
            f"{PMD}; server_no_context_takeover; server_no_context_takeover",
            f"invalid {PMD} response: duplicate parameter server_no_context_takeover",
        ),
        (f"{PMD}; x=1", f"invalid {PMD} response: unknown parameter x"),
    ],
)
def test_client_rejects_deflate_answer(answer: str, msg: str) -> None:
    handshake = client_after(answer)
    with pytest.raises(NegotiationError) as exc_info:
        handshake.result()
    assert str(exc_info.value) == msg


def test_client_unrequested_deflate() -> None:
    handshake = client_after(PMD, compression=None)
    with pytest.raises(NegotiationError, match=f"^unexpected extension: {PMD}$"):
        handshake.result()


def test_client_empty_extensions_header() -> None:
    handshake = client(compression=None)
    handshake.receive_data(response_101(b"Sec-WebSocket-Extensions: "))
    assert handshake.result().extensions == []


# --- No input makes the server raise --------------------------------------------


def check_server_survives(chunks: list[bytes], eof: bool) -> None:
    """The server answers any bytes with a 101 or a 4xx, never a traceback."""
    server = ServerHandshake(max_request_size=2048)
    request = None
    try:
        for chunk in chunks:
            request = server.receive_data(chunk)
            if request is not None:
                break
        else:
            if not eof:
                return
            server.receive_eof()
        assert request is not None
        response, result = server.accept(
            request,
            subprotocols=["chat"],
            origins=["https://a.example", None],
        )
    except InvalidHandshake as exc:
        # InvalidRequest from parsing, or an early EOF.
        failure: InvalidHandshake | None = exc
        response, result = server.bad_request(exc), None
    else:
        failure = None
    if isinstance(failure, InvalidRequest):
        assert 400 <= failure.status_code < 500
    elif failure is not None:
        assert str(failure).startswith("connection closed")
    assert (response.status_code == 101) == (result is not None)
    assert response.status_code == 101 or 400 <= response.status_code < 500
    data = server.data_for_response(response)
    assert data.startswith(b"HTTP/1.1 %d " % response.status_code)
    assert len(response.body) < 400


VALID = with_headers(
    REQUEST,
    b"Sec-WebSocket-Protocol: chat",
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    b"Origin: https://a.example",
)


@st.composite
def mutated_requests(draw: st.DrawFn) -> list[bytes]:
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        if action == "replace" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif action == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[pos : pos + draw(st.integers(1, 12))]
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    bounds = [0, *cuts, len(data)]
    return [bytes(data[a:b]) for a, b in itertools.pairwise(bounds)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=mutated_requests(), eof=st.booleans())
def test_server_survives_mutated_requests(chunks: list[bytes], eof: bool) -> None:
    check_server_survives(chunks, eof)


@settings(max_examples=80, deadline=None)
@given(chunks=st.lists(st.binary(max_size=3000), max_size=4), eof=st.booleans())
def test_server_survives_random_bytes(chunks: list[bytes], eof: bool) -> None:
    check_server_survives(chunks, eof)


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.binary(max_size=40), min_size=1, max_size=6),
    name=st.sampled_from(
        [
            b"Upgrade",
            b"Connection",
            b"Sec-WebSocket-Key",
            b"Sec-WebSocket-Version",
            b"Sec-WebSocket-Protocol",
            b"Sec-WebSocket-Extensions",
            b"Origin",
        ]
    ),
)
def test_server_survives_header_values(values: list[bytes], name: bytes) -> None:
    # Any bytes h11 lets through in a value, non-UTF-8 included.
    lines = [
        name + b": " + value.replace(b"\r", b"").replace(b"\n", b"") for value in values
    ]
    check_server_survives([with_headers(without(VALID, name), *lines)], eof=True)


def test_client_survives_any_response_headers() -> None:
    # A sample of nasty values: each one raises an InvalidHandshake subclass.
    for line in [
        b"Sec-WebSocket-Extensions: \xff\xfe",
        b"Sec-WebSocket-Protocol: \xe9",
        b'Sec-WebSocket-Extensions: permessage-deflate; a="\xe9"',
        b"Sec-WebSocket-Accept: \xff",
    ]:
        handshake = client(subprotocols=["chat"])
        handshake.receive_data(response_101(line))
        with pytest.raises(InvalidHandshake):
            handshake.result()


@st.composite
def mutated_responses(draw: st.DrawFn) -> bytes:
    data = bytearray(
        draw(
            st.sampled_from(
                [
                    response_101(
                        b"Sec-WebSocket-Protocol: chat",
                        b"Sec-WebSocket-Extensions: permessage-deflate; "
                        b"server_no_context_takeover; client_max_window_bits=10",
                    ),
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope\n",
                ]
            )
        )
    )
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[pos : pos + draw(st.integers(1, 12))]
    return bytes(data)


@settings(max_examples=100, deadline=None)
@given(data=mutated_responses(), cut=st.integers(0, 400))
def test_client_survives_mutated_responses(data: bytes, cut: int) -> None:
    # Whatever the server sends, the client raises InvalidHandshake or opens.
    handshake = client(subprotocols=["chat"], max_response_size=1024)
    try:
        done = handshake.receive_data(data[:cut]) or handshake.receive_data(data[cut:])
        if not done:
            handshake.receive_eof()
        result = handshake.result()
    except InvalidHandshake:
        return
    assert handshake.response is not None
    assert handshake.response.status_code == 101
    assert result.subprotocol in (None, "chat")
