"""The server side: :func:`serve`, :class:`Server` and :class:`ServerConnection`."""

from __future__ import annotations

import errno
import inspect
import logging
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeAlias, final

import trio

from ._connection import (
    READ_SIZE,
    Connection,
    ConnectionFactory,
    ConnectionOptions,
    LoggerLike,
)
from ._exceptions import ConnectionClosedOK, InvalidHandshake
from ._forwarded import TrustedProxies, client_host
from ._handshake import DEFAULT_SERVER, HandshakeResult
from ._handshake_server import ServerHandshake
from ._http import Request, Response, plain_response
from ._protocol import State
from ._util import collapse_groups, running, seconds

__all__ = ["Server", "ServerConnection", "serve"]

Handler: TypeAlias = "Callable[[ServerConnection], Awaitable[None]]"
ProcessRequest: TypeAlias = "Callable[[ServerConnection, Request], Response | Awaitable[Response | None] | None]"
ProcessResponse: TypeAlias = "Callable[[ServerConnection, Request, Response], Response | Awaitable[Response | None] | None]"

#: accept() errors that mean "out of resources, try again soon" (as trio's
#: serve_listeners treats them).
_ACCEPT_CAPACITY_ERRNOS: Final = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
)
_ACCEPT_RETRY_DELAY: Final = 0.1


class ServerConnection(Connection):
    """The server side of a WebSocket connection, passed to the handler.

    Its attributes and methods are those of :class:`~trio_ws.Connection`;
    :attr:`~trio_ws.Connection.request` is the client's handshake request
    and :attr:`~trio_ws.Connection.response` the response sent.
    """

    _default_logger = "trio_ws.server"
    _server_header: str | None = DEFAULT_SERVER
    _trusted_proxies: TrustedProxies | None = None
    #: The user name that :func:`~trio_ws.basic_auth` accepted, else ``None``.
    username: str | None = None

    @property
    def client_host(self) -> str | None:
        """The client's IP address, as a string, or ``None``.

        It is the host of :attr:`~trio_ws.Connection.remote_address`, unless ``serve`` was given
        ``trusted_proxies`` and the connection comes from one of them: then
        it is the address that the proxies report in ``X-Forwarded-For``
        (the rightmost one that is not a trusted proxy's).
        """
        request = self.request
        forwarded = (
            [] if request is None else request.headers.get_all("X-Forwarded-For")
        )
        return client_host(self.remote_address, forwarded, self._trusted_proxies)

    def respond(self, status: int, text: str) -> Response:
        """Build a plain-text HTTP response, e.g. for ``process_request``.

        Args:
            status: The HTTP status code, e.g. 401 or 200.
            text: The body, sent as ``text/plain; charset=utf-8``.

        Returns:
            The response, for ``process_request`` to return.
        """
        return plain_response(status, text, server_header=self._server_header)


