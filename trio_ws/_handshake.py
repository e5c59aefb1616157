"""Shared pieces of the opening handshake (RFC 6455 section 4), without I/O.

Role
----

The opening handshake is split by role: :mod:`trio_ws._handshake_client`
(:class:`~trio_ws._handshake_client.ClientHandshake`, section 4.1),
:mod:`trio_ws._handshake_server`
(:class:`~trio_ws._handshake_server.ServerHandshake`, sections 4.2.1 and 4.2.2)
and :mod:`trio_ws._handshake_deflate` (permessage-deflate negotiation, RFC
7692 section 7). This module holds what they share: the default
identification headers, :class:`HandshakeResult`, :exc:`InvalidRequest`, and
the header helpers (HTTP lists of RFC 9110 section 5.6.1, the token grammar
of RFC 6455 section 9.1, the header encoding for h11).

Theory of operation
-------------------

Both sides follow the sans-I/O shape of h11 and wsproto: they take the bytes
read from the network and give back the bytes to write; the connection layer
owns the stream and the timeouts. h11 parses and serialises the HTTP/1.1
messages on both sides and bounds the size of a head it buffers
(``max_incomplete_event_size``); a head that arrives whole in one read is
measured against the same bound. When h11 sees the ``101`` response to a
request carrying ``Upgrade``, it stops parsing and hands back the bytes that
follow the head untouched: those are the first WebSocket frames, returned as
``trailing_data``.

Failures never escape as h11 or wsproto exceptions. On the client side, a bad
response raises :exc:`~trio_ws.InvalidHandshake` or one of its subclasses. On
the server side, a bad request becomes a short plain-text 4xx response: parse
errors raise :exc:`InvalidRequest`, which carries the status for
:meth:`~trio_ws._handshake_server.ServerHandshake.bad_request`.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from typing import TYPE_CHECKING, Final, NamedTuple, final

import h11

from ._exceptions import InvalidHandshake
from ._http import Headers, _lower
from ._version import __version__

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ._extensions import DeflateParams

__all__ = [
    "DEFAULT_SERVER",
    "DEFAULT_USER_AGENT",
    "HandshakeResult",
    "InvalidRequest",
]

_PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"

#: The default ``User-Agent`` header of clients.
DEFAULT_USER_AGENT = f"Python/{_PYTHON_VERSION} trio_ws/{__version__}"

#: The default ``Server`` header of servers.
DEFAULT_SERVER = f"Python/{_PYTHON_VERSION} trio_ws/{__version__}"

_COMPRESSIONS = ("deflate", None)


@final
@dataclasses.dataclass
class HandshakeResult:
    """What a successful opening handshake settled.

    Attributes:
        subprotocol: The subprotocol both sides agreed on, if any.
        extensions: The negotiated permessage-deflate parameters, if any (at
            most one item), for :class:`~trio_ws._protocol.Protocol`.
        trailing_data: The bytes received after the HTTP head: the first
            WebSocket frames, to process before reading more.
    """

    subprotocol: str | None
    extensions: list[DeflateParams]
    trailing_data: bytes


class InvalidRequest(InvalidHandshake):
    """The server can't upgrade this request and answers it with an error.

    Args:
        status_code: The HTTP status of the answer (400, 405, 431...).
        msg: A short explanation, which goes into the response body.
    """

    def __init__(self, status_code: int, msg: str) -> None:
        super().__init__(status_code, msg)
        self.status_code = status_code
        self.msg = msg

    def __str__(self) -> str:
        return self.msg


# Header parsing. HTTP lists are comma separated with optional whitespace
# (RFC 9110 section 5.6.1); empty elements are ignored, as that section
# allows. Tokens and quoted strings follow RFC 6455 section 9.1.

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_OWS = r"[ \t]*"
_TOKEN_RE = re.compile(_TOKEN)


def _header_value(headers: Headers, name: str) -> str | None:
    """All values of a header joined with commas, ``None`` if it's absent."""
    values = headers.get_all(name)
    return ", ".join(values) if values else None


def _split_list(values: list[str]) -> list[str]:
    """The elements of a comma-separated header that may be repeated."""
    elements = (
        element.strip(" \t") for value in values for element in value.split(",")
    )
    return [element for element in elements if element]


def _has_token(headers: Headers, name: str, token: str) -> bool:
    """Whether a comma-separated header lists ``token``, ignoring case."""
    values = headers.get_all(name)
    # The usual header, one value that is the token, needs no splitting.
    if len(values) == 1 and values[0].lower() == token:
        return True
    return token in (element.lower() for element in _split_list(values))


