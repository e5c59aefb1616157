"""The handshake's way around h11 gives what h11 gives, byte for byte.

A head that arrives whole in the first read, and a 101 written for it, are
parsed and written without h11 when they are plain (``_parse_head``,
``_write_head`` in ``trio_ws._handshake``); anything else
goes through h11. These tests feed the same bytes both ways (whole, which
may take the short way, and in two reads, which always goes through h11)
and compare everything that comes out: requests, responses, trailing data,
the bytes written, and the errors with their texts.
"""

from __future__ import annotations

from typing import Any

import h11
import pytest
from hypothesis import given, settings, strategies as st

import trio_ws._handshake
import trio_ws._http
from trio_ws import Response
from trio_ws._handshake import _write_request
from trio_ws._handshake_client import ClientHandshake
from trio_ws._handshake_server import ServerHandshake
from trio_ws._http import Headers
from trio_ws._uri import parse_uri

from .test_handshake import ACCEPT, KEY, REQUEST as RFC_REQUEST, RESPONSE_101

# The RFC's example, with a query string in the target.
REQUEST = RFC_REQUEST.replace(b"GET /chat ", b"GET /chat?x=1 ")


def outcome(fn: Any, *args: Any) -> Any:
    """What ``fn(*args)`` returns, or the type, text and status it raises."""
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # compared, not swallowed
        return ("raised", type(exc), str(exc), getattr(exc, "status_code", None))


def run_server(
    chunks: list[bytes], response: Response | None, second: Response
) -> list[Any]:
    """Everything the server side makes of ``chunks``, then of ``response``,
    then of a ``second`` response.
    """
    server = ServerHandshake(max_request_size=1024)
    seen: list[Any] = []
    request = None
    for chunk in chunks:
        result = outcome(server.receive_data, chunk)
        if result[0] == "raised":
            seen.append(result)
            return seen
        request = result[1]
        if request is not None:
            break
    if request is None:
        seen.append(outcome(server.receive_eof))
        return seen
    seen.append((request.path, list(request.headers.raw_items())))
    seen.append(server.trailing_data)
    seen.append(outcome(server.receive_data, b"more"))
    seen.append(server.trailing_data)
    if response is None:
        response, _ = server.accept(request, compression=None)
    seen.append(outcome(server.data_for_response, response))
    # h11 refuses a second response after a 101, and allows it after a 1xx.
    seen.append(outcome(server.data_for_response, second))
    return seen


def assert_server_same_both_ways(data: bytes, response: Response | None = None) -> None:
    for second in [
        Response(200, "OK", Headers()),
        Response(101, "Switching Protocols", Headers()),
    ]:
        whole = run_server([data], response, second)
        by_h11 = run_server([data[:1], data[1:]], response, second)
        assert whole == by_h11


