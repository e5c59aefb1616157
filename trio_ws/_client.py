"""The client side: :func:`connect` and :class:`ClientConnection`."""

from __future__ import annotations

import functools
import os
import ssl as ssl_module
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final, Literal

import trio

from ._connection import (
    READ_SIZE,
    Connection,
    ConnectionFactory,
    ConnectionOptions,
    LoggerLike,
)
from ._exceptions import InvalidHandshake, InvalidStatus
from ._handshake import DEFAULT_USER_AGENT, HandshakeResult
from ._handshake_client import ClientHandshake
from ._proxy import open_tunnel, resolve_proxy
from ._redirects import Redirects
from ._uri import WebSocketURI, parse_uri
from ._util import collapse_groups, running, seconds

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

    from ._http import HeadersLike

__all__ = ["ClientConnection", "connect"]


class ClientConnection(Connection):
    """The client side of a WebSocket connection, yielded by :func:`connect`.

    Its attributes and methods are those of :class:`~trio_ws.Connection`;
    :attr:`~trio_ws.Connection.request` is the handshake request sent and
    :attr:`~trio_ws.Connection.response` the server's ``101`` response.
    """

    is_client = True
    _default_logger = "trio_ws.client"


@asynccontextmanager
async def connect(
    uri: str,
    *,
    subprotocols: Sequence[str] | None = None,
    additional_headers: HeadersLike | None = None,
    user_agent_header: str | None = DEFAULT_USER_AGENT,
    origin: str | None = None,
    compression: str | None = "deflate",
    ssl: ssl_module.SSLContext | None = None,
    proxy: str | Literal[True] | None = True,
    unix_socket_path: str | os.PathLike[str] | None = None,
    open_timeout: float | None = 10,
    max_redirects: int = 10,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
    close_timeout: float | None = 10,
    max_size: int | None = 2**20,
    max_queue: int | None = 16,
    create_connection: ConnectionFactory[ClientConnection] | None = None,
    logger: LoggerLike | None = None,
) -> AsyncIterator[ClientConnection]:
    """Connect to a WebSocket server; use as ``async with connect(uri) as ws:``.

    The body of the ``async with`` block is the connection's user code. While
    it runs, a nursery owned by the connection runs the reader and heartbeat
    tasks. Leaving the block closes the connection with 1000, or 1011 if the
    block raised, or 1001 if it was cancelled, and waits for the closing
    handshake for at most ``close_timeout`` seconds. An exception raised in the
    block comes out as itself, never inside an :exc:`ExceptionGroup`.

    Args:
        uri: A ``ws://`` or ``wss://`` URI. User info in it becomes HTTP Basic
            authentication; IPv6 literals go in brackets.
        subprotocols: Subprotocols to offer, in order of preference.
        additional_headers: Extra headers for the handshake request (a
            mapping or ``(name, value)`` pairs).
        user_agent_header: The ``User-Agent`` header; ``None`` omits it.
        origin: The ``Origin`` header, if any.
        compression: ``"deflate"`` offers permessage-deflate (RFC 7692);
            ``None`` turns compression off.
        ssl: TLS settings for ``wss://``; when ``None``, the context of
            :func:`ssl.create_default_context`, made once and shared by such
            connections (made again if ``SSL_CERT_FILE``, ``SSL_CERT_DIR``
            or ``SSLKEYLOGFILE`` changed).
        proxy: ``True`` (the default) takes the proxy from the environment
            (``https_proxy`` for ``wss://``, ``http_proxy`` for ``ws://``,
            else ``all_proxy``; ``no_proxy`` exempts hosts); a URI such as
            ``"http://user:pass@host:3128"``, ``"https://..."``,
            ``"socks5://..."`` or ``"socks5h://..."`` sets one; ``None``
            connects directly. See :doc:`/howto/proxies`.
        unix_socket_path: Connect to the server listening on this Unix
            socket instead of over TCP (no proxy then); ``uri`` still gives
            the ``Host`` header, the path and whether to run TLS. Redirects
            go to the same socket. See :doc:`/howto/unix`.
        open_timeout: Seconds allowed for TCP, TLS and the opening handshake;
            ``None``: no limit. Redirects followed count in the same time.
        max_redirects: How many redirects (301, 302, 303, 307, 308) to
            follow; 0 follows none. See :doc:`/howto/redirects`.
        ping_interval: Seconds between keepalive pings; ``None``: no pings.
        ping_timeout: Seconds to wait for a keepalive pong; ``None``: forever.
        close_timeout: Seconds allowed for the closing handshake.
        max_size: Largest incoming message in bytes; ``None``: no limit.
        max_queue: How many incoming messages to buffer before reading stops.
        create_connection: Builds the connection object:
            :class:`ClientConnection`, a subclass, or a factory with the same
            signature such as ``functools.partial(MyConnection, extra=42)``.
        logger: Logger for the connection; ``trio_ws.client`` by default.

    Yields:
        The open connection.

    Raises:
        InvalidURI: ``uri`` is not a valid WebSocket URI.
        InvalidStatus: The server answered with another status than 101;
            ``.response`` holds its response.
        InvalidRedirect: A redirect that isn't followed: to a URI that
            isn't ``ws://`` or ``wss://``, from ``wss://`` to ``ws://``, a
            loop, or more than ``max_redirects``.
        InvalidHeader: The server's response breaks RFC 6455.
        NegotiationError: Subprotocol or extension negotiation failed.
        ProxyError: The proxy refused the tunnel or broke its protocol.
        InvalidHandshake: The opening handshake failed otherwise.
        TimeoutError: ``open_timeout`` ran out; it bounds TCP, TLS and the
            opening handshake together. Chained to :exc:`trio.TooSlowError`.
        OSError: The TCP connection, the Unix socket or TLS failed, as trio
            reports it (:exc:`ssl.SSLCertVerificationError` for an untrusted
            certificate, :exc:`FileNotFoundError` for a missing socket).
        ValueError: ``ssl`` with a ``ws://`` URI, or an invalid option
            (``compression``, a subprotocol, a header, a proxy URI given
            or from the environment).

    Cancellation:
        Cancelled while opening, the TCP connection is closed and
        :exc:`trio.Cancelled` propagates. Cancelled in the block, a close frame
        with 1001 is still sent, in a shielded scope bounded by
        ``close_timeout``.
    """
    redirects = Redirects(parse_uri(uri), additional_headers, max_redirects)
    new_handshake = functools.partial(
        ClientHandshake,
        origin=origin,
        subprotocols=subprotocols,
        user_agent_header=user_agent_header,
        compression=compression,
    )
    # Built before any I/O, so that invalid options fail at once.
    handshake = new_handshake(
        redirects.uri, additional_headers=redirects.additional_headers
    )
    if redirects.uri.secure:
        if ssl is None:
            ssl = default_ssl_context()
    elif ssl is not None:
        msg = "ssl is only for wss:// URIs"
        raise ValueError(msg)
    factory = ClientConnection if create_connection is None else create_connection
    options = ConnectionOptions(
        max_size=max_size,
        max_queue=max_queue,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
        logger=logger,
    )

    with collapse_groups():
        async with trio.open_nursery() as nursery:
            # One deadline for TCP, TLS and the handshake together, through
            # every redirect.
            with _Timeout(trio.current_time() + seconds(open_timeout)) as timeout:
                while True:
                    wsuri = redirects.uri
                    timeout.msg = _OPENING
                    stream = await _open_stream(wsuri, proxy, unix_socket_path)
                    try:
                        if wsuri.secure:
                            if ssl is None:  # redirected from ws:// to wss://
                                ssl = default_ssl_context()
                            stream = await _start_tls(stream, ssl, wsuri.host)
                        timeout.msg = _HANDSHAKING
                        result = await _exchange(stream, handshake)
                        ws = _opened(stream, handshake, result, factory, options)
                    except InvalidStatus as exc:
                        await trio.aclose_forcefully(stream)
                        if not redirects.follow(exc.response):
                            raise
                        handshake = new_handshake(
                            redirects.uri,
                            additional_headers=redirects.additional_headers,
                        )
                        continue
                    except BaseException:
                        await trio.aclose_forcefully(stream)
                        raise
                    break
            # This frame lives as long as the connection: drop what only the
            # opening needed, so that each open connection doesn't keep it
            # (and the cyclic GC doesn't walk it at every full collection).
            del redirects, new_handshake, handshake, result, options, timeout
            ws.logger.debug("connection %s open to %s", ws.id, wsuri)
            async with running(ws, nursery):
                yield ws


