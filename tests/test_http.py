"""Headers, Request, Response and plain-text responses as users see them."""

from __future__ import annotations

import copy
import pickle

import pytest
import trio.testing

from trio_ws import Headers, MultipleValuesError, Request, Response, ServerConnection
from trio_ws._handshake import DEFAULT_SERVER
from trio_ws._http import plain_response

# --- Headers: a case-insensitive multi-mapping ----------------------------------


def test_lookup_ignores_case() -> None:
    headers = Headers([("Content-Type", "text/plain")])
    assert headers["content-type"] == "text/plain"
    assert headers["CONTENT-TYPE"] == "text/plain"
    assert "cOnTeNt-TyPe" in headers
    assert headers.get("content-type") == "text/plain"
    assert headers.get("X-Missing") is None
    assert headers.get("X-Missing", "d") == "d"


def test_missing_header_keyerror_names_the_header() -> None:
    headers = Headers()
    with pytest.raises(KeyError) as exc_info:
        headers["X-Missing"]
    assert exc_info.value.args == ("X-Missing",)
    with pytest.raises(KeyError) as exc_info:
        del headers["X-Missing"]
    assert exc_info.value.args == ("X-Missing",)


def test_contains_only_strings() -> None:
    headers = Headers(A="1")
    assert "a" in headers
    assert 1 not in headers  # type: ignore[comparison-overlap]
    assert None not in headers
    assert b"a" not in headers  # type: ignore[comparison-overlap]


def test_repeated_header() -> None:
    headers = Headers([("Set-Cookie", "a=1"), ("Host", "example.com")])
    headers["set-cookie"] = "b=2"
    assert headers["host"] == "example.com"
    assert headers.get_all("SET-COOKIE") == ["a=1", "b=2"]
    with pytest.raises(MultipleValuesError) as exc_info:
        headers["Set-Cookie"]
    exc = exc_info.value
    assert isinstance(exc, LookupError)
    assert not isinstance(exc, KeyError)
    assert exc.name == "Set-Cookie"
    assert str(exc) == "multiple values for header 'Set-Cookie'"
    # get() only hides missing headers, not ambiguous ones.
    with pytest.raises(MultipleValuesError):
        headers.get("set-cookie")


def test_get_all() -> None:
    headers = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    assert headers.get_all("a") == ["1", "3"]
    assert headers.get_all("b") == ["2"]
    assert headers.get_all("c") == []
    # A new list each time: changing it changes nothing.
    headers.get_all("a").append("4")
    assert headers.get_all("A") == ["1", "3"]


def test_setitem_adds() -> None:
    headers = Headers()
    headers["X"] = "1"
    headers["x"] = "2"
    assert headers.get_all("X") == ["1", "2"]
    # Replacing means deleting first.
    del headers["X"]
    headers["X"] = "3"
    assert headers["x"] == "3"


def test_delete_removes_every_value() -> None:
    headers = Headers([("A", "1"), ("B", "2"), ("a", "3"), ("C", "4")])
    del headers["A"]
    assert "a" not in headers
    assert list(headers.raw_items()) == [("B", "2"), ("C", "4")]
    assert len(headers) == 2


def test_iteration_order_and_len() -> None:
    headers = Headers([("Host", "h"), ("X-B", "1"), ("x-a", "2"), ("X-b", "3")])
    # As a mapping: distinct names, lower case, in order of first appearance.
    assert list(headers) == ["host", "x-b", "x-a"]
    assert len(headers) == 3
    assert list(headers.keys()) == ["host", "x-b", "x-a"]
    # Every pair, names as given, in arrival order.
    assert list(headers.raw_items()) == [
        ("Host", "h"),
        ("X-B", "1"),
        ("x-a", "2"),
        ("X-b", "3"),
    ]


def test_raw_items_is_a_snapshot() -> None:
    headers = Headers(A="1")
    items = headers.raw_items()
    headers["B"] = "2"
    assert list(items) == [("A", "1")]


def test_items_with_single_values() -> None:
    headers = Headers([("A", "1"), ("B", "2")])
    assert dict(headers) == {"a": "1", "b": "2"}
    assert list(headers.items()) == [("a", "1"), ("b", "2")]


