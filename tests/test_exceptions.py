"""The exception tree, close frames, and the texts users read in tracebacks."""

from __future__ import annotations

import pickle

import pytest

from trio_ws import (
    Close,
    CloseCode,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    Headers,
    InvalidHandshake,
    InvalidHeader,
    InvalidStatus,
    InvalidURI,
    MultipleValuesError,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    Response,
    WebSocketError,
)
from trio_ws._close import OK_CODES, explain, is_valid_wire_code
from trio_ws._exceptions import connection_closed
from trio_ws._handshake import InvalidRequest

# --- The tree -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "base"),
    [
        (ConnectionClosed, WebSocketError),
        (ConnectionClosedOK, ConnectionClosed),
        (ConnectionClosedError, ConnectionClosed),
        (InvalidHandshake, WebSocketError),
        (InvalidURI, InvalidHandshake),
        (InvalidHeader, InvalidHandshake),
        (InvalidStatus, InvalidHandshake),
        (NegotiationError, InvalidHandshake),
        (InvalidRequest, InvalidHandshake),
        (PayloadTooBig, WebSocketError),
        (ProtocolError, WebSocketError),
        (WebSocketError, Exception),
    ],
)
def test_tree(cls: type[Exception], base: type[Exception]) -> None:
    assert cls.__mro__[1] is base


def test_ok_and_error_are_distinct() -> None:
    assert not issubclass(ConnectionClosedOK, ConnectionClosedError)
    assert not issubclass(ConnectionClosedError, ConnectionClosedOK)


# --- ConnectionClosed: str(), code, reason --------------------------------------

OK = Close(1000, "")
BYE = Close(1001, "bye")


@pytest.mark.parametrize(
    ("rcvd", "sent", "rcvd_then_sent", "text"),
    [
        (OK, OK, True, "received 1000 (OK); then sent 1000 (OK)"),
        (OK, OK, False, "sent 1000 (OK); then received 1000 (OK)"),
        (
            BYE,
            Close(1000, "done"),
            True,
            "received 1001 (going away) bye; then sent 1000 (OK) done",
        ),
        (None, BYE, None, "sent 1001 (going away) bye; no close frame received"),
        (
            None,
            Close(1011, "keepalive ping timeout"),
            None,
            (
                "sent 1011 (internal error) keepalive ping timeout; "
                "no close frame received"
            ),
        ),
        (BYE, None, None, "received 1001 (going away) bye; no close frame sent"),
        (None, None, None, "no close frame received or sent"),
        (
            Close(1005),
            Close(1005),
            True,
            (
                "received 1005 (no status received [internal]); "
                "then sent 1005 (no status received [internal])"
            ),
        ),
        (
            Close(4000, "app"),
            Close(1002, "bad frame"),
            False,
            "sent 1002 (protocol error) bad frame; then received 4000 (private use) app",
        ),
    ],
)
def test_connection_closed_str(
    rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None, text: str
) -> None:
    exc = connection_closed(rcvd, sent, rcvd_then_sent)
    assert str(exc) == text
    assert (exc.rcvd, exc.sent, exc.rcvd_then_sent) == (rcvd, sent, rcvd_then_sent)


@pytest.mark.parametrize(
    ("rcvd", "sent", "code", "reason"),
    [
        # The received frame explains the closure...
        (Close(1001, "bye"), Close(1000, "ok"), 1001, "bye"),
        (Close(4001, "app"), None, 4001, "app"),
        # ...else the sent one (1011 after a keepalive timeout)...
        (None, Close(1011, "keepalive ping timeout"), 1011, "keepalive ping timeout"),
        # ...else 1006 (RFC 6455 7.1.5).
        (None, None, 1006, ""),
        (Close(1005), Close(1000), 1005, ""),
    ],
)
def test_connection_closed_code_and_reason(
    rcvd: Close | None, sent: Close | None, code: int, reason: str
) -> None:
    exc = connection_closed(rcvd, sent, True if rcvd and sent else None)
    assert (exc.code, exc.reason) == (code, reason)


