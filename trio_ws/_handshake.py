"""The opening handshake of RFC 6455 section 4, for both sides, without I/O.

Theory of operation
-------------------

:class:`ClientHandshake` and :class:`ServerHandshake` follow the sans-I/O
shape of h11 and wsproto: they take the bytes read from the network and give
back the bytes to write; the connection layer owns the stream and the
timeouts. A client builds its request up front, sends
:meth:`ClientHandshake.data_to_send`, feeds what it reads to
:meth:`ClientHandshake.receive_data` until that returns ``True``, then calls
:meth:`ClientHandshake.result`. A server feeds
:meth:`ServerHandshake.receive_data` until it returns a :class:`Request`,
calls :meth:`ServerHandshake.accept` (or builds its own answer), and writes
:meth:`ServerHandshake.data_for_response`.

h11 parses and serialises the HTTP/1.1 messages on both sides and bounds the
size of a head it buffers (``max_incomplete_event_size``); a head that
arrives whole in one read is measured here against the same bound. When h11
sees the ``101`` response to a request carrying ``Upgrade``, it stops parsing
and hands back the bytes that follow the head untouched: those are the first
WebSocket frames, returned as ``trailing_data``.

wsproto computes keys (:func:`~wsproto.utilities.generate_nonce`,
:func:`~wsproto.utilities.generate_accept_token`). permessage-deflate (RFC
7692) is negotiated here, offers and answers checked against its section 7,
and the outcome is a :class:`~trio_ws._extensions.DeflateParams` for the
protocol core; wsproto's extension class isn't used, as its parsing is lax
and it refuses 8-bit windows, which RFC 7692 allows and trio_ws supports.

Failures never escape as h11 or wsproto exceptions. On the client side, a bad
response raises :exc:`~trio_ws.InvalidHandshake` or one of its subclasses. On
the server side, a bad request becomes a short plain-text 4xx response: parse
errors raise :exc:`InvalidRequest`, which carries the status for
:meth:`ServerHandshake.bad_request`, and :meth:`ServerHandshake.accept` returns
the rejection directly.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import sys
import urllib.parse
from typing import TYPE_CHECKING, final

import h11
from wsproto.utilities import generate_accept_token, generate_nonce

from ._exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidStatus,
    NegotiationError,
)
from ._extensions import DeflateParams
from ._http import Headers, Request, Response, plain_response
from ._version import __version__

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._http import HeadersLike
    from ._uri import WebSocketURI

__all__ = [
    "DEFAULT_SERVER",
    "DEFAULT_USER_AGENT",
    "ClientHandshake",
    "HandshakeResult",
    "InvalidRequest",
    "ServerHandshake",
]

_PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"

#: The default ``User-Agent`` header of clients.
DEFAULT_USER_AGENT = f"Python/{_PYTHON_VERSION} trio_ws/{__version__}"

#: The default ``Server`` header of servers.
DEFAULT_SERVER = f"Python/{_PYTHON_VERSION} trio_ws/{__version__}"

_COMPRESSIONS = ("deflate", None)

_DEFLATE = "permessage-deflate"
# Parameters in the order wsproto used to answer with them (RFC 7692 7.1).
_DEFLATE_PARAMS = (
    "client_no_context_takeover",
    "server_no_context_takeover",
    "client_max_window_bits",
    "server_max_window_bits",
)

# Asking for client_max_window_bits without a value tells the server that the
# client can use a smaller window if asked to (RFC 7692 section 7.1.2.2).
_DEFLATE_OFFER = f"{_DEFLATE}; client_max_window_bits"

_REJECTION = "Failed to open a WebSocket connection: {}.\n"
# Error messages quote what the client sent, up to the size of a request
# head; the body only quotes the beginning of them.
_MAX_QUOTE = 200
_BROWSER_HINT = (
    "\nYou cannot access a WebSocket server directly with a browser. "
    "You need a WebSocket client.\n"
)


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
# allows. The Sec-WebSocket-Extensions grammar is RFC 6455 section 9.1.

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_OWS = r"[ \t]*"
_TOKEN_RE = re.compile(_TOKEN)
_PARAM_RE = re.compile(
    rf"{_OWS};{_OWS}({_TOKEN})(?:{_OWS}={_OWS}({_TOKEN}|{_QUOTED}))?"
)
_EXTENSION_RE = re.compile(
    rf"({_TOKEN})((?:{_OWS};{_OWS}{_TOKEN}(?:{_OWS}={_OWS}(?:{_TOKEN}|{_QUOTED}))?)*){_OWS}"
)
_UNESCAPE_RE = re.compile(r"\\(.)")

# RFC 7692 section 7.1.2.1: window bits are 8 to 15, without leading zeros.
_WINDOW_BITS_RE = re.compile(r"[89]|1[0-5]")

_ExtensionOffer = tuple[str, list[tuple[str, str | None]]]
_DeflateConfig = dict[str, str | None]


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


def _parse_extensions(values: list[str]) -> list[_ExtensionOffer]:
    """Parse ``Sec-WebSocket-Extensions`` values into names and parameters.

    Quoted parameter values are unquoted; a parameter without a value has
    ``None``.

    Raises:
        ValueError: If a value doesn't follow RFC 6455 section 9.1.
    """
    extensions: list[_ExtensionOffer] = []
    for value in values:
        pos = 0
        while True:
            # Skip separators, along with any empty list elements.
            while pos < len(value) and value[pos] in " \t,":
                pos += 1
            if pos == len(value):
                break
            match = _EXTENSION_RE.match(value, pos)
            if match is None:
                raise ValueError(f"expected an extension at position {pos}")
            params: list[tuple[str, str | None]] = []
            for param in _PARAM_RE.finditer(match.group(2)):
                name, param_value = param.group(1), param.group(2)
                if param_value is not None and param_value.startswith('"'):
                    param_value = _UNESCAPE_RE.sub(r"\1", param_value[1:-1])
                    # RFC 6455 section 9.1: once unquoted, it must be a token.
                    if not _TOKEN_RE.fullmatch(param_value):
                        raise ValueError(f"quoted value of {name} isn't a token")
                params.append((name, param_value))
            extensions.append((match.group(1), params))
            pos = match.end()
            if pos < len(value) and value[pos] != ",":
                raise ValueError(f"expected a comma at position {pos}")
    return extensions


def _check_deflate(
    params: list[tuple[str, str | None]], *, offer: bool
) -> _DeflateConfig:
    """Check permessage-deflate parameters against RFC 7692 section 7.

    Args:
        params: The parameters of an offer or of an answer.
        offer: Whether they come from a client's offer (where
            ``client_max_window_bits`` may come without a value) or from a
            server's answer.

    Returns:
        The parameters by name, values unquoted.

    Raises:
        ValueError: If a parameter is unknown, repeated or has an invalid
            value.
    """
    config: _DeflateConfig = {}
    for name, value in params:
        if name in config:
            raise ValueError(f"duplicate parameter {name}")
        if name not in _DEFLATE_PARAMS:
            raise ValueError(f"unknown parameter {name}")
        if name.endswith("_no_context_takeover"):
            if value is not None:
                raise ValueError(f"{name} takes no value")
        elif value is None:
            # RFC 7692 7.1.2.2: only the client's offer may leave the client
            # window open ("any size the server asks for").
            if not (offer and name == "client_max_window_bits"):
                raise ValueError(f"{name} needs a value")
        elif not _WINDOW_BITS_RE.fullmatch(value):
            raise ValueError(f"invalid value for {name}: {value}")
        config[name] = value
    return config


def _deflate_params(config: _DeflateConfig) -> DeflateParams:
    """The parameters agreed in a server's answer (RFC 7692 section 7.1)."""
    return DeflateParams(
        server_no_context_takeover="server_no_context_takeover" in config,
        client_no_context_takeover="client_no_context_takeover" in config,
        server_max_window_bits=int(config.get("server_max_window_bits") or 15),
        client_max_window_bits=int(config.get("client_max_window_bits") or 15),
    )


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