@pytest.mark.parametrize(
    "data",
    [
        REQUEST,
        REQUEST + b"\x81\x85frames",
        REQUEST.replace(b"Host:", b"host:  ").replace(b"13\r\n", b"13 \t\r\n"),
        # Absolute-form target, query kept.
        REQUEST.replace(b"/chat?x=1", b"http://server.example.com/chat?x=1"),
        REQUEST.replace(b"/chat?x=1", b"*"),
        REQUEST.replace(b"HTTP/1.1", b"HTTP/1.0"),
        REQUEST.replace(b"HTTP/1.1", b"HTTP/2.0"),
        REQUEST.replace(b"GET", b"POST"),
        REQUEST.replace(b"Host: server.example.com\r\n", b""),
        REQUEST.replace(b"Host:", b"Host: a\r\nHost:"),
        REQUEST.replace(b"Upgrade: websocket", b"Upgrade: ,"),
        REQUEST.replace(b"Upgrade: websocket\r\n", b""),
        REQUEST.replace(b"\r\n\r\n", b"\r\nContent-Length: 0\r\n\r\n"),
        REQUEST.replace(b"\r\n\r\n", b"\r\nContent-Length: 5\r\n\r\nhello"),
        REQUEST.replace(b"\r\n\r\n", b"\r\nTransfer-Encoding: chunked\r\n\r\n"),
        # Folded line, bad characters, bare LF, missing colon, empty name.
        REQUEST.replace(b"Connection: Upgrade", b"Connection:\r\n Upgrade"),
        REQUEST.replace(b"Connection: Upgrade", b"Connection: Up\x00grade"),
        REQUEST.replace(b"Connection: Upgrade", b"Connec tion: Upgrade"),
        REQUEST.replace(b"Connection: Upgrade\r\n", b"Connection: Upgrade\n"),
        REQUEST.replace(b"\r\n\r\n", b"\n\n"),
        REQUEST.replace(b"Connection: Upgrade", b"Connection Upgrade"),
        REQUEST.replace(b"Connection: Upgrade", b": Upgrade"),
        b"\r\n" + REQUEST,
        b" " + REQUEST,
        # Over max_request_size (1024) once complete.
        REQUEST.replace(b"\r\n\r\n", b"\r\nX: " + b"x" * 1100 + b"\r\n\r\n"),
        REQUEST.replace(b"\r\n\r\n", b"\r\nX: " + b"x" * 950 + b"\r\n\r\n"),
        REQUEST[:-2],
    ],
)
def test_server_same_both_ways(data: bytes) -> None:
    assert_server_same_both_ways(data)


@pytest.mark.parametrize(
    "response",
    [
        Response(101, "Switching Protocols", Headers(Upgrade="websocket")),
        Response(101, "", Headers()),
        Response(101, "Whatever \xe9", Headers([("X-A", "1"), ("x-a", "\xe9 2")])),
        # Headers h11 writes in its own way, or refuses.
        Response(101, "S", Headers(Host="h", X="1")),
        Response(101, "S", Headers([("Content-Length", "0")])),
        Response(101, "S", Headers([("Transfer-Encoding", "chunked")])),
        Response(101, "S", Headers(X="a\nb")),
        Response(101, "S", Headers(X=" a")),
        Response(101, "S", Headers([("Bad Name", "1")])),
        Response(101, "S", Headers(X="\u20ac")),
        Response(101, "\u20ac", Headers()),
        Response(100, "Continue", Headers()),
        Response(403, "Forbidden", Headers(), b"no"),
        Response(200, "OK", Headers([("Content-Length", "2")]), b"ok"),
    ],
)
@pytest.mark.parametrize(
    "request_bytes",
    [REQUEST, REQUEST.replace(b"Upgrade: websocket", b"Upgrade: ,")],
)
def test_server_response_same_both_ways(
    response: Response, request_bytes: bytes
) -> None:
    assert_server_same_both_ways(request_bytes, response)


def test_plain_handshake_skips_h11() -> None:
    # What the fast path is for: no h11 connection for a plain handshake.
    server = ServerHandshake()
    request = server.receive_data(REQUEST)
    assert request is not None
    response, _ = server.accept(request, compression=None)
    data = server.data_for_response(response)
    assert server._conn is None
    handshake = ClientHandshake(parse_uri("ws://server.example.com/chat?x=1"))
    assert handshake._conn is None
    handshake.receive_data(data)
    assert handshake._conn is None
    assert handshake.response == response


# --- hypothesis: heads assembled from plain and odd pieces ----------------------

_START = st.sampled_from(
    [b"GET /a HTTP/1.1", b"GET /a HTTP/1.0", b"PUT /a HTTP/1.1", b"GET  /a HTTP/1.1"]
)
_LINE = st.sampled_from(
    [
        b"Host: h",
        b"host:h ",
        b"Upgrade: websocket",
        b"Upgrade:",
        b"upgrade: , ,",
        b"Connection: upgrade",
        b"Sec-WebSocket-Key: " + KEY.encode(),
        b"Sec-WebSocket-Version: 13",
        b"Content-Length: 0",
        b"X:\t a \t",
        b" folded",
        b"X : bad",
        b"X: \x7f\xff",
        b"X: a\rb",
        b"",
    ]
)
_SEP = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"])


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    lines = [draw(_START), *draw(st.lists(_LINE, max_size=8))]
    data = b"".join(line + draw(_SEP) for line in lines)
    return (
        data
        + draw(st.sampled_from([b"\r\n", b"\n", b""]))
        + draw(st.sampled_from([b"", b"\x81\x00"]))
    )