@pytest.mark.parametrize(
    ("rcvd", "sent", "cls"),
    [
        # 1000 or 1001 or no status, both ways: OK.
        (Close(1000), Close(1000), ConnectionClosedOK),
        (Close(1001), Close(1000), ConnectionClosedOK),
        (Close(1000), Close(1001), ConnectionClosedOK),
        (Close(1001), Close(1001), ConnectionClosedOK),
        (Close(1005), Close(1000), ConnectionClosedOK),
        (Close(1005), Close(1005), ConnectionClosedOK),
        # Anything else: an error.
        (Close(1000), Close(1002), ConnectionClosedError),
        (Close(1002), Close(1002), ConnectionClosedError),
        (Close(1011), Close(1011), ConnectionClosedError),
        (Close(1000), Close(4000), ConnectionClosedError),
        (Close(3000), Close(3000), ConnectionClosedError),
        (Close(1000), None, ConnectionClosedError),
        (None, Close(1000), ConnectionClosedError),
        (None, Close(1001, "bye"), ConnectionClosedError),
        (None, None, ConnectionClosedError),
    ],
)
def test_connection_closed_classification(
    rcvd: Close | None, sent: Close | None, cls: type[ConnectionClosed]
) -> None:
    exc = connection_closed(rcvd, sent, True if rcvd and sent else None)
    assert type(exc) is cls


def test_ok_codes() -> None:
    assert frozenset({1000, 1001, 1005}) == OK_CODES


def test_connection_closed_direct_construction() -> None:
    # Users may build them in tests; the third argument defaults to None.
    exc = ConnectionClosedOK(OK, OK)
    assert exc.rcvd_then_sent is None
    assert str(exc) == "sent 1000 (OK); then received 1000 (OK)"
    assert exc.args == (OK, OK, None)


@pytest.mark.parametrize("cls", [ConnectionClosedOK, ConnectionClosedError])
def test_connection_closed_pickle(cls: type[ConnectionClosed]) -> None:
    exc = cls(BYE, OK, True)
    clone = pickle.loads(pickle.dumps(exc))
    assert type(clone) is cls
    assert (clone.rcvd, clone.sent, clone.rcvd_then_sent) == (BYE, OK, True)
    assert str(clone) == str(exc)


# --- Close ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("close", "text"),
    [
        (Close(1000), "1000 (OK)"),
        (Close(1000, ""), "1000 (OK)"),
        (Close(1001, "bye"), "1001 (going away) bye"),
        (Close(CloseCode.GOING_AWAY, "bye"), "1001 (going away) bye"),
        (Close(1006), "1006 (connection closed abnormally [internal])"),
        (Close(1011, "boom"), "1011 (internal error) boom"),
        (Close(3000, "x"), "3000 (registered) x"),
        (Close(4999), "4999 (private use)"),
        (Close(1004), "1004 (unknown)"),
        (Close(1000, "ünïcode"), "1000 (OK) ünïcode"),
    ],
)
def test_close_str(close: Close, text: str) -> None:
    assert str(close) == text


def test_close_value_semantics() -> None:
    assert Close(1001, "bye") == Close(CloseCode.GOING_AWAY, "bye")
    assert Close(1000) == Close(1000, "")
    assert Close(1000) != Close(1000, "x")
    assert len({Close(1000), Close(1000, "")}) == 1
    with pytest.raises(AttributeError):
        Close(1000).code = 1001  # type: ignore[misc]
    assert repr(Close(1000, "x")) == "Close(code=1000, reason='x')"
    assert pickle.loads(pickle.dumps(Close(1001, "bye"))) == Close(1001, "bye")


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (0, "unknown"),
        (999, "unknown"),
        (1000, "OK"),
        (1001, "going away"),
        (1002, "protocol error"),
        (1003, "unsupported data"),
        (1004, "unknown"),
        (1005, "no status received [internal]"),
        (1006, "connection closed abnormally [internal]"),
        (1007, "invalid frame payload data"),
        (1008, "policy violation"),
        (1009, "message too big"),
        (1010, "mandatory extension"),
        (1011, "internal error"),
        (1012, "service restart"),
        (1013, "try again later"),
        (1014, "bad gateway"),
        (1015, "TLS handshake failure [internal]"),
        (1016, "unknown"),
        (2999, "unknown"),
        (3000, "registered"),
        (3999, "registered"),
        (4000, "private use"),
        (4999, "private use"),
        (5000, "unknown"),
    ],
)
def test_explain(code: int, text: str) -> None:
    assert explain(code) == text