@final
class ClientHandshake:
    """The client side of the opening handshake (RFC 6455 section 4.1).

    The request is built by the constructor and available as
    :attr:`request`.

    Args:
        uri: Where to connect.
        origin: The ``Origin`` header, if any.
        subprotocols: Subprotocols to offer, in order of preference.
        additional_headers: Headers added after the ones the handshake
            needs; a ``User-Agent`` among them replaces the default one.
        user_agent_header: The ``User-Agent`` header, or ``None`` to send none.
        compression: ``"deflate"`` to offer permessage-deflate, ``None`` not
            to offer any extension.
        max_response_size: The largest response head accepted, in bytes; the
            body of a response other than 101 is also cut at that size.

    Raises:
        ValueError: If ``compression`` is unknown, a subprotocol isn't an HTTP
            token, or a header can't be sent.
    """

    def __init__(
        self,
        uri: WebSocketURI,
        *,
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        additional_headers: HeadersLike | None = None,
        user_agent_header: str | None = DEFAULT_USER_AGENT,
        compression: str | None = "deflate",
        max_response_size: int = 64 * 1024,
    ) -> None:
        _check_compression(compression)
        self._subprotocols = list(subprotocols or ())
        for subprotocol in self._subprotocols:
            if not _TOKEN_RE.fullmatch(subprotocol):
                raise ValueError(f"invalid subprotocol: {subprotocol!r}")
        self._compression = compression
        self._max_size = max_response_size
        self._key = generate_nonce()

        # RFC 6455 section 4.1 lists the headers of the request.
        headers = Headers()
        headers["Host"] = uri.host_header
        headers["Upgrade"] = "websocket"
        headers["Connection"] = "Upgrade"
        headers["Sec-WebSocket-Key"] = self._key.decode("ascii")
        headers["Sec-WebSocket-Version"] = "13"
        if uri.authorization is not None:
            headers["Authorization"] = uri.authorization
        if origin is not None:
            headers["Origin"] = origin
        if self._subprotocols:
            headers["Sec-WebSocket-Protocol"] = ", ".join(self._subprotocols)
        if compression == "deflate":
            headers["Sec-WebSocket-Extensions"] = _DEFLATE_OFFER
        if additional_headers is not None:
            headers.update(additional_headers)
        if user_agent_header is not None and "User-Agent" not in headers:
            headers["User-Agent"] = user_agent_header

        #: The handshake request.
        self.request = Request(uri.path, headers)
        #: The response, once :meth:`receive_data` returned ``True``.
        self.response: Response | None = None

        self._conn = h11.Connection(
            h11.CLIENT, max_incomplete_event_size=max_response_size
        )
        try:
            event = h11.Request(
                method="GET", target=uri.path, headers=_to_h11_headers(headers)
            )
            self._outgoing = self._conn.send(event) + self._conn.send(
                h11.EndOfMessage()
            )
        except h11.LocalProtocolError as exc:
            raise ValueError(f"invalid request: {exc}") from exc
        self._received = 0
        self._consumed = 0
        self._head: h11.Response | None = None
        self._body = bytearray()
        self._trailing_data = b""

    def data_to_send(self) -> bytes:
        """Return the bytes to write: the request, the first time only.

        Returns:
            The serialised request on the first call, then ``b""``.
        """
        data, self._outgoing = self._outgoing, b""
        return data

    def receive_data(self, data: bytes | bytearray) -> bool:
        """Feed bytes read from the server.

        Once the response is complete, :attr:`response` is set, and any bytes
        after a 101 response head, now or in later calls, are kept for
        :meth:`result` as ``trailing_data``.

        Args:
            data: The bytes read; ``b""`` is ignored (see :meth:`receive_eof`).

        Returns:
            Whether the response is complete.

        Raises:
            InvalidHandshake: If the response isn't valid HTTP or its head
                is larger than ``max_response_size``.
        """
        if self.response is not None:
            if self.response.status_code == 101:
                self._trailing_data += data
            return True
        if data:
            self._conn.receive_data(bytes(data))
            self._received += len(data)
        return self._process()

    def receive_eof(self) -> None:
        """Tell the handshake that the server closed the connection.

        A response body cut short by the end of the connection is kept as it
        is: its status matters more than the body.

        Raises:
            InvalidHandshake: If the response head wasn't complete.
        """
        if self.response is not None:
            return
        self._conn.receive_data(b"")
        try:
            self._process()
        except InvalidHandshake as exc:
            if self._head is None:
                raise InvalidHandshake("connection closed during handshake") from exc
            self._complete()

    def _process(self) -> bool:
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as exc:
                if exc.error_status_hint == 431:
                    raise self._too_large() from exc
                raise InvalidHandshake("did not receive a valid HTTP response") from exc
            if event is h11.NEED_DATA:
                return False
            if isinstance(event, h11.InformationalResponse):
                self._check_head_size()
                # Other 1xx responses, such as 100 Continue, announce the
                # final one; RFC 9110 section 15.2 asks clients to skip them.
                if event.status_code == 101:
                    self._trailing_data = self._conn.trailing_data[0]
                    self.response = Response(
                        101,
                        event.reason.decode("latin-1"),
                        _from_h11_headers(event.headers.raw_items()),
                    )
                    return True
            elif isinstance(event, h11.Response):
                self._check_head_size()
                self._head = event
            elif isinstance(event, h11.Data):
                room = self._max_size - len(self._body)
                if len(event.data) > room:
                    # The body only explains a refusal; keep its beginning.
                    self._body += event.data[:room]
                    self._complete()
                    return True
                self._body += event.data
            else:
                # The end of the response; the state machine allows nothing
                # else before it.
                assert isinstance(event, h11.EndOfMessage), event
                self._complete()
                return True

    def _too_large(self) -> InvalidHandshake:
        return InvalidHandshake(f"response head exceeds {self._max_size} bytes")

    def _check_head_size(self) -> None:
        # h11 only bounds heads that are still incomplete; one that arrived
        # in a single read is measured by what h11 consumed to parse it.
        consumed = self._received - len(self._conn.trailing_data[0])
        size, self._consumed = consumed - self._consumed, consumed
        if size > self._max_size:
            raise self._too_large()

    def _complete(self) -> None:
        assert self._head is not None
        self.response = Response(
            self._head.status_code,
            self._head.reason.decode("latin-1"),
            _from_h11_headers(self._head.headers.raw_items()),
            bytes(self._body),
        )

    def result(self) -> HandshakeResult:
        """Check the response and return what it settled.

        Returns:
            The negotiated subprotocol and extensions, and the bytes that
            followed the response head.

        Raises:
            RuntimeError: If the response isn't complete yet.
            InvalidStatus: If the status isn't 101; it carries the response.
            InvalidHeader: If ``Upgrade``, ``Connection`` or
                ``Sec-WebSocket-Accept`` is missing or wrong, or
                ``Sec-WebSocket-Protocol`` or ``Sec-WebSocket-Extensions``
                is malformed.
            NegotiationError: If the server picked a subprotocol or an
                extension that wasn't offered, or extension parameters that
                RFC 7692 forbids.
        """
        response = self.response
        if response is None:
            raise RuntimeError("the handshake response isn't complete")
        if response.status_code != 101:
            raise InvalidStatus(response)
        headers = response.headers

        # RFC 6455 section 4.1, items 2 to 6 of the client's checks.
        upgrade = _split_list(headers.get_all("Upgrade"))
        if [protocol.lower() for protocol in upgrade] != ["websocket"]:
            raise InvalidHeader("Upgrade", _header_value(headers, "Upgrade"))
        if not _has_token(headers, "Connection", "upgrade"):
            raise InvalidHeader("Connection", _header_value(headers, "Connection"))
        accept = headers.get_all("Sec-WebSocket-Accept")
        expected = generate_accept_token(self._key).decode("ascii")
        if accept != [expected]:
            raise InvalidHeader(
                "Sec-WebSocket-Accept", _header_value(headers, "Sec-WebSocket-Accept")
            )

        return HandshakeResult(
            self._negotiated_subprotocol(headers),
            self._negotiated_extensions(headers),
            self._trailing_data,
        )

    def _negotiated_subprotocol(self, headers: Headers) -> str | None:
        value = _header_value(headers, "Sec-WebSocket-Protocol")
        if value is None:
            return None
        subprotocols = _split_list(headers.get_all("Sec-WebSocket-Protocol"))
        if len(subprotocols) != 1:
            raise InvalidHeader("Sec-WebSocket-Protocol", value)
        # RFC 6455 section 4.1, item 6: only an offered one may come back.
        if subprotocols[0] not in self._subprotocols:
            raise NegotiationError(f"unexpected subprotocol: {subprotocols[0]}")
        return subprotocols[0]

    def _negotiated_extensions(self, headers: Headers) -> list[DeflateParams]:
        values = headers.get_all("Sec-WebSocket-Extensions")
        try:
            accepted = _parse_extensions(values)
        except ValueError as exc:
            raise InvalidHeader(
                "Sec-WebSocket-Extensions",
                _header_value(headers, "Sec-WebSocket-Extensions"),
            ) from exc
        extensions: list[DeflateParams] = []
        for name, params in accepted:
            # RFC 6455 section 4.1, item 5: only an offered extension may
            # come back, and permessage-deflate was offered once at most.
            if name != _DEFLATE or self._compression is None:
                raise NegotiationError(f"unexpected extension: {name}")
            if extensions:
                raise NegotiationError(f"{name} accepted twice")
            try:
                config = _check_deflate(params, offer=False)
            except ValueError as exc:
                raise NegotiationError(f"invalid {name} response: {exc}") from exc
            extensions.append(_deflate_params(config))
        return extensions