@final
class Server:
    """A running WebSocket server, reported by :func:`serve` once it accepts.

    Attributes:
        listeners: The listeners accepting connections.
        close_timeout: How long :meth:`aclose` gives handlers to finish.
        logger: Where the server logs (accept errors); connections log on
            their own :attr:`~trio_ws.Connection.logger`.
    """

    def __init__(
        self,
        listeners: Sequence[trio.abc.Listener[trio.abc.Stream]],
        *,
        close_timeout: float | None,
        logger: LoggerLike,
    ) -> None:
        self.listeners: list[trio.abc.Listener[trio.abc.Stream]] = list(listeners)
        self.close_timeout = close_timeout
        self.logger = logger
        self._connections: set[ServerConnection] = set()
        # Set by aclose(): handshakes still in progress get a 503.
        self._closing = False
        # Both scopes enclose their nurseries, so that cancelling them
        # reaches the accept loops and the connection tasks.
        self._accept_scope = trio.CancelScope()
        self._connections_scope = trio.CancelScope()
        self._stopped = trio.Event()

    def __repr__(self) -> str:
        return f"<Server port={self.port} connections={len(self.connections)}>"

    @property
    def port(self) -> int | None:
        """The port of the first listener (useful after ``port=0``), or ``None``."""
        if not self.listeners:
            return None
        listener = self.listeners[0]
        while isinstance(listener, trio.SSLListener):
            listener = listener.transport_listener
        if isinstance(listener, trio.SocketListener):
            address = listener.socket.getsockname()
            # A Unix socket's address is a path.
            if isinstance(address, tuple):
                return int(address[1])
        return None

    @property
    def connections(self) -> set[ServerConnection]:
        """A snapshot of the open connections (handshake done, closing not begun)."""
        return {ws for ws in self._connections if ws.state is State.OPEN}

    async def aclose(self) -> None:
        """Stop the server.

        Stops accepting and closes the listeners, answers handshakes still
        in progress with ``503 Service Unavailable``, closes every open
        connection with 1001 (going away), gives handlers at most
        ``close_timeout`` seconds to finish, cancels what is left, and returns
        once :func:`serve` has returned. Calling it again just waits for that.

        A handler that calls it waits for itself: it is cancelled after
        ``close_timeout``, like any handler that outlives the closure. To
        stop the server from a handler, signal the task that started
        :func:`serve` instead (a :class:`trio.Event`, for instance).

        Cancellation:
            Cancelled, the remaining connections are cancelled at once.
        """
        self._closing = True
        self._accept_scope.cancel()
        try:
            with trio.move_on_after(seconds(self.close_timeout)):
                async with trio.open_nursery() as nursery:
                    for ws in list(self._connections):
                        nursery.start_soon(ws.aclose, 1001)
                await self._stopped.wait()
        finally:
            self._connections_scope.cancel()
        await self._stopped.wait()


class _Config:
    """What :func:`serve` passes to every connection (one object, not 20 arguments)."""

    def __init__(self, **options: object) -> None:
        self.__dict__.update(options)

    handler: Handler
    subprotocols: Sequence[str] | None
    select_subprotocol: Callable[[ServerConnection, Sequence[str]], str | None] | None
    origins: Sequence[str | None] | None
    process_request: ProcessRequest | None
    process_response: ProcessResponse | None
    server_header: str | None
    compression: str | None
    open_timeout: float | None
    create_connection: ConnectionFactory[ServerConnection]
    connection_options: ConnectionOptions
    trusted_proxies: TrustedProxies | None


