"""Every exception trio_ws raises, in one tree::

    WebSocketError
    ├── ConnectionClosed
    │   ├── ConnectionClosedOK
    │   └── ConnectionClosedError
    ├── InvalidHandshake
    │   ├── InvalidURI
    │   ├── InvalidHeader
    │   ├── InvalidStatus
    │   │   └── InvalidRedirect
    │   ├── NegotiationError
    │   └── ProxyError
    ├── PayloadTooBig
    └── ProtocolError

Exceptions carry data and build their ``str()`` from it. Network errors raised
while connecting are trio's own (:exc:`OSError`), and an ``open_timeout`` that
runs out is the built-in :exc:`TimeoutError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._close import OK_CODES, Close

if TYPE_CHECKING:
    from ._http import Response

__all__ = [
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidRedirect",
    "InvalidStatus",
    "InvalidURI",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "ProxyError",
    "WebSocketError",
]


class WebSocketError(Exception):
    """Base class of every exception defined by trio_ws."""


class ConnectionClosed(WebSocketError):
    """Raised by an operation on a connection that is closed or closing.

    Args:
        rcvd: The close frame received from the peer, or ``None``.
        sent: The close frame sent to the peer, or ``None``.
        rcvd_then_sent: Whether the received frame came first; ``None`` unless
            both frames exist.

    When the connection was lost without a closing handshake, ``__cause__``
    holds the transport error, or the protocol violation that failed it.
    """

    def __init__(
        self,
        rcvd: Close | None,
        sent: Close | None,
        rcvd_then_sent: bool | None = None,
    ) -> None:
        super().__init__(rcvd, sent, rcvd_then_sent)
        self.rcvd = rcvd
        self.sent = sent
        self.rcvd_then_sent = rcvd_then_sent

    @property
    def code(self) -> int:
        """The code that explains the closure.

        The received code, else the sent one (1011 after a keepalive
        timeout), else 1006 (no close frame at all).
        """
        if self.rcvd is not None:
            return self.rcvd.code
        if self.sent is not None:
            return self.sent.code
        return 1006

    @property
    def reason(self) -> str:
        """The reason that goes with :attr:`code` (empty for 1006)."""
        close = self.rcvd if self.rcvd is not None else self.sent
        return "" if close is None else close.reason

    def __str__(self) -> str:
        if self.rcvd is None:
            if self.sent is None:
                return "no close frame received or sent"
            return f"sent {self.sent}; no close frame received"
        if self.sent is None:
            return f"received {self.rcvd}; no close frame sent"
        if self.rcvd_then_sent:
            return f"received {self.rcvd}; then sent {self.sent}"
        return f"sent {self.sent}; then received {self.rcvd}"


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally: 1000 or 1001 (or no status) both ways."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed abnormally: any other closure."""


def connection_closed(
    rcvd: Close | None,
    sent: Close | None,
    rcvd_then_sent: bool | None = None,
) -> ConnectionClosed:
    """Build the right :class:`ConnectionClosed` subclass for these frames."""
    ok = (
        rcvd is not None
        and sent is not None
        and rcvd.code in OK_CODES
        and sent.code in OK_CODES
    )
    cls = ConnectionClosedOK if ok else ConnectionClosedError
    return cls(rcvd, sent, rcvd_then_sent)


class InvalidHandshake(WebSocketError):
    """The opening handshake failed."""


class InvalidURI(InvalidHandshake):
    """A URI is not a valid ``ws://`` or ``wss://`` URI.

    Args:
        uri: The URI as given.
        msg: What is wrong with it.
    """

    def __init__(self, uri: str, msg: str) -> None:
        super().__init__(uri, msg)
        self.uri = uri
        self.msg = msg

    def __str__(self) -> str:
        return f"{self.uri} isn't a valid URI: {self.msg}"


class InvalidHeader(InvalidHandshake):
    """An HTTP header of the handshake is missing or has a wrong value.

    Args:
        name: The header's name.
        value: Its value, or ``None`` when it is missing.
    """

    def __init__(self, name: str, value: str | None = None) -> None:
        super().__init__(name, value)
        self.name = name
        self.value = value

    def __str__(self) -> str:
        if self.value is None:
            return f"missing {self.name} header"
        if self.value == "":
            return f"empty {self.name} header"
        return f"invalid {self.name} header: {self.value}"


class InvalidStatus(InvalidHandshake):
    """The server answered the upgrade request with another status than 101.

    Args:
        response: The server's HTTP response, body included.
    """

    def __init__(self, response: Response) -> None:
        super().__init__(response)
        self.response = response

    def __str__(self) -> str:
        return (
            f"server rejected WebSocket connection: HTTP {self.response.status_code:d}"
        )


class InvalidRedirect(InvalidStatus):
    """The server redirected the upgrade request where the client won't follow.

    :func:`~trio_ws.connect` follows redirects (301, 302, 303, 307, 308) but
    refuses a ``Location`` that isn't a WebSocket URI, a redirect from
    ``wss://`` to ``ws://``, a loop, and more than ``max_redirects`` of
    them. As the response is one the client didn't accept, this is a kind of
    :exc:`InvalidStatus`.

    Args:
        response: The redirect response refused, body included.
        location: Where it redirects to: the ``Location`` header resolved
            against the URI of the request.
        msg: Why the redirect isn't followed.
    """

    def __init__(self, response: Response, location: str, msg: str) -> None:
        # Skip InvalidStatus.__init__: args must hold all three, for pickling.
        InvalidHandshake.__init__(self, response, location, msg)
        self.response = response
        self.location = location
        self.msg = msg

    def __str__(self) -> str:
        return f"cannot follow redirect to {self.location}: {self.msg}"


class NegotiationError(InvalidHandshake):
    """Subprotocol or extension negotiation failed."""


class ProxyError(InvalidHandshake):
    """The proxy refused the tunnel to the server or broke its protocol.

    :func:`~trio_ws.connect` raises it when an HTTP proxy answers ``CONNECT``
    with another status than 2xx (407 when it wants credentials), when a
    SOCKS5 proxy refuses the authentication or the connection, and when a
    proxy closes the connection or sends what its protocol does not allow.
    ``str()`` says which. Network errors reaching the proxy are
    :exc:`OSError`, as without a proxy.
    """


class PayloadTooBig(WebSocketError):
    """An incoming message is larger than ``max_size``; the connection closes with 1009."""


class ProtocolError(WebSocketError):
    """The peer broke RFC 6455; the connection closes with 1002 or 1007."""