@final
class ServerHandshake:
    """The server side of the opening handshake (RFC 6455 section 4.2).

    Args:
        max_request_size: The largest request head accepted, in bytes.
    """

    def __init__(self, *, max_request_size: int = 16 * 1024) -> None:
        self._conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=max_request_size
        )
        self._max_size = max_request_size
        self._received = 0
        self._request: Request | None = None
        #: Bytes received after the request head, once it is complete.
        self.trailing_data = b""

    def receive_data(self, data: bytes | bytearray) -> Request | None:
        """Feed bytes read from the client.

        Call it until it returns the request. Bytes that follow the request
        head, now or in later calls, go to :attr:`trailing_data`.

        Args:
            data: The bytes read; ``b""`` is ignored (see :meth:`receive_eof`).

        Returns:
            The request once its head is complete, else ``None`` (also on
            calls after it was returned).

        Raises:
            InvalidRequest: If the request can't be upgraded whatever its
                headers: malformed HTTP (400), a head over
                ``max_request_size`` (431), a method other than GET (405),
                another HTTP version than 1.x (400), a body (400), a target
                that isn't a path or an HTTP(S) URI (400).
                Answer with :meth:`bad_request`.
        """
        if self._request is not None:
            self.trailing_data += data
            return None
        if data:
            self._conn.receive_data(bytes(data))
            self._received += len(data)
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as exc:
                if exc.error_status_hint == 431:
                    raise self._too_large() from exc
                raise InvalidRequest(
                    400, "did not receive a valid HTTP request"
                ) from exc
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.Request):
                self._request = self._check_request(event)
                continue
            # Bodies are refused, so the request ends right after its head.
            assert isinstance(event, h11.EndOfMessage), event
            assert self._request is not None
            self.trailing_data = self._conn.trailing_data[0]
            return self._request

    def _too_large(self) -> InvalidRequest:
        return InvalidRequest(431, f"request head exceeds {self._max_size} bytes")

    def _check_request(self, event: h11.Request) -> Request:
        # h11 only bounds heads that are still incomplete; one that arrived
        # in a single read is measured by what h11 consumed to parse it.
        if self._received - len(self._conn.trailing_data[0]) > self._max_size:
            raise self._too_large()
        # RFC 6455 section 4.1: "The method of the request MUST be GET, and
        # the HTTP version MUST be at least 1.1."
        version = event.http_version
        if version == b"1.0":
            raise InvalidRequest(400, "WebSocket requires HTTP/1.1")
        if not version.startswith(b"1."):
            # 505 would fit too, but users are promised a 4xx.
            raise InvalidRequest(400, f"unsupported HTTP version: {version.decode()}")
        if event.method != b"GET":
            raise InvalidRequest(
                405, f"unsupported HTTP method: {event.method.decode()}"
            )
        # A body would have to be read before the frames that follow it; no
        # WebSocket client sends one.
        headers = _from_h11_headers(event.headers.raw_items())
        if "Transfer-Encoding" in headers or headers.get_all("Content-Length") not in (
            [],
            ["0"],
        ):
            raise InvalidRequest(400, "unsupported request body")
        # h11 only accepts ASCII request targets.
        target = event.target.decode("ascii")
        path = _resource_name(target)
        if path is None:
            raise InvalidRequest(400, "invalid request target")
        return Request(path, headers)

    def receive_eof(self) -> None:
        """Tell the handshake that the client closed the connection.

        Raises:
            InvalidHandshake: If the request wasn't complete.
        """
        if self._request is not None:
            return
        if self._received == 0:
            raise InvalidHandshake("connection closed before any request")
        raise InvalidHandshake("connection closed during handshake")

    def accept(
        self,
        request: Request,
        *,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: Callable[[Sequence[str]], str | None] | None = None,
        origins: Sequence[str | None] | None = None,
        compression: str | None = "deflate",
        server_header: str | None = DEFAULT_SERVER,
    ) -> tuple[Response, HandshakeResult | None]:
        """Check an upgrade request and build the answer.

        Args:
            request: The request returned by :meth:`receive_data`, possibly
                modified since.
            subprotocols: Subprotocols the server supports, in order of
                preference; the first one the client offered is chosen.
            select_subprotocol: Chooses the subprotocol instead, given those
                the client offered (maybe none); ``None`` means no subprotocol.
            origins: Accepted values of the ``Origin`` header; ``None`` in it
                accepts requests without one. ``None`` accepts any origin.
            compression: ``"deflate"`` to accept permessage-deflate when
                offered, ``None`` to accept no extension.
            server_header: The ``Server`` header, or ``None`` to send none.

        Returns:
            ``(response, result)``: the ``101 Switching Protocols`` response
            and the negotiated parameters, or a 4xx response with a short
            plain-text body and ``None`` when the request can't be upgraded:
            426 without ``Upgrade: websocket`` or without
            ``Sec-WebSocket-Version: 13``, 400 for a bad ``Connection``,
            ``Sec-WebSocket-Key``, ``Sec-WebSocket-Extensions`` or
            ``Sec-WebSocket-Protocol`` header or several ``Origin`` headers,
            403 for an ``Origin`` not in ``origins``.

        Raises:
            ValueError: If ``compression`` is unknown, or
                ``select_subprotocol`` returned a subprotocol that the client
                didn't offer. Whatever ``select_subprotocol`` raises
                propagates.
        """
        _check_compression(compression)
        try:
            response, result = self._negotiate(
                request, subprotocols, select_subprotocol, origins, compression
            )
        except InvalidRequest as exc:
            return self.bad_request(exc, server_header=server_header), None
        if server_header is not None:
            response.headers["Server"] = server_header
        return response, result

    def _negotiate(
        self,
        request: Request,
        subprotocols: Sequence[str] | None,
        select_subprotocol: Callable[[Sequence[str]], str | None] | None,
        origins: Sequence[str | None] | None,
        compression: str | None,
    ) -> tuple[Response, HandshakeResult]:
        headers = request.headers

        # RFC 6455 section 4.2.1 lists what the request must contain.
        upgrade = _header_value(headers, "Upgrade")
        if not _has_token(headers, "Upgrade", "websocket"):
            raise InvalidRequest(426, str(InvalidHeader("Upgrade", upgrade)))
        if not _has_token(headers, "Connection", "upgrade"):
            connection = _header_value(headers, "Connection")
            raise InvalidRequest(400, str(InvalidHeader("Connection", connection)))
        # RFC 6455 section 4.2.2: an unsupported version gets 426 and the
        # versions the server speaks.
        version = _header_value(headers, "Sec-WebSocket-Version")
        if version != "13":
            raise InvalidRequest(
                426, str(InvalidHeader("Sec-WebSocket-Version", version))
            )
        key = _header_value(headers, "Sec-WebSocket-Key")
        if key is None or not _is_valid_key(key):
            raise InvalidRequest(400, str(InvalidHeader("Sec-WebSocket-Key", key)))

        if origins is not None:
            # RFC 6454 section 7.3: at most one Origin header.
            origin_values = headers.get_all("Origin")
            if len(origin_values) > 1:
                value = _header_value(headers, "Origin")
                raise InvalidRequest(400, str(InvalidHeader("Origin", value)))
            origin = origin_values[0] if origin_values else None
            if origin not in origins:
                raise InvalidRequest(403, str(InvalidHeader("Origin", origin)))

        response_headers = Headers()
        response_headers["Upgrade"] = "websocket"
        response_headers["Connection"] = "Upgrade"
        response_headers["Sec-WebSocket-Accept"] = generate_accept_token(
            key.encode()
        ).decode()

        extensions: list[DeflateParams] = []
        if compression is not None:
            answer, extensions = _accept_deflate(headers)
            if answer is not None:
                response_headers["Sec-WebSocket-Extensions"] = answer

        subprotocol = _select_subprotocol(headers, subprotocols, select_subprotocol)
        if subprotocol is not None:
            response_headers["Sec-WebSocket-Protocol"] = subprotocol

        response = Response(101, "Switching Protocols", response_headers)
        return response, HandshakeResult(subprotocol, extensions, self.trailing_data)

    def bad_request(
        self, exc: Exception, *, server_header: str | None = DEFAULT_SERVER
    ) -> Response:
        """Build the error response for a request that can't be upgraded.

        Args:
            exc: What :meth:`receive_data` raised. An :exc:`InvalidRequest`
                gives its status and message; anything else gives a 400.
            server_header: The ``Server`` header, or ``None`` to send none.

        Returns:
            A short plain-text response. A 405 lists the allowed method; a 426
            says which protocol and version to upgrade to.
        """
        if isinstance(exc, InvalidRequest):
            status, msg = exc.status_code, exc.msg
        else:
            status, msg = 400, "did not receive a valid HTTP request"
        if len(msg) > _MAX_QUOTE:
            msg = msg[:_MAX_QUOTE] + "..."
        text = _REJECTION.format(msg)
        if status == 426:
            text += _BROWSER_HINT
        response = plain_response(status, text, server_header=server_header)
        if status == 405:
            response.headers["Allow"] = "GET"
        elif status == 426:
            # RFC 9110 section 7.8: Upgrade comes with the "upgrade"
            # connection option, so that proxies don't forward it.
            response.headers = Headers(
                (name, "Upgrade, close" if name == "Connection" else value)
                for name, value in response.headers.raw_items()
            )
            response.headers["Upgrade"] = "websocket"
            response.headers["Sec-WebSocket-Version"] = "13"
        return response

    def data_for_response(self, response: Response) -> bytes:
        """Serialise a response to the request.

        A 101 response switches protocols: what follows is WebSocket frames.
        Any other response gets ``Content-Length`` and ``Connection: close``
        unless it has them (or other framing), as the server closes the
        connection after it.

        Args:
            response: The response, from :meth:`accept`, :meth:`bad_request`
                or user code.

        Returns:
            The bytes to write.

        Raises:
            ValueError: If the response isn't valid HTTP or doesn't fit the
                request (for example a 101 to a request without ``Upgrade``).
        """
        headers = _to_h11_headers(response.headers)
        reason = response.reason_phrase.encode("latin-1")
        try:
            if response.status_code < 200:
                event = h11.InformationalResponse(
                    status_code=response.status_code, reason=reason, headers=headers
                )
                return self._conn.send(event)
            names = {name.lower() for name, _ in headers}
            # h11 would pick chunked encoding for a body of unknown length.
            framed = {b"content-length", b"transfer-encoding"} & names
            if not framed and response.status_code not in (204, 304):
                headers.append((b"Content-Length", str(len(response.body)).encode()))
            if b"connection" not in names:
                headers.append((b"Connection", b"close"))
            data = self._conn.send(
                h11.Response(
                    status_code=response.status_code, reason=reason, headers=headers
                )
            )
            if response.body:
                data += self._conn.send(h11.Data(data=response.body))
            return data + self._conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise ValueError(f"invalid response: {exc}") from exc