async def serve(
    handler: Handler,
    port: int | None = None,
    *,
    host: str | None = None,
    listeners: Sequence[trio.abc.Listener[trio.abc.Stream]] | None = None,
    subprotocols: Sequence[str] | None = None,
    select_subprotocol: Callable[[ServerConnection, Sequence[str]], str | None]
    | None = None,
    origins: Sequence[str | None] | None = None,
    process_request: ProcessRequest | None = None,
    process_response: ProcessResponse | None = None,
    server_header: str | None = DEFAULT_SERVER,
    compression: str | None = "deflate",
    ssl: ssl_module.SSLContext | None = None,
    open_timeout: float | None = 10,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
    close_timeout: float | None = 10,
    max_size: int | None = 2**20,
    max_queue: int | None = 16,
    create_connection: ConnectionFactory[ServerConnection] | None = None,
    logger: LoggerLike | None = None,
    trusted_proxies: Sequence[str] | None = None,
    task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve WebSocket connections until cancelled or :meth:`Server.aclose`.

    Start it with ``server = await nursery.start(functools.partial(serve,
    handler, 8765, host="127.0.0.1"))``: :class:`Server` is reported once the
    listeners accept, so connecting right after is race-free. ``port=0``
    picks a free port (:attr:`Server.port`). The argument order is
    :func:`trio.serve_tcp`'s; ``trio.run(serve, handler, 8765)`` also works.

    Every accepted connection gets its own nursery running the reader task,
    the heartbeat task and ``handler(ws)``. When the handler returns, the
    connection closes with 1000. When it raises, the connection closes with
    1011 and "connection handler failed" is logged with the traceback on
    ``trio_ws.server`` (unless it raised :exc:`~trio_ws.ConnectionClosedOK`).
    One failing connection never disturbs another or the server. A request
    that is not a valid upgrade gets a 4xx response with a short plain-text
    body; a client that does not complete its request within
    ``open_timeout`` is dropped.

    Args:
        handler: ``async def handler(ws)``, run once per connection.
        port: The TCP port; ``0`` picks a free one. Not needed with
            ``listeners``.
        host: The interface to listen on; ``None`` listens on all.
        listeners: Serve on these listeners (Unix sockets, pre-bound
            sockets) instead of ``host`` and ``port``.
        subprotocols: Subprotocols supported, in order of preference.
        select_subprotocol: ``select_subprotocol(ws, offered)`` picks the
            subprotocol instead of the default rule (the first of
            ``subprotocols`` that the client offers).
        origins: Accepted ``Origin`` headers (``None`` in the list accepts a
            request without one); others get 403.
        process_request: ``process_request(ws, request)``, plain or async, may
            return a :class:`Response` to send instead of upgrading (``ws.respond``
            builds one).
        process_response: ``process_response(ws, request, response)`` may
            modify or replace the ``101`` response.
        server_header: The ``Server`` header; ``None`` omits it.
        compression: ``"deflate"`` accepts permessage-deflate; ``None`` does not.
        ssl: TLS settings; connections are plain TCP when ``None``.
        open_timeout: Seconds allowed for TLS and the opening handshake.
        ping_interval: Seconds between keepalive pings; ``None``: no pings.
        ping_timeout: Seconds to wait for a keepalive pong; ``None``: forever.
        close_timeout: Seconds allowed for a closing handshake, and for
            handlers to finish in :meth:`Server.aclose`.
        max_size: Largest incoming message in bytes; ``None``: no limit.
        max_queue: How many incoming messages to buffer before reading stops.
        create_connection: Builds each connection object:
            :class:`ServerConnection`, a subclass or a factory with the same
            signature.
        logger: Logger for the server and its connections; ``trio_ws.server``
            by default.
        trusted_proxies: Addresses or networks of reverse proxies (e.g.
            ``["127.0.0.1"]``, ``"*"`` for any peer) whose
            ``X-Forwarded-For`` header sets
            :attr:`ServerConnection.client_host`. ``None`` (the default)
            ignores the header, which any client can forge.
        task_status: Used by :meth:`trio.Nursery.start` to report the
            :class:`Server`.

    Cancellation:
        Cancelling the task running :func:`serve` closes every connection with
        a close frame (1001), each in a shielded scope bounded by
        ``close_timeout``.
    """
    trusted = None if trusted_proxies is None else TrustedProxies(trusted_proxies)
    if listeners is None:
        if port is None:
            msg = "serve() needs a port or listeners"
            raise TypeError(msg)
        listeners = await trio.open_tcp_listeners(port, host=host)
    if ssl is not None:
        listeners = [
            trio.SSLListener(listener, ssl, https_compatible=True)
            for listener in listeners
        ]
    log = logger if logger is not None else logging.getLogger("trio_ws.server")
    server = Server(listeners, close_timeout=close_timeout, logger=log)
    config = _Config(
        handler=handler,
        subprotocols=subprotocols,
        select_subprotocol=select_subprotocol,
        origins=origins,
        process_request=process_request,
        process_response=process_response,
        server_header=server_header,
        compression=compression,
        open_timeout=open_timeout,
        create_connection=ServerConnection
        if create_connection is None
        else create_connection,
        connection_options=ConnectionOptions(
            max_size=max_size,
            max_queue=max_queue,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            logger=logger,
        ),
        trusted_proxies=trusted,
    )
    try:
        with collapse_groups(), server._connections_scope:
            async with trio.open_nursery() as connections:
                try:
                    with collapse_groups(), server._accept_scope:
                        async with trio.open_nursery() as accepting:
                            for listener in server.listeners:
                                accepting.start_soon(
                                    _accept_loop, server, listener, connections, config
                                )
                            task_status.started(server)
                finally:
                    # New clients are refused at once, not left in the
                    # backlog while the open connections wind down. Shielded,
                    # or a cancelled serve would close the first one only.
                    with trio.CancelScope(shield=True):
                        for listener in server.listeners:
                            await trio.aclose_forcefully(listener)
    finally:
        server._stopped.set()


async def _accept_loop(
    server: Server,
    listener: trio.abc.Listener[trio.abc.Stream],
    nursery: trio.Nursery,
    config: _Config,
) -> None:
    while True:
        try:
            stream = await listener.accept()
        except OSError as exc:
            if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                raise
            server.logger.error("accept failed; retrying", exc_info=True)
            await trio.sleep(_ACCEPT_RETRY_DELAY)
        else:
            nursery.start_soon(_run_connection, server, stream, config)


async def _run_connection(
    server: Server, stream: trio.abc.Stream, config: _Config
) -> None:
    """Handshake, then run the handler; the stream is closed in the end."""
    try:
        try:
            ws = config.connection_options.create(config.create_connection, stream)
        except Exception:
            # A bug in create_connection costs this connection only.
            server.logger.error("create_connection failed", exc_info=True)
            return
        ws._server_header = config.server_header
        ws._trusted_proxies = config.trusted_proxies
        if not await _handshake(ws, stream, server, config):
            return
        server._connections.add(ws)
        # The handler runs here, beside the reader and heartbeat, rather than
        # in a coroutine of its own: one frame less kept per open connection.
        try:
            # Collapsed here, so that what leaves serve is one exception.
            with collapse_groups():
                async with trio.open_nursery() as nursery, running(ws, nursery):
                    await config.handler(ws)
        except Exception as exc:
            # The connection is closed (1011); the server goes on.
            if not isinstance(exc, ConnectionClosedOK):
                ws.logger.error("connection handler failed", exc_info=True)
        finally:
            server._connections.discard(ws)
    finally:
        await trio.aclose_forcefully(stream)


async def _maybe_await(
    value: Response | Awaitable[Response | None] | None,
) -> Response | None:
    if inspect.isawaitable(value):
        return await value
    return value


async def _handshake(
    ws: ServerConnection, stream: trio.abc.Stream, server: Server, config: _Config
) -> bool:
    """Run the opening handshake within ``open_timeout``; whether it opened."""
    # Reading the request and choosing the response happen inline, rather
    # than in a coroutine of their own: one object less per connection to
    # allocate and for the cyclic GC to track.
    handshake = ServerHandshake()
    with trio.CancelScope(deadline=trio.current_time() + seconds(config.open_timeout)):
        result: HandshakeResult | None = None
        try:
            request: Request | None = None
            while request is None:
                data = await stream.receive_some(READ_SIZE)
                if not data:
                    handshake.receive_eof()  # raises: the request is incomplete
                request = handshake.receive_data(data)
            ws.request = request
            early: Response | None = None
            if server._closing:
                early = ws.respond(503, "Server is shutting down.\n")
            elif config.process_request is not None:
                early = await _maybe_await(config.process_request(ws, request))
            if early is not None:
                response = early
            else:
                response, result = _accept(ws, handshake, request, config)
                if result is not None and config.process_response is not None:
                    replaced = await _maybe_await(
                        config.process_response(ws, request, response)
                    )
                    if replaced is not None:
                        response = replaced
        except InvalidHandshake as exc:
            # Malformed HTTP: a 4xx, never a traceback.
            ws.logger.debug("invalid request: %s", exc)
            response = handshake.bad_request(exc, server_header=config.server_header)
            result = None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            ws.logger.debug("connection lost during the opening handshake")
            return False
        except Exception:
            ws.logger.error("opening handshake failed", exc_info=True)
            response, result = (
                ws.respond(500, "Failed to open a WebSocket connection.\n"),
                None,
            )
        try:
            data = handshake.data_for_response(response)
        except Exception:
            # process_request or process_response returned an invalid
            # response, or something else than a Response.
            ws.logger.error("opening handshake failed", exc_info=True)
            return False
        ws.response = response
        try:
            await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            ws.logger.debug("connection lost during the opening handshake")
            return False
        if result is None or response.status_code != 101:
            return False
        ws.subprotocol = result.subprotocol
        ws._open(result.extensions, handshake.trailing_data)
        return True
    # Every way out of the block above returns: only the timeout gets here.
    ws.logger.debug("opening handshake timed out")
    return False


def _accept(
    ws: ServerConnection,
    handshake: ServerHandshake,
    request: Request,
    config: _Config,
) -> tuple[Response, HandshakeResult | None]:
    """The server's answer to ``request``, with the options of ``config``."""
    select = config.select_subprotocol
    return handshake.accept(
        request,
        subprotocols=config.subprotocols,
        select_subprotocol=None
        if select is None
        else (lambda offered: select(ws, offered)),
        origins=config.origins,
        compression=config.compression,
        server_header=config.server_header,
    )