def test_close_codes_are_explained() -> None:
    for code in CloseCode:
        assert explain(code) != "unknown"


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        (0, False),
        (999, False),
        (1000, True),
        (1003, True),
        (1004, False),  # reserved (RFC 6455 7.4.1)
        (1005, False),  # local only
        (1006, False),  # local only
        (1007, True),
        (1011, True),
        (1012, True),
        (1014, True),
        (1015, False),  # local only
        (1016, False),
        (2999, False),
        (3000, True),
        (4999, True),
        (5000, False),
        (65535, False),
    ],
)
def test_is_valid_wire_code(code: int, valid: bool) -> None:
    assert is_valid_wire_code(code) is valid


# --- Handshake errors -----------------------------------------------------------


def test_invalid_uri() -> None:
    exc = InvalidURI("http://h/", "scheme isn't ws or wss")
    assert str(exc) == "http://h/ isn't a valid URI: scheme isn't ws or wss"
    assert (exc.uri, exc.msg) == ("http://h/", "scheme isn't ws or wss")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "missing Upgrade header"),
        ("", "empty Upgrade header"),
        ("h2c", "invalid Upgrade header: h2c"),
    ],
)
def test_invalid_header(value: str | None, text: str) -> None:
    exc = InvalidHeader("Upgrade", value)
    assert str(exc) == text
    assert (exc.name, exc.value) == ("Upgrade", value)


def test_invalid_header_default_value() -> None:
    assert str(InvalidHeader("Sec-WebSocket-Accept")) == (
        "missing Sec-WebSocket-Accept header"
    )


def test_invalid_status() -> None:
    response = Response(403, "Forbidden", Headers(X="1"), b"nope")
    exc = InvalidStatus(response)
    assert exc.response is response
    assert str(exc) == "server rejected WebSocket connection: HTTP 403"


def test_invalid_request() -> None:
    exc = InvalidRequest(405, "unsupported HTTP method: POST")
    assert (exc.status_code, exc.msg) == (405, "unsupported HTTP method: POST")
    assert str(exc) == "unsupported HTTP method: POST"


def test_plain_messages() -> None:
    assert str(NegotiationError("unexpected subprotocol: x")) == (
        "unexpected subprotocol: x"
    )
    assert str(InvalidHandshake("connection closed during handshake")) == (
        "connection closed during handshake"
    )
    assert str(PayloadTooBig("message over 1048576 bytes")) == (
        "message over 1048576 bytes"
    )
    assert str(ProtocolError("bad frame")) == "bad frame"


@pytest.mark.parametrize(
    "exc",
    [
        InvalidURI("ws://h/#x", "fragments aren't allowed"),
        InvalidHeader("Upgrade", "h2c"),
        InvalidHeader("Upgrade"),
        InvalidStatus(Response(404, "Not Found", Headers([("A", "1"), ("a", "2")]))),
        InvalidRequest(431, "request head exceeds 16384 bytes"),
        NegotiationError("unexpected extension: x"),
        PayloadTooBig("too big"),
        ProtocolError("bad"),
        MultipleValuesError("Set-Cookie"),
    ],
)
def test_pickle(exc: Exception) -> None:
    clone = pickle.loads(pickle.dumps(exc))
    assert type(clone) is type(exc)
    assert str(clone) == str(exc)
    assert clone.args == exc.args
    assert vars(clone) == vars(exc)


def test_public_module() -> None:
    # Tracebacks show trio_ws.X, the name users import.
    for cls in [ConnectionClosedError, InvalidStatus, Close, CloseCode, Headers]:
        assert cls.__module__ == "trio_ws"