def _resource_name(target: str) -> str | None:
    """The path and query of a request target, ``None`` if it has none.

    RFC 6455 section 4.2.1, item 1: the target is the resource name
    (origin-form, ``/chat?room=1``) or an absolute HTTP(S) URI containing it.
    """
    if target.startswith("/"):
        return target
    try:
        url = urllib.parse.urlsplit(target)
    except ValueError:
        # An invalid IPv6 literal or port.
        return None
    if url.scheme not in ("http", "https") or not url.netloc:
        return None
    return urllib.parse.urlunsplit(("", "", url.path or "/", url.query, ""))


def _is_valid_key(key: str) -> bool:
    """Whether a Sec-WebSocket-Key is 16 bytes in base64 (RFC 6455 4.1)."""
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except ValueError:
        # Not ASCII (UnicodeEncodeError) or not base64 (binascii.Error).
        return False


def _accept_deflate(headers: Headers) -> tuple[str | None, list[DeflateParams]]:
    """Accept the first valid permessage-deflate offer, if any.

    Returns:
        The ``Sec-WebSocket-Extensions`` answer (``None`` if nothing was
        accepted) and the agreed parameters.

    Raises:
        InvalidRequest: If ``Sec-WebSocket-Extensions`` is malformed.
    """
    try:
        offers = _parse_extensions(headers.get_all("Sec-WebSocket-Extensions"))
    except ValueError as exc:
        value = _header_value(headers, "Sec-WebSocket-Extensions")
        raise InvalidRequest(
            400, str(InvalidHeader("Sec-WebSocket-Extensions", value))
        ) from exc
    for name, params in offers:
        # Unknown extensions are ignored (RFC 6455 section 9.1).
        if name != _DEFLATE:
            continue
        try:
            config = _check_deflate(params, offer=True)
        except ValueError:
            # RFC 7692 section 7.1: decline this offer, maybe accept another.
            continue
        # The server agrees to every parameter offered. A client window left
        # open by the offer is answered with the largest one, 15 bits.
        if "client_max_window_bits" in config:
            config["client_max_window_bits"] = config["client_max_window_bits"] or "15"
        answer = [_DEFLATE]
        for param in _DEFLATE_PARAMS:
            if param in config:
                value = config[param]
                answer.append(param if value is None else f"{param}={value}")
        return "; ".join(answer), [_deflate_params(config)]
    return None, []