def _next_event(
    conn: h11.Connection,
    too_large: Callable[[], InvalidHandshake],
    invalid: Callable[[], InvalidHandshake],
) -> type[h11.NEED_DATA | h11.PAUSED] | h11.Event:
    """``conn.next_event()``, h11's refusal turned into trio_ws's error.

    ``too_large()`` for a head over the bound (h11 hints 431), ``invalid()``
    for anything else h11 can't parse; both chained to h11's error.
    """
    try:
        return conn.next_event()
    except h11.RemoteProtocolError as exc:
        raise (too_large() if exc.error_status_hint == 431 else invalid()) from exc


def _to_h11_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    """Encode headers for h11: names in ASCII, values in Latin-1.

    Raises:
        ValueError: If a name or value can't be encoded.
    """
    try:
        return [
            (name.encode("ascii"), value.encode("latin-1"))
            for name, value in headers.raw_items()
        ]
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"header names must be ASCII and values Latin-1: {exc.object!r}"
        ) from exc


#: Header names as received, decoded once: (lower-cased, as given) by their
#: bytes, so that the requests of every connection share these strings.
#: Bounded, as names come from the network; past the bound, names are decoded
#: each time.
_WIRE_NAMES: dict[bytes, tuple[str, str]] = {}
_WIRE_NAMES_MAX: Final = 512
#: Likewise for the values of the headers that most clients (or servers)
#: send alike on every connection; a key, a date or a cookie would only
#: fill the cache.
_WIRE_VALUES: dict[bytes, str] = {}
_WIRE_VALUES_MAX: Final = 512
#: Longer names or values aren't kept: 512 of them could be 8 MiB.
_WIRE_STRING_MAX: Final = 128
_SHARED_VALUES: Final = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "origin",
        "user-agent",
        "server",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    }
)


def _from_h11_headers(raw_items: Iterable[tuple[bytes, bytes]]) -> Headers:
    """Decode headers from h11; Latin-1 maps every byte, so nothing is lost."""
    keys: list[str] = []
    names: list[str] = []
    values: list[str] = []
    for raw_name, raw_value in raw_items:
        try:
            key, name = _WIRE_NAMES[raw_name]
        except KeyError:
            name = raw_name.decode("ascii")
            key = _lower(name)
            if len(_WIRE_NAMES) < _WIRE_NAMES_MAX and len(name) <= _WIRE_STRING_MAX:
                _WIRE_NAMES[raw_name] = (key, name)
        if key in _SHARED_VALUES:
            try:
                value = _WIRE_VALUES[raw_value]
            except KeyError:
                value = raw_value.decode("latin-1")
                if (
                    len(_WIRE_VALUES) < _WIRE_VALUES_MAX
                    and len(value) <= _WIRE_STRING_MAX
                ):
                    _WIRE_VALUES[raw_value] = value
        else:
            value = raw_value.decode("latin-1")
        keys.append(key)
        names.append(name)
        values.append(value)
    # Tuples: what a connection keeps (see Headers._compact).
    return Headers._from_lists(tuple(keys), tuple(names), tuple(values))


# The common case without h11. Most handshakes are a few well-formed lines
# that arrive in one read, and h11's general machinery costs more than the
# rest of the handshake put together. These helpers parse and write such
# heads directly and decline (return None) anything else, which then goes
# through h11 as before: a head is taken here only if h11 would take it
# without error and make the same event of it, so behaviour (results, errors,
# their texts) is h11's in every case. The grammar is h11's (h11/_abnf.py),
# matched the way h11 matches it (fullmatch, line by line).