@settings(max_examples=300, deadline=None)
@given(heads())
def test_server_same_both_ways_hypothesis(data: bytes) -> None:
    assert_server_same_both_ways(data)


# --- Client ---------------------------------------------------------------------


def h11_request(target: bytes, headers: list[tuple[bytes, bytes]]) -> Any:
    """What h11 writes for this request, or the error it raises."""
    conn = h11.Connection(h11.CLIENT)
    try:
        event = h11.Request(method="GET", target=target, headers=headers)
        return conn.send(event) + conn.send(h11.EndOfMessage())
    except h11.LocalProtocolError:
        return None


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"X", b"1"), (b"x", b"a b")],
        [(b"Host", b"again")],
        [(b"Content-Length", b"0")],
        [(b"X", b" 1")],
        [(b"X", b"1\r\n")],
        [(b"B d", b"1")],
        [(b"X", b"\xff")],
    ],
)
@pytest.mark.parametrize("target", [b"/", b"/a?b", b"/a b", b""])
@pytest.mark.parametrize("host", [(b"Host", b"h:1"), (b"Host", b""), (b"X", b"h")])
def test_write_request_is_h11s_or_declines(
    target: bytes, host: tuple[bytes, bytes], headers: list[tuple[bytes, bytes]]
) -> None:
    ours = _write_request(target, host, headers)
    theirs = h11_request(target, [host, *headers])
    if ours is not None:
        assert ours == theirs


@pytest.mark.parametrize(
    "additional_headers",
    [
        None,
        [("X-A", "1"), ("x-a", "\xe9")],
        [("Host", "other")],
        [("Content-Length", "0")],
        [("X", "a\nb")],
        [("Bad Name", "1")],
        [("X", "\u20ac")],
    ],
)
def test_client_request_same_as_h11(additional_headers: Any) -> None:
    uri = parse_uri("ws://user:pass@server.example.com:8000/chat?x=1")
    made = outcome(lambda: ClientHandshake(uri, additional_headers=additional_headers))
    if made[0] == "raised":
        assert made[1] is ValueError
        assert made[2].startswith(("invalid request: ", "header names must be"))
        return
    handshake = made[1]
    headers = [
        (name.encode("ascii"), value.encode("latin-1"))
        for name, value in handshake.request.headers.raw_items()
    ]
    assert handshake.data_to_send() == h11_request(b"/chat?x=1", headers)


