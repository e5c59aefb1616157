"""The server side of the opening handshake (RFC 6455 section 4.2), without I/O.

Theory of operation
-------------------

A server feeds :meth:`ServerHandshake.receive_data` until it returns a
:class:`~trio_ws._http.Request` (reading the client's handshake, section
4.2.1), calls :meth:`ServerHandshake.accept` (or builds its own answer), and
writes :meth:`ServerHandshake.data_for_response` (sending the server's
handshake, section 4.2.2). The subprotocol is picked here (section 4.2.2,
item 5.4); permessage-deflate offers are answered by
:mod:`trio_ws._handshake_deflate`. A bad request becomes a short plain-text
4xx response: parse errors raise :exc:`~trio_ws._handshake.InvalidRequest`,
which carries the status for :meth:`ServerHandshake.bad_request`, and
:meth:`ServerHandshake.accept` returns the rejection directly.
"""

from __future__ import annotations

import base64
import urllib.parse
from typing import TYPE_CHECKING, final

import h11
from wsproto.utilities import generate_accept_token

from ._exceptions import InvalidHandshake, InvalidHeader
from ._handshake import (
    _TOKEN_RE,
    DEFAULT_SERVER,
    HandshakeResult,
    InvalidRequest,
    _check_compression,
    _from_h11_headers,
    _has_token,
    _header_value,
    _next_event,
    _parse_request,
    _split_list,
    _to_h11_headers,
    _write_head,
)
from ._handshake_deflate import _accept_deflate
from ._http import Headers, Request, Response, plain_response

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._extensions import DeflateParams

__all__ = ["ServerHandshake"]

_REJECTION = "Failed to open a WebSocket connection: {}.\n"
# Error messages quote what the client sent, up to the size of a request
# head; the body only quotes the beginning of them.
_MAX_QUOTE = 200
_BROWSER_HINT = (
    "\nYou cannot access a WebSocket server directly with a browser. "
    "You need a WebSocket client.\n"
)


def _invalid_request() -> InvalidRequest:
    return InvalidRequest(400, "did not receive a valid HTTP request")


@final
class ServerHandshake:
    """The server side of the opening handshake (RFC 6455 section 4.2).

    Args:
        max_request_size: The largest request head accepted, in bytes.
    """

    def __init__(self, *, max_request_size: int = 16 * 1024) -> None:
        # Made on first use (_h11): a request taken by _parse_request, with
        # its 101, needs no h11 at all.
        self._conn: h11.Connection | None = None
        self._max_size = max_request_size
        self._received = 0
        self._request: Request | None = None
        # What went around h11 (see _h11): the request head taken by
        # _parse_request, and whether it allows a 101 (h11's rule: it has a
        # non-empty Upgrade header); the 101 written by data_for_response.
        self._head = b""
        self._upgrade = False
        self._sent: tuple[bytes, list[tuple[bytes, bytes]]] | None = None
        #: Bytes received after the request head, once it is complete.
        self.trailing_data = b""

    def _h11(self) -> h11.Connection:
        """The h11 connection, in the state the exchange so far left it in."""
        if self._conn is None:
            conn = self._conn = h11.Connection(
                h11.SERVER, max_incomplete_event_size=self._max_size
            )
            if self._head:
                # Replay what _parse_request took: h11 takes it the same way.
                conn.receive_data(self._head)
                conn.next_event()  # the Request
                conn.next_event()  # its EndOfMessage
            if self._sent is not None:
                reason, headers = self._sent
                conn.send(
                    h11.InformationalResponse(
                        status_code=101, reason=reason, headers=headers
                    )
                )
        return self._conn

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
        if data and self._conn is None:
            request = self._take_request(bytes(data))
            if request is not None:
                return request
        conn = self._h11()
        if data:
            conn.receive_data(bytes(data))
            self._received += len(data)
        while True:
            event = _next_event(conn, self._too_large, _invalid_request)
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.Request):
                self._request = self._check_request(event)
                continue
            # Bodies are refused, so the request ends right after its head.
            assert isinstance(event, h11.EndOfMessage), event
            assert self._request is not None
            self.trailing_data = conn.trailing_data[0]
            return self._request

    def _take_request(self, data: bytes) -> Request | None:
        """The request, if ``data`` is one that h11 needn't parse (see
        ``_parse_request``) and that passes ``_check_request``'s checks; else
        ``None``, and h11 takes ``data``.
        """
        head = _parse_request(data, self._max_size)
        if head is None:
            return None
        path = _resource_name(head.start.group(1).decode("ascii"))
        if path is None:
            return None
        self._received = len(data)
        self._head = data[: head.size]
        self._upgrade = head.upgrade
        self.trailing_data = data[head.size :]
        self._request = Request(path, _from_h11_headers(head.headers))
        return self._request

    def _too_large(self) -> InvalidRequest:
        return InvalidRequest(431, f"request head exceeds {self._max_size} bytes")

    def _check_request(self, event: h11.Request) -> Request:
        # h11 only bounds heads that are still incomplete; one that arrived
        # in a single read is measured by what h11 consumed to parse it.
        if self._received - len(self._h11().trailing_data[0]) > self._max_size:
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
        # The connection keeps its response.
        response.headers._compact()
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
        if not _has_token(headers, "Upgrade", "websocket"):
            upgrade = _header_value(headers, "Upgrade")
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

        response_headers = Headers._from_lists(
            ["upgrade", "connection", "sec-websocket-accept"],
            ["Upgrade", "Connection", "Sec-WebSocket-Accept"],
            ["websocket", "Upgrade", generate_accept_token(key.encode()).decode()],
        )

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
        # Cut in UTF-8 bytes, as sent: quoted header values may be any
        # Latin-1 text, two bytes per character past ASCII.
        encoded = msg.encode()
        if len(encoded) > _MAX_QUOTE:
            msg = encoded[:_MAX_QUOTE].decode(errors="ignore") + "..."
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
        if (
            type(response.status_code) is int
            and response.status_code == 101
            and self._conn is None
            and self._sent is None
            and self._upgrade
        ):
            data = _write_head(b"HTTP/1.1 101 " + reason, headers)
            if data is not None:
                # h11 must see it, should it have to write anything else.
                self._sent = (reason, headers)
                return data
        conn = self._h11()
        try:
            if response.status_code < 200:
                event = h11.InformationalResponse(
                    status_code=response.status_code, reason=reason, headers=headers
                )
                return conn.send(event)
            names = {name.lower() for name, _ in headers}
            # h11 would pick chunked encoding for a body of unknown length.
            framed = {b"content-length", b"transfer-encoding"} & names
            if not framed and response.status_code not in (204, 304):
                headers.append((b"Content-Length", str(len(response.body)).encode()))
            if b"connection" not in names:
                headers.append((b"Connection", b"close"))
            data = conn.send(
                h11.Response(
                    status_code=response.status_code, reason=reason, headers=headers
                )
            )
            if response.body:
                data += conn.send(h11.Data(data=response.body))
            return data + conn.send(h11.EndOfMessage())
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
