"""Dispatching connections by request path: :class:`Router`.

A route pattern is a path whose ``{name}`` parts match one path segment
(``{name:path}``: the rest of the path, slashes included). Patterns compile
to regular expressions matched against the request path without its query
string; matched values are percent-decoded and passed to the handler as
keyword arguments. Routes are tried in the order they were added.

The router is used twice by :func:`~trio_ws.serve`: its
:meth:`~Router.process_request` answers 404 before any upgrade for a path
that no route matches, and the router itself is the handler.
"""

from __future__ import annotations

import inspect
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, TypeAlias, final

if TYPE_CHECKING:
    from ._http import Request, Response
    from ._server import ServerConnection

__all__ = ["Router"]

#: ``handler(ws, **params)``: an async function taking the connection and the
#: route's parameters as keyword arguments. Each handler has the parameters of
#: its own pattern, which no static type can spell: hence ``...``.
RouteHandler: TypeAlias = "Callable[..., Awaitable[None]]"  # type: ignore[explicit-any]
_ProcessRequest: TypeAlias = "Callable[[ServerConnection, Request], Response | Awaitable[Response | None] | None]"

_PARAM_RE: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")
#: Close code for a connection that reached the router with no route.
NO_ROUTE_CODE: Final = 1008


class _Route:
    __slots__ = ("handler", "pattern", "process_request", "regex")

    def __init__(
        self,
        pattern: str,
        handler: RouteHandler,
        process_request: _ProcessRequest | None,
    ) -> None:
        self.pattern = pattern
        self.regex = _compile(pattern)
        self.handler = handler
        self.process_request = process_request


def _compile(pattern: str) -> re.Pattern[str]:
    """Turn ``/rooms/{room}`` into a regular expression with named groups."""
    if not pattern.startswith("/"):
        msg = f"a route pattern starts with '/': {pattern!r}"
        raise ValueError(msg)
    parts: list[str] = []
    names: set[str] = set()
    position = 0
    for match in _PARAM_RE.finditer(pattern):
        parts.append(_literal(pattern, pattern[position : match.start()]))
        name = match.group(1)
        if name in names:
            msg = f"parameter {name!r} appears twice in route pattern {pattern!r}"
            raise ValueError(msg)
        names.add(name)
        # A segment never spans a "/"; a path parameter takes the rest.
        parts.append(f"(?P<{name}>.+)" if match.group(2) else f"(?P<{name}>[^/]+)")
        position = match.end()
    parts.append(_literal(pattern, pattern[position:]))
    return re.compile("".join(parts))


def _literal(pattern: str, text: str) -> str:
    if "{" in text or "}" in text:
        msg = f"invalid parameter in route pattern {pattern!r}"
        raise ValueError(msg)
    return re.escape(text)


@final
class Router:
    """Send each connection to a handler chosen by its request path.

    ::

        router = trio_ws.Router()

        @router.route("/rooms/{room}")
        async def room(ws: trio_ws.ServerConnection, room: str) -> None:
            await ws.send(f"welcome to {room}")

        await trio_ws.serve(router, 8765, process_request=router.process_request)

    With ``process_request=router.process_request``, a request for a path that
    no route matches gets a ``404 Not Found`` with a plain-text body, and the
    connection is never upgraded. Without it, such a connection is upgraded,
    then closed with 1008 (policy violation) by the router.

    Patterns: ``{name}`` matches one non-empty path segment, ``{name:path}``
    the rest of the path (slashes included); everything else matches
    literally, with no trailing-slash leniency. The query string is ignored.
    Parameters reach the handler as keyword arguments, percent-decoded, as
    :class:`str`. The first route that matches wins.
    """

    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def add(
        self,
        pattern: str,
        handler: RouteHandler,
        *,
        process_request: _ProcessRequest | None = None,
    ) -> None:
        """Route the paths matching ``pattern`` to ``handler``.

        Args:
            pattern: A path such as ``/rooms/{room}`` or ``/files/{rest:path}``.
            handler: ``async def handler(ws, **params)``.
            process_request: Runs for this route only, after the path matched,
                when :meth:`process_request` is the server's
                ``process_request`` (plain or async, as for
                :func:`~trio_ws.serve`): e.g. :func:`~trio_ws.basic_auth` for
                one route.

        Raises:
            ValueError: ``pattern`` does not start with ``/``, has a
                malformed ``{...}`` part, or names a parameter twice.
        """
        self._routes.append(_Route(pattern, handler, process_request))

    def route(
        self, pattern: str, *, process_request: _ProcessRequest | None = None
    ) -> Callable[[RouteHandler], RouteHandler]:
        """Decorator form of :meth:`add`: ``@router.route("/rooms/{room}")``.

        Args:
            pattern: As for :meth:`add`.
            process_request: As for :meth:`add`.

        Returns:
            A decorator that adds the route and returns the handler unchanged.
        """

        def decorator(handler: RouteHandler) -> RouteHandler:
            self.add(pattern, handler, process_request=process_request)
            return handler

        return decorator

    def match(self, path: str) -> tuple[RouteHandler, dict[str, str]] | None:
        """Find the route for ``path``.

        Args:
            path: A request path, with or without its query string.

        Returns:
            ``(handler, params)`` for the first matching route, or ``None``.
        """
        found = self._find(path)
        if found is None:
            return None
        route, params = found
        return route.handler, params

    def _find(self, path: str) -> tuple[_Route, dict[str, str]] | None:
        path = path.partition("?")[0]
        for route in self._routes:
            match = route.regex.fullmatch(path)
            if match is not None:
                params = {
                    name: urllib.parse.unquote(value)
                    for name, value in match.groupdict().items()
                }
                return route, params
        return None

    async def process_request(
        self, ws: ServerConnection, request: Request
    ) -> Response | None:
        """Answer 404 for a path without a route; pass ``request`` on otherwise.

        Give it to :func:`~trio_ws.serve` as ``process_request``. For a
        matching route with its own ``process_request``, returns what that
        returns.

        Args:
            ws: The connection being opened.
            request: Its HTTP request.

        Returns:
            A 404 response with the plain-text body ``Not found.``, the
            route's own answer, or ``None`` to go on with the upgrade.

        Cancellation:
            As cancellable as the route's ``process_request``.
        """
        found = self._find(request.path)
        if found is None:
            return ws.respond(404, "Not found.\n")
        route = found[0]
        if route.process_request is None:
            return None
        result = route.process_request(ws, request)
        if inspect.isawaitable(result):
            return await result
        return result

    async def __call__(self, ws: ServerConnection) -> None:
        """The handler: run the route's handler with the path's parameters.

        A connection whose path has no route (possible only without
        :meth:`process_request`) is closed with 1008.

        Cancellation:
            Cancelling it cancels the route's handler.
        """
        found = None if ws.request is None else self._find(ws.request.path)
        if found is None:
            await ws.aclose(NO_ROUTE_CODE, "no route for this path")
            return
        route, params = found
        await route.handler(ws, **params)