# The context of wss:// connections without ssl= (and of https:// proxies),
# shared: create_default_context() loads the system's CA certificates, a
# millisecond or more each time, and one SSLContext wraps any number of
# connections, in any thread. Made again when what it came from changed:
# create_default_context itself, or a variable it reads (where OpenSSL finds
# CA certificates, where to log TLS keys).
_ca_paths = ssl_module.get_default_verify_paths()
_SSL_ENV: Final = (
    _ca_paths.openssl_cafile_env,
    _ca_paths.openssl_capath_env,
    "SSLKEYLOGFILE",
)
_default_ssl: tuple[tuple[object, ...], ssl_module.SSLContext] | None = None


def default_ssl_context() -> ssl_module.SSLContext:
    """What ``ssl.create_default_context()`` returns, made once while unchanged."""
    global _default_ssl  # replaced whole, never mutated: safe across threads
    create = ssl_module.create_default_context
    key = (create, *map(os.environ.get, _SSL_ENV))
    if _default_ssl is None or _default_ssl[0] != key:
        _default_ssl = (key, create())
    return _default_ssl[1]


_OPENING: Final = "timed out while opening the connection"
_HANDSHAKING: Final = "timed out during the opening handshake"


class _Timeout:
    """Raise ``TimeoutError(msg)``, chained to :exc:`trio.TooSlowError`, at ``deadline``.

    :func:`trio.fail_at` whose message can change as the steps it bounds go
    by: one cancel scope for them all, rather than one per step (each
    registers its deadline with trio's run loop).
    """

    __slots__ = ("_scope", "msg")

    def __init__(self, deadline: float, msg: str = _OPENING) -> None:
        self._scope = trio.CancelScope(deadline=deadline)
        self.msg = msg

    def __enter__(self) -> Self:
        self._scope.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # The scope swallows only its own Cancelled: a timeout, raised here.
        self._scope.__exit__(exc_type, exc_value, traceback)
        if self._scope.cancelled_caught:
            raise TimeoutError(self.msg) from trio.TooSlowError()


