"""The client side of the opening handshake (RFC 6455 section 4.1), without I/O.

Theory of operation
-------------------

A client builds its request up front (section 4.1, the request's headers),
sends :meth:`ClientHandshake.data_to_send`, feeds what it reads to
:meth:`ClientHandshake.receive_data` until that returns ``True``, then calls
:meth:`ClientHandshake.result`, which runs the client's checks of section
4.1 (status, ``Upgrade``, ``Connection``, ``Sec-WebSocket-Accept``,
subprotocol, extensions). wsproto computes the key
(:func:`~wsproto.utilities.generate_nonce`) and the expected accept token
(:func:`~wsproto.utilities.generate_accept_token`); the permessage-deflate
answer is checked in :mod:`trio_ws._handshake_deflate`. A bad response
raises :exc:`~trio_ws.InvalidHandshake` or one of its subclasses, never an
h11 exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import h11
from wsproto.utilities import generate_accept_token, generate_nonce

from ._exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidStatus,
    NegotiationError,
)
from ._handshake import (
    _STATUS_101_RE,
    _TOKEN_RE,
    DEFAULT_USER_AGENT,
    HandshakeResult,
    _check_compression,
    _from_h11_headers,
    _has_token,
    _header_value,
    _next_event,
    _parse_head,
    _split_list,
    _to_h11_headers,
    _write_request,
)
from ._handshake_deflate import _DEFLATE_OFFER, _accepted_deflate
from ._http import Headers, Request, Response

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._http import HeadersLike
    from ._uri import WebSocketURI

__all__ = ["ClientHandshake"]


# The headers every request starts with, lower-cased and as sent (built
# without going through Headers.__setitem__ one by one).
_REQUEST_NAMES = (
    "Host",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
)
_REQUEST_KEYS = tuple(name.lower() for name in _REQUEST_NAMES)


def _invalid_response() -> InvalidHandshake:
    return InvalidHandshake("did not receive a valid HTTP response")


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
        headers = Headers._from_lists(
            [*_REQUEST_KEYS],
            [*_REQUEST_NAMES],
            [uri.host_header, "websocket", "Upgrade", self._key.decode("ascii"), "13"],
        )
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
        # The connection keeps its request.
        headers._compact()

        #: The handshake request.
        self.request = Request(uri.path, headers)
        #: The response, once :meth:`receive_data` returned ``True``.
        self.response: Response | None = None

        self._target = uri.path.encode("ascii")
        self._h11_headers = _to_h11_headers(headers)
        # Host is the first header (see above).
        data = _write_request(self._target, self._h11_headers[0], self._h11_headers[1:])
        # h11 is made on first use (_h11), if the request or the response
        # needs it.
        self._conn: h11.Connection | None = None
        self._outgoing = self._h11_request() if data is None else data
        self._received = 0
        self._consumed = 0
        self._head: h11.Response | None = None
        self._body = bytearray()
        self._trailing_data = b""

    def _h11_request(self) -> bytes:
        """Make the h11 connection and send the request through it."""
        self._conn = h11.Connection(
            h11.CLIENT, max_incomplete_event_size=self._max_size
        )
        try:
            event = h11.Request(
                method="GET", target=self._target, headers=self._h11_headers
            )
            return self._conn.send(event) + self._conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise ValueError(f"invalid request: {exc}") from exc

    def _h11(self) -> h11.Connection:
        """The h11 connection, the request sent through it."""
        if self._conn is None:
            # _write_request took the request: h11 takes it the same way.
            self._h11_request()
        assert self._conn is not None
        return self._conn

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
        if data and self._received == 0 and self._take_101(bytes(data)):
            return True
        if data:
            self._h11().receive_data(bytes(data))
            self._received += len(data)
        return self._process()

    def _take_101(self, data: bytes) -> bool:
        """Take a 101 that h11 needn't parse (see ``_parse_head``)."""
        head = _parse_head(data, self._max_size, _STATUS_101_RE)
        if head is None:
            return False
        reason = head.start.group(1) or b""
        self._received = len(data)
        self._trailing_data = data[head.size :]
        self.response = Response(
            101, reason.decode("latin-1"), _from_h11_headers(head.headers)
        )
        return True

    def receive_eof(self) -> None:
        """Tell the handshake that the server closed the connection.

        A response body cut short by the end of the connection is kept as it
        is: its status matters more than the body.

        Raises:
            InvalidHandshake: If the response head wasn't complete.
        """
        if self.response is not None:
            return
        self._h11().receive_data(b"")
        try:
            self._process()
        except InvalidHandshake as exc:
            if self._head is None:
                raise InvalidHandshake("connection closed during handshake") from exc
            self._complete()

    def _process(self) -> bool:
        conn = self._h11()
        while True:
            event = _next_event(conn, self._too_large, _invalid_response)
            if event is h11.NEED_DATA:
                return False
            if isinstance(event, h11.InformationalResponse):
                self._check_head_size()
                # Other 1xx responses, such as 100 Continue, announce the
                # final one; RFC 9110 section 15.2 asks clients to skip them.
                if event.status_code == 101:
                    self._trailing_data = conn.trailing_data[0]
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
        consumed = self._received - len(self._h11().trailing_data[0])
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
            _accepted_deflate(headers, offered=self._compression is not None),
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