def run_client(chunks: list[bytes], monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    monkeypatch.setattr(
        "trio_ws._handshake_client.generate_nonce", lambda: KEY.encode()
    )
    handshake = ClientHandshake(
        parse_uri("ws://server.example.com/chat"), max_response_size=1024
    )
    seen: list[Any] = []
    done = False
    for chunk in chunks:
        result = outcome(handshake.receive_data, chunk)
        if result != ("ok", False):
            seen.append(result)
            done = True
            break
    if not done:
        seen.append(outcome(handshake.receive_eof))
    response = handshake.response
    seen.append(
        None
        if response is None
        else (
            response.status_code,
            response.reason_phrase,
            list(response.headers.raw_items()),
            response.body,
        )
    )
    seen.append(outcome(handshake.receive_data, b"late"))
    result = outcome(handshake.result)
    if result[0] == "ok":
        result = (result[1].subprotocol, result[1].extensions, result[1].trailing_data)
    seen.append(result)
    return seen


@pytest.mark.parametrize(
    "data",
    [
        RESPONSE_101,
        RESPONSE_101 + b"\x81\x02hi",
        RESPONSE_101.replace(b" Switching Protocols", b""),
        RESPONSE_101.replace(b"Switching Protocols", b""),
        RESPONSE_101.replace(b"Switching Protocols", b"\xe9 \t x"),
        RESPONSE_101.replace(b"HTTP/1.1", b"HTTP/1.0"),
        RESPONSE_101.replace(b"101", b"100", 1) + RESPONSE_101,
        RESPONSE_101.replace(b"101 Switching Protocols", b"200 OK"),
        RESPONSE_101.replace(b"\r\n\r\n", b"\r\nContent-Length: 0\r\n\r\n"),
        RESPONSE_101.replace(b"\r\n\r\n", b"\r\nHost: h\r\n\r\n"),
        RESPONSE_101.replace(b"Upgrade: websocket", b"Upgrade:\r\n websocket"),
        RESPONSE_101.replace(b"Upgrade: websocket\r\n", b"Upgrade: websocket\n"),
        RESPONSE_101.replace(b"Upgrade: websocket", b"Upgrade : websocket"),
        RESPONSE_101.replace(ACCEPT.encode(), b"wrong"),
        RESPONSE_101.replace(b"\r\n\r\n", b"\r\nX: " + b"x" * 1100 + b"\r\n\r\n"),
        RESPONSE_101[:-2],
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno",
        b"garbage\r\n\r\n",
    ],
)
def test_client_same_both_ways(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = run_client([data], monkeypatch)
    by_h11 = run_client([data[:1], data[1:]], monkeypatch)
    assert whole == by_h11


# --- Memory: what requests from alike clients share -----------------------------


def test_requests_share_names_and_common_values() -> None:
    first = ServerHandshake().receive_data(REQUEST)
    second = ServerHandshake().receive_data(REQUEST)
    assert first is not None
    assert second is not None
    for (name1, value1), (name2, value2) in zip(
        first.headers.raw_items(), second.headers.raw_items(), strict=True
    ):
        assert name1 is name2
        # A key is unique to its connection: not worth keeping.
        assert (value1 is value2) == (name1 != "Sec-WebSocket-Key")


def test_shared_strings_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trio_ws._handshake, "_WIRE_NAMES", {})
    monkeypatch.setattr(trio_ws._handshake, "_WIRE_VALUES", {})
    monkeypatch.setattr(trio_ws._http, "_LOWER", {})
    for i in range(600):
        request = REQUEST.replace(b"websocket", b"w%d" % i).replace(
            b"\r\n\r\n", b"\r\nX-%d: 1\r\n\r\n" % i
        )
        parsed = ServerHandshake().receive_data(request)
        assert parsed is not None
        assert parsed.headers[f"x-{i}"] == "1"
        assert parsed.headers["Upgrade"] == f"w{i}"
    assert len(trio_ws._handshake._WIRE_NAMES) == 512
    assert len(trio_ws._handshake._WIRE_VALUES) == 512
    assert len(trio_ws._http._LOWER) <= 512 + 1


def test_long_strings_are_not_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trio_ws._handshake, "_WIRE_NAMES", {})
    monkeypatch.setattr(trio_ws._handshake, "_WIRE_VALUES", {})
    monkeypatch.setattr(trio_ws._http, "_LOWER", {})
    name, value = b"X-" + b"n" * 127, b"v" * 129
    request = REQUEST.replace(b"Host: server.example.com", b"Host: " + value).replace(
        b"\r\n\r\n", b"\r\n" + name + b": 1\r\n\r\n"
    )
    parsed = ServerHandshake().receive_data(request)
    assert parsed is not None
    assert parsed.headers["Host"] == value.decode()
    assert parsed.headers[name.decode()] == "1"
    assert name not in trio_ws._handshake._WIRE_NAMES
    assert b"Host" in trio_ws._handshake._WIRE_NAMES
    assert value not in trio_ws._handshake._WIRE_VALUES
    assert name.decode() not in trio_ws._http._LOWER