def _select_subprotocol(
    headers: Headers,
    subprotocols: Sequence[str] | None,
    select_subprotocol: Callable[[Sequence[str]], str | None] | None,
) -> str | None:
    """Pick the subprotocol (RFC 6455 section 4.2.2, item 5.4).

    Raises:
        InvalidRequest: If ``Sec-WebSocket-Protocol`` is malformed.
        ValueError: If ``select_subprotocol`` picked one that wasn't offered.
    """
    if not subprotocols and select_subprotocol is None:
        return None
    offered = _split_list(headers.get_all("Sec-WebSocket-Protocol"))
    if not all(_TOKEN_RE.fullmatch(subprotocol) for subprotocol in offered):
        value = _header_value(headers, "Sec-WebSocket-Protocol")
        raise InvalidRequest(400, str(InvalidHeader("Sec-WebSocket-Protocol", value)))
    if select_subprotocol is not None:
        chosen = select_subprotocol(offered)
        if chosen is not None and chosen not in offered:
            raise ValueError(
                f"select_subprotocol returned {chosen!r}, which wasn't offered"
            )
        return chosen
    # Server preference: the server's first choice the client also offered.
    assert subprotocols
    return next(
        (subprotocol for subprotocol in subprotocols if subprotocol in offered), None
    )
