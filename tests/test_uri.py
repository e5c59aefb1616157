"""Parsing ws:// and wss:// URIs (RFC 6455 section 3)."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from hypothesis import given, settings, strategies as st

from trio_ws import InvalidHandshake, InvalidURI
from trio_ws._uri import WebSocketURI, parse_uri

# --- Schemes, ports, paths ------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "secure", "host", "port", "path", "host_header"),
    [
        ("ws://example.com", False, "example.com", 80, "/", "example.com"),
        ("wss://example.com", True, "example.com", 443, "/", "example.com"),
        ("ws://example.com/", False, "example.com", 80, "/", "example.com"),
        # The default port, given explicitly, stays out of Host.
        ("ws://example.com:80/", False, "example.com", 80, "/", "example.com"),
        ("wss://example.com:443/", True, "example.com", 443, "/", "example.com"),
        # Any other port goes into Host, even the other scheme's default.
        ("ws://example.com:443/", False, "example.com", 443, "/", "example.com:443"),
        ("wss://example.com:80/", True, "example.com", 80, "/", "example.com:80"),
        (
            "ws://example.com:8765/a",
            False,
            "example.com",
            8765,
            "/a",
            "example.com:8765",
        ),
        # An empty port is the default one (RFC 3986 section 3.2.3).
        ("ws://example.com:/", False, "example.com", 80, "/", "example.com"),
        ("ws://127.0.0.1:1/", False, "127.0.0.1", 1, "/", "127.0.0.1:1"),
        ("ws://h:65535/", False, "h", 65535, "/", "h:65535"),
        # Scheme and host name are case-insensitive, the path isn't.
        ("WSS://EXAMPLE.Com/Path", True, "example.com", 443, "/Path", "example.com"),
    ],
)
def test_scheme_host_port(
    uri: str, secure: bool, host: str, port: int, path: str, host_header: str
) -> None:
    wsuri = parse_uri(uri)
    assert wsuri == WebSocketURI(secure, host, port, path)
    assert wsuri.host_header == host_header
    assert wsuri.authorization is None


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("ws://h", "/"),
        ("ws://h?a=1", "/?a=1"),
        ("ws://h/chat?room=1&x=%20y", "/chat?room=1&x=%20y"),
        ("ws://h/a/b/../c/", "/a/b/../c/"),
        # Escapes stay as they are: %2F isn't a path separator.
        ("ws://h/a%2Fb", "/a%2Fb"),
        # An empty query says nothing.
        ("ws://h/p?", "/p"),
        # Non-ASCII characters and spaces are percent-encoded (an IRI).
        ("ws://h/é t?q=ü", "/%C3%A9%20t?q=%C3%BC"),
        ("ws://h/!$&'()*+,;=:@~", "/!$&'()*+,;=:@~"),
    ],
)
def test_path_and_query(uri: str, path: str) -> None:
    assert parse_uri(uri).path == path


def test_str() -> None:
    assert str(parse_uri("WS://Example.com:80/a?b")) == "ws://example.com/a?b"
    assert str(parse_uri("wss://[::1]:8443/")) == "wss://[::1]:8443/"
    # Credentials stay out of logs.
    assert str(parse_uri("wss://u:p@h/x")) == "wss://h/x"


def test_frozen() -> None:
    wsuri = parse_uri("ws://h/")
    with pytest.raises(AttributeError):
        wsuri.port = 81  # type: ignore[misc]


# --- Hosts: IPv6, IDNA, escapes -------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "host", "port", "host_header"),
    [
        ("ws://[::1]/", "::1", 80, "[::1]"),
        ("ws://[::1]:8765/", "::1", 8765, "[::1]:8765"),
        ("wss://[::1]:443/", "::1", 443, "[::1]"),
        ("ws://[2001:DB8::A]/", "2001:db8::a", 80, "[2001:db8::a]"),
        ("ws://[::ffff:192.0.2.1]/", "::ffff:192.0.2.1", 80, "[::ffff:192.0.2.1]"),
        # RFC 6874: the zone ID is escaped in the URI and in Host, not for
        # connecting, and keeps its case.
        ("ws://[fe80::1%25Eth0]:81/", "fe80::1%Eth0", 81, "[fe80::1%25Eth0]:81"),
    ],
)
def test_ipv6(uri: str, host: str, port: int, host_header: str) -> None:
    wsuri = parse_uri(uri)
    assert (wsuri.host, wsuri.port, wsuri.host_header) == (host, port, host_header)


def test_idna_host() -> None:
    wsuri = parse_uri("ws://Bücher.example/")
    assert wsuri.host == "xn--bcher-kva.example"
    assert wsuri.host_header == "xn--bcher-kva.example"


def test_percent_encoded_host_is_decoded() -> None:
    assert parse_uri("ws://ex%41mple.com/").host == "example.com"
    assert parse_uri("ws://b%C3%BCcher.example/").host == "xn--bcher-kva.example"


# --- User info -> Basic auth (RFC 7617) -----------------------------------------


def basic(credentials: bytes) -> str:
    return "Basic " + base64.b64encode(credentials).decode()


@pytest.mark.parametrize(
    ("uri", "user_info", "authorization"),
    [
        # The RFC 7617 section 2 example.
        (
            "ws://Aladdin:open%20sesame@h/",
            ("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        ),
        ("ws://u%3A:p%40ss@h/", ("u:", "p@ss"), basic(b"u::p@ss")),
        ("ws://u:@h/", ("u", ""), basic(b"u:")),
        ("ws://:p@h/", ("", "p"), basic(b":p")),
        # Non-ASCII credentials are sent in UTF-8 (RFC 7617 section 2.1).
        ("ws://%C3%BC:%E2%82%AC@h/", ("ü", "€"), basic("ü:€".encode())),
        ("wss://u:p@[::1]:8443/x", ("u", "p"), basic(b"u:p")),
    ],
)
def test_user_info(uri: str, user_info: tuple[str, str], authorization: str) -> None:
    wsuri = parse_uri(uri)
    assert wsuri.user_info == user_info
    assert wsuri.authorization == authorization
    # Credentials never leak into Host.
    assert "@" not in wsuri.host_header


# --- Rejections ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "msg"),
    [
        ("http://h/", "scheme isn't ws or wss"),
        ("https://h/", "scheme isn't ws or wss"),
        ("h/path", "scheme isn't ws or wss"),
        ("", "scheme isn't ws or wss"),
        ("ws://h/#frag", "fragments aren't allowed"),
        ("ws://h/#", "fragments aren't allowed"),
        ("ws://h/p?q#", "fragments aren't allowed"),
        ("ws:///path", "missing host"),
        ("ws:/h", "missing host"),
        ("ws://:80/", "missing host"),
        ("ws://u:p@/", "missing host"),
        ("ws://h:0/", "port 0 isn't a destination"),
        ("ws://h:65536/", "Port out of range 0-65535"),
        ("ws://h:x/", "Port could not be cast to integer value as 'x'"),
        ("ws://h:80:80/", "Port could not be cast to integer value as '80:80'"),
        ("ws://[::1/", "Invalid IPv6 URL"),
        ("ws://::1]/", "Invalid IPv6 URL"),
        ("ws://[::1]x/", "invalid IPv6 literal"),
        ("ws://[::1]x:80/", "invalid IPv6 literal"),
        ("ws://[v1.x]/", "invalid IPv6 address"),
        ("ws://a..b/", "invalid host name"),
        ("ws://a b/", "invalid host name"),
        ("ws://a%3Ab/", "invalid host name"),
        ("ws://a%2Fb/", "invalid host name"),
        ("ws://%ff/", "invalid host name"),
        ("ws://%/", "invalid host name"),
        ("ws://" + "a" * 64 + ".com/", "invalid host name"),
        ("ws://user@h/", "username provided without password"),
        ("ws://h/a\tb", "control characters aren't allowed"),
        ("ws://h/\r\nX-Injected: 1", "control characters aren't allowed"),
        ("ws://h/\x00", "control characters aren't allowed"),
        ("ws://h/\x7f", "control characters aren't allowed"),
        ("ws://h/\ud800", "invalid characters"),
    ],
)
def test_invalid(uri: str, msg: str) -> None:
    with pytest.raises(InvalidURI) as exc_info:
        parse_uri(uri)
    exc = exc_info.value
    assert isinstance(exc, InvalidHandshake)
    assert (exc.uri, exc.msg) == (uri, msg)
    assert str(exc) == f"{uri} isn't a valid URI: {msg}"


@pytest.mark.parametrize(
    "uri", ["ws://[foo:bar]/", "ws://[1.2.3.4]/", "ws://[::1%]/", "ws://h[x]/"]
)
def test_invalid_ipv6_address(uri: str) -> None:
    # Recent Pythons reject these inside urlsplit, with their own message;
    # older ones leave it to trio_ws.
    with pytest.raises(InvalidURI, match=r"isn't a valid URI: "):
        parse_uri(uri)


def test_invalid_chains_the_cause() -> None:
    with pytest.raises(InvalidURI) as exc_info:
        parse_uri("ws://h:x/")
    assert isinstance(exc_info.value.__cause__, ValueError)


# --- Any text: InvalidURI or a URI that makes a valid request -------------------

_URI_ALPHABET = st.sampled_from(
    [*"wsWS:/[]@%?#.:-_~!$&'()*+,;=09afAF ", "é", "€", "\t", "\x00", "\ud800"]
)


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(_URI_ALPHABET, max_size=40),
        st.builds(
            lambda scheme, rest: scheme + rest,
            st.sampled_from(["ws://", "wss://", "WS://", "ws:", "ws:///"]),
            st.text(_URI_ALPHABET, max_size=40),
        ),
    )
)
def test_any_text(text: str) -> None:
    try:
        wsuri = parse_uri(text)
    except InvalidURI:
        return
    # Whatever was accepted fits in a request line and a Host header.
    for part in (wsuri.host_header, wsuri.path, str(wsuri)):
        assert part.isascii()
        assert not any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in part)
    assert wsuri.path.startswith("/")
    assert 0 < wsuri.port < 65536
    assert wsuri.host
    assert parse_uri(str(wsuri)) == dataclasses.replace(wsuri, user_info=None)


def test_valid_uris_are_parsed_once_unless_they_carry_credentials() -> None:
    assert parse_uri("ws://example.com/a") is parse_uri("ws://example.com/a")
    # Credentials aren't kept beyond the caller's own string.
    with_credentials = "ws://user:pass@example.com/a"
    first = parse_uri(with_credentials)
    assert first == parse_uri(with_credentials)
    assert first is not parse_uri(with_credentials)
    # Errors are raised every time.
    for _ in range(2):
        with pytest.raises(InvalidURI, match="scheme isn't ws or wss"):
            parse_uri("http://example.com/")