def test_constructor_forms() -> None:
    expected = [("A", "1"), ("b", "2")]
    assert list(Headers(expected).raw_items()) == expected
    assert list(Headers(iter(expected)).raw_items()) == expected
    assert list(Headers({"A": "1", "b": "2"}).raw_items()) == expected
    assert list(Headers(A="1", b="2").raw_items()) == expected
    assert list(Headers([("A", "1")], b="2").raw_items()) == expected
    assert list(Headers().raw_items()) == []
    # From Headers, repeated values survive.
    source = Headers([("X", "1"), ("x", "2")])
    assert Headers(source).get_all("X") == ["1", "2"]
    with pytest.raises(TypeError, match="update expected at most 1 argument, got 2"):
        Headers({}, {})


def test_update_adds() -> None:
    headers = Headers([("A", "1")])
    headers.update({"a": "2"}, B="3")
    headers.update(Headers([("A", "4"), ("A", "5")]))
    headers.update([("C", "6")])
    headers.update()
    assert list(headers.raw_items()) == [
        ("A", "1"),
        ("a", "2"),
        ("B", "3"),
        ("A", "4"),
        ("A", "5"),
        ("C", "6"),
    ]
    with pytest.raises(TypeError, match="got 2"):
        headers.update({}, [])


def test_mutable_mapping_methods() -> None:
    headers = Headers([("A", "1"), ("B", "2")])
    assert headers.pop("a") == "1"
    assert headers.pop("a", None) is None
    assert headers.setdefault("B", "x") == "2"
    assert headers.setdefault("C", "3") == "3"
    assert list(headers.raw_items()) == [("B", "2"), ("C", "3")]
    headers.clear()
    assert len(headers) == 0
    assert list(headers.raw_items()) == []
    assert headers.get_all("B") == []


def test_copy_is_independent() -> None:
    headers = Headers([("A", "1"), ("a", "2")])
    for clone in [headers.copy(), copy.copy(headers), copy.deepcopy(headers)]:
        assert clone == headers
        assert clone is not headers
        clone["A"] = "3"
        assert headers.get_all("a") == ["1", "2"]
        assert clone.get_all("a") == ["1", "2", "3"]


def test_equality() -> None:
    headers = Headers([("Host", "h"), ("X", "1"), ("X", "2")])
    # Names compare without case; different names may interleave.
    assert headers == Headers([("x", "1"), ("HOST", "h"), ("x", "2")])
    # The values of one name keep their order.
    assert headers != Headers([("Host", "h"), ("X", "2"), ("X", "1")])
    assert headers != Headers([("Host", "h"), ("X", "1")])
    assert Headers() == Headers()
    # Only Headers compare equal to Headers.
    assert Headers(a="1") != {"a": "1"}
    assert Headers() != []
    with pytest.raises(TypeError):
        hash(Headers())


def test_str_and_repr() -> None:
    headers = Headers([("Host", "example.com"), ("X-Y", "1"), ("x-y", "2")])
    assert str(headers) == "Host: example.com\r\nX-Y: 1\r\nx-y: 2\r\n\r\n"
    assert str(Headers()) == "\r\n"
    assert repr(headers) == (
        "Headers([('Host', 'example.com'), ('X-Y', '1'), ('x-y', '2')])"
    )
    assert repr(Headers()) == "Headers([])"


def test_pickle() -> None:
    headers = Headers([("A", "1"), ("a", "2")])
    clone = pickle.loads(pickle.dumps(headers))
    assert clone == headers
    assert list(clone.raw_items()) == [("A", "1"), ("a", "2")]


# --- Request and Response -------------------------------------------------------


def test_request() -> None:
    request = Request("/chat?room=1", Headers(Host="h"))
    assert request.path == "/chat?room=1"
    assert request.headers["host"] == "h"
    assert request == Request("/chat?room=1", Headers(HOST="h"))
    assert request != Request("/chat", Headers(Host="h"))
    assert repr(request) == (
        "Request(path='/chat?room=1', headers=Headers([('Host', 'h')]))"
    )


def test_response() -> None:
    response = Response(101, "Switching Protocols", Headers(Upgrade="websocket"))
    assert response.body == b""
    assert response == Response(
        101, "Switching Protocols", Headers(upgrade="websocket"), b""
    )
    # Mutable, for process_response.
    response.headers["X"] = "1"
    response.status_code = 403
    assert response.status_code == 403
    clone = pickle.loads(pickle.dumps(response))
    assert clone == response


# --- plain_response and ServerConnection.respond --------------------------------


@pytest.fixture
def fixed_date(monkeypatch: pytest.MonkeyPatch) -> str:
    date = "Thu, 01 Jan 2026 00:00:00 GMT"
    monkeypatch.setattr("email.utils.formatdate", lambda usegmt: date)
    return date