def _open_stream(
    uri: WebSocketURI,
    proxy: str | Literal[True] | None,
    unix_socket_path: str | os.PathLike[str] | None,
) -> Awaitable[trio.abc.Stream]:
    """Open the transport to ``uri``; the caller awaits it and bounds its time.

    A plain function that returns trio's coroutine, rather than a coroutine
    of its own around it: one object less to allocate per connection.
    """
    if unix_socket_path is not None:
        # The socket stands for the server: no DNS, no proxy.
        return trio.open_unix_socket(unix_socket_path)  # noqa: ASYNC105
    # Reads the environment for proxy=True; a few dict lookups when unset.
    # Per attempt, as no_proxy may treat a redirect's host otherwise.
    tunnel = (
        None if proxy is None else resolve_proxy(proxy, uri.secure, uri.host, uri.port)
    )
    if tunnel is None:
        return trio.open_tcp_stream(uri.host, uri.port)  # noqa: ASYNC105
    return open_tunnel(tunnel, uri.host, uri.port)


async def _start_tls(
    tcp: trio.abc.Stream, ssl: ssl_module.SSLContext, host: str
) -> trio.SSLStream[trio.abc.Stream]:
    """Run the TLS handshake; the caller bounds its time."""
    tls = trio.SSLStream(tcp, ssl, server_hostname=host)
    try:
        await tls.do_handshake()
    except trio.BrokenResourceError as exc:
        # trio chains the ssl.SSLError or the socket error: OSErrors, which
        # users catch as they do for a failed TCP connection.
        cause = exc.__cause__
        raise cause if isinstance(cause, OSError) else exc from None
    return tls


async def open_client(
    stream: trio.abc.Stream,
    handshake: ClientHandshake,
    deadline: float,
    factory: ConnectionFactory[ClientConnection],
    options: ConnectionOptions,
) -> ClientConnection:
    """Run the opening handshake on ``stream``; return the OPEN connection.

    What :func:`connect` does once its stream is open, and
    ``trio_ws.testing.open_connection_pair`` over memory. The caller closes
    ``stream`` if this raises.
    """
    result = await _handshake(stream, handshake, deadline)
    return _opened(stream, handshake, result, factory, options)


def _opened(
    stream: trio.abc.Stream,
    handshake: ClientHandshake,
    result: HandshakeResult,
    factory: ConnectionFactory[ClientConnection],
    options: ConnectionOptions,
) -> ClientConnection:
    """The OPEN connection after a successful handshake."""
    ws = options.create(factory, stream)
    ws.request = handshake.request
    ws.response = handshake.response
    ws.subprotocol = result.subprotocol
    ws._open(result.extensions, result.trailing_data)
    return ws


async def _handshake(
    stream: trio.abc.Stream, handshake: ClientHandshake, deadline: float
) -> HandshakeResult:
    """Send the upgrade request and read the response before ``deadline``."""
    with _Timeout(deadline, _HANDSHAKING):
        return await _exchange(stream, handshake)


async def _exchange(
    stream: trio.abc.Stream, handshake: ClientHandshake
) -> HandshakeResult:
    """Send the upgrade request and read the response; the caller bounds its time."""
    try:
        await stream.send_all(handshake.data_to_send())
        while True:
            data = await stream.receive_some(READ_SIZE)
            if not data:
                handshake.receive_eof()  # raises: the response is incomplete
            if handshake.receive_data(data):
                break
    except trio.BrokenResourceError as exc:
        msg = "connection lost during the opening handshake"
        raise InvalidHandshake(msg) from exc
    return handshake.result()
