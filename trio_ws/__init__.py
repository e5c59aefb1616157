"""trio_ws: WebSocket client and server for trio, on wsproto and h11."""

from __future__ import annotations

import contextlib

from ._auth import basic_auth as basic_auth
from ._bound import open_connection as open_connection
from ._broadcast import broadcast as broadcast
from ._client import ClientConnection as ClientConnection, connect as connect
from ._close import Close as Close, CloseCode as CloseCode
from ._connection import Connection as Connection
from ._exceptions import (
    ConnectionClosed as ConnectionClosed,
    ConnectionClosedError as ConnectionClosedError,
    ConnectionClosedOK as ConnectionClosedOK,
    InvalidHandshake as InvalidHandshake,
    InvalidHeader as InvalidHeader,
    InvalidRedirect as InvalidRedirect,
    InvalidStatus as InvalidStatus,
    InvalidURI as InvalidURI,
    NegotiationError as NegotiationError,
    PayloadTooBig as PayloadTooBig,
    ProtocolError as ProtocolError,
    ProxyError as ProxyError,
    WebSocketError as WebSocketError,
)
from ._http import (
    Headers as Headers,
    MultipleValuesError as MultipleValuesError,
    Request as Request,
    Response as Response,
)
from ._protocol import State as State
from ._reconnect import reconnect as reconnect, retryable as retryable
from ._routing import Router as Router
from ._server import (
    Server as Server,
    ServerConnection as ServerConnection,
    serve as serve,
)
from ._version import __version__ as __version__
from ._workers import WorkerPool as WorkerPool, serve_workers as serve_workers

__all__ = [
    "ClientConnection",
    "Close",
    "CloseCode",
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Headers",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidRedirect",
    "InvalidStatus",
    "InvalidURI",
    "MultipleValuesError",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "ProxyError",
    "Request",
    "Response",
    "Router",
    "Server",
    "ServerConnection",
    "State",
    "WebSocketError",
    "WorkerPool",
    "__version__",
    "basic_auth",
    "broadcast",
    "connect",
    "open_connection",
    "reconnect",
    "retryable",
    "serve",
    "serve_workers",
]


def _fixup_module_metadata() -> None:
    # Public names show as trio_ws.X in reprs, tracebacks and docs.
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("trio_ws."):
            with contextlib.suppress(AttributeError, TypeError):
                obj.__module__ = "trio_ws"


_fixup_module_metadata()
del _fixup_module_metadata