_H11_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_H11_FIELD_VCHAR = rb"[^\x00\s]"
_H11_FIELD_VALUE = (
    rb"(?:" + _H11_FIELD_VCHAR + rb"+(?:[ \t]+" + _H11_FIELD_VCHAR + rb"+)*)?"
)
_FIELD_NAME_RE = re.compile(_H11_TOKEN)
_FIELD_VALUE_RE = re.compile(_H11_FIELD_VALUE)
_HEADER_LINE_RE = re.compile(
    rb"(" + _H11_TOKEN + rb"):[ \t]*(" + _H11_FIELD_VALUE + rb")[ \t]*"
)
# Only GET in HTTP/1.1 and 101 responses in HTTP/1.1 are taken here.
_GET_LINE_RE = re.compile(rb"GET ([\x21-\x7e]+) HTTP/1\.1")
_STATUS_101_RE = re.compile(
    rb"HTTP/1\.1 101(?: ((?:[ \t]|" + _H11_FIELD_VCHAR + rb")*))?"
)
_TARGET_RE = re.compile(rb"[\x21-\x7e]+")
# Headers that h11 interprets (framing) or orders (Host) when it writes.
_FRAMING = (b"content-length", b"transfer-encoding")
# Header lines that trio_ws sends on every connection: _write_head takes
# them without matching two regular expressions each (the filter below
# keeps only what those would accept).
_KNOWN_FIELDS: Final = frozenset(
    (name, value)
    for name, value in [
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Version", b"13"),
        (b"User-Agent", DEFAULT_USER_AGENT.encode("latin-1")),
        (b"Server", DEFAULT_SERVER.encode("latin-1")),
    ]
    if _FIELD_NAME_RE.fullmatch(name)
    and _FIELD_VALUE_RE.fullmatch(value)
    and name.lower() not in (*_FRAMING, b"host")
)


class _Head(NamedTuple):
    """A head parsed as h11 would: see :func:`_parse_head`."""

    start: re.Match[bytes]
    headers: list[tuple[bytes, bytes]]
    hosts: int
    upgrade: bool
    size: int


def _parse_head(
    data: bytes, max_size: int, start_re: re.Pattern[bytes]
) -> _Head | None:
    """A head, complete in ``data``, whose start line matches ``start_re``.

    Returns:
        The start line's match, the headers, the number of Host headers,
        whether there is a non-empty Upgrade header (h11 then allows a 101)
        and the size of the head; ``None`` if the head is incomplete, larger
        than ``max_size``, or has a line that h11 would fold or refuse, or a
        framing header. h11 also ends a head at LF LF or LF CR LF, and takes
        LF alone as a line end: the lines split here then hold an LF, which
        no pattern above matches.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0 or end + 4 > max_size:
        return None
    start, *lines = data[:end].split(b"\r\n")
    match = start_re.fullmatch(start)
    if match is None:
        return None
    headers: list[tuple[bytes, bytes]] = []
    hosts = 0
    upgrade = False
    for line in lines:
        header = _HEADER_LINE_RE.fullmatch(line)
        if header is None:
            return None
        name, value = header.groups()
        lower = name.lower()
        if lower in _FRAMING:
            return None
        if lower == b"host":
            hosts += 1
        elif lower == b"upgrade" and value.strip(b", \t"):
            upgrade = True
        headers.append((name, value))
    return _Head(match, headers, hosts, upgrade, end + 4)


def _parse_request(data: bytes, max_size: int) -> _Head | None:
    """A GET request head in HTTP/1.1 that h11 would accept (see ``_parse_head``).

    The target is ``start.group(1)``.
    """
    head = _parse_head(data, max_size, _GET_LINE_RE)
    # h11 requires exactly one Host header in HTTP/1.1.
    return head if head is not None and head.hosts == 1 else None


def _write_head(start: bytes, headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The head h11 would write: ``start`` line, then ``headers``.

    ``None`` if h11 would refuse a header, or treat it specially: framing
    headers, and Host, which h11 writes first.
    """
    parts = [start, b"\r\n"]
    for name, value in headers:
        if (name, value) in _KNOWN_FIELDS:
            parts += (name, b": ", value, b"\r\n")
            continue
        if (
            _FIELD_NAME_RE.fullmatch(name) is None
            or _FIELD_VALUE_RE.fullmatch(value) is None
        ):
            return None
        lower = name.lower()
        if lower in _FRAMING or lower == b"host":
            return None
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def _write_request(
    target: bytes, host: tuple[bytes, bytes], headers: list[tuple[bytes, bytes]]
) -> bytes | None:
    """The GET request h11 would write: Host first, then ``headers``.

    ``None`` if h11 would refuse or change it (see :func:`_write_head`).
    """
    name, value = host
    if (
        _TARGET_RE.fullmatch(target) is None
        or name.lower() != b"host"
        or _FIELD_VALUE_RE.fullmatch(value) is None
    ):
        return None
    return _write_head(b"GET %s HTTP/1.1\r\n%s: %s" % (target, name, value), headers)


def _check_compression(compression: str | None) -> None:
    if compression not in _COMPRESSIONS:
        raise ValueError(f"unsupported compression: {compression!r}")