def test_plain_response(fixed_date: str) -> None:
    response = plain_response(403, "Forbidden: ünïcode\n", server_header="srv/1")
    body = "Forbidden: ünïcode\n".encode()
    assert response == Response(
        403,
        "Forbidden",
        Headers(
            [
                ("Date", fixed_date),
                ("Server", "srv/1"),
                ("Connection", "close"),
                ("Content-Type", "text/plain; charset=utf-8"),
                # In bytes, not characters.
                ("Content-Length", str(len(body))),
            ]
        ),
        body,
    )


def test_plain_response_without_server_header(fixed_date: str) -> None:
    response = plain_response(200, "", server_header=None)
    assert response.reason_phrase == "OK"
    assert response.body == b""
    assert list(response.headers) == [
        "date",
        "connection",
        "content-type",
        "content-length",
    ]
    assert response.headers["Content-Length"] == "0"


def test_plain_response_date_is_http_date() -> None:
    # RFC 9110 5.6.7: IMF-fixdate, in GMT.
    date = plain_response(200, "", server_header=None).headers["Date"]
    assert date.endswith(" GMT")
    assert len(date) == len("Thu, 01 Jan 2026 00:00:00 GMT")


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (200, "OK"),
        (401, "Unauthorized"),
        (426, "Upgrade Required"),
        (431, "Request Header Fields Too Large"),
        (503, "Service Unavailable"),
        # Unregistered: HTTP allows an empty reason phrase.
        (499, ""),
        (599, ""),
    ],
)
def test_plain_response_reason(status: int, reason: str) -> None:
    response = plain_response(status, "x", server_header=None)
    assert (response.status_code, response.reason_phrase) == (status, reason)


async def test_respond(fixed_date: str) -> None:
    stream, _ = trio.testing.memory_stream_pair()
    ws = ServerConnection(stream)
    response = ws.respond(401, "Who are you?\n")
    assert response == Response(
        401,
        "Unauthorized",
        Headers(
            [
                ("Date", fixed_date),
                ("Server", DEFAULT_SERVER),
                ("Connection", "close"),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", "13"),
            ]
        ),
        b"Who are you?\n",
    )


def test_names_must_be_strings() -> None:
    # The error str.lower gives, whatever the name's type.
    headers = Headers()
    with pytest.raises(AttributeError, match="'list' object has no attribute 'lower'"):
        headers[["X"]] = "1"  # type: ignore[index]
    with pytest.raises(AttributeError, match="'int' object has no attribute 'lower'"):
        headers[1] = "1"  # type: ignore[index]
    assert list(headers.raw_items()) == []


def test_kept_headers_behave_as_any() -> None:
    # The request and response a connection keeps hold tuples (_compact);
    # every method works on them, and a change makes them lists again.
    headers = Headers([("Host", "a"), ("X-Tag", "1"), ("x-tag", "2")])
    headers._compact()
    assert headers == Headers([("Host", "a"), ("X-Tag", "1"), ("x-tag", "2")])
    assert headers.get_all("X-TAG") == ["1", "2"]
    assert headers["host"] == "a"
    assert "HOST" in headers
    assert list(headers) == ["host", "x-tag"]
    assert len(headers) == 2
    assert str(headers) == "Host: a\r\nX-Tag: 1\r\nx-tag: 2\r\n\r\n"
    assert repr(headers) == "Headers([('Host', 'a'), ('X-Tag', '1'), ('x-tag', '2')])"
    assert pickle.loads(pickle.dumps(headers)) == headers
    assert copy.deepcopy(headers) == headers
    copied = headers.copy()
    copied["Host"] = "b"
    assert headers.get_all("Host") == ["a"]
    headers["X-Tag"] = "3"
    headers.update({"New": "4"})
    assert headers.get_all("x-tag") == ["1", "2", "3"]
    assert list(headers.raw_items())[-2:] == [("X-Tag", "3"), ("New", "4")]
    headers._compact()
    del headers["x-tag"]
    assert list(headers.raw_items()) == [("Host", "a"), ("New", "4")]
    headers._compact()
    with pytest.raises(AttributeError, match="'int' object has no attribute"):
        headers[1] = "x"  # type: ignore[index]
    assert list(headers.raw_items()) == [("Host", "a"), ("New", "4")]
    headers.clear()
    headers["Host"] = "c"
    assert list(headers.raw_items()) == [("Host", "c")]
