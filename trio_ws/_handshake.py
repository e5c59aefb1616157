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
from typing import TYPE_CHECKING, final

from ._exceptions import InvalidHandshake
from ._http import Headers
from ._version import __version__

if TYPE_CHECKING:
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
    return token in (element.lower() for element in _split_list(headers.get_all(name)))


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


def _from_h11_headers(raw_items: list[tuple[bytes, bytes]]) -> Headers:
    """Decode headers from h11; Latin-1 maps every byte, so nothing is lost."""
    return Headers(
        (name.decode("ascii"), value.decode("latin-1")) for name, value in raw_items
    )


def _check_compression(compression: str | None) -> None:
    if compression not in _COMPRESSIONS:
        raise ValueError(f"unsupported compression: {compression!r}")
