"""Following redirects while opening a connection.

Theory of operation
-------------------

A server may answer the upgrade request with a redirect (RFC 9110 section
15.4: 301, 302, 303, 307 or 308 with a ``Location`` header) instead of
``101``. :func:`~trio_ws.connect` then closes that connection and opens one
to the new URI, with a fresh handshake, inside the same ``open_timeout``.
:class:`Redirects` decides, without I/O, where each attempt goes:

1. ``Location`` is resolved against the URI of the request (RFC 3986 5.2),
   so ``/other`` and ``../x`` work. ``http://`` and ``https://`` there mean
   ``ws://`` and ``wss://``: a server that redirects every request of a host
   to HTTPS still sends a WebSocket client somewhere useful.
2. Never from ``wss://`` to ``ws://``: that would send the handshake, and
   everything after it, in clear text to whoever asked for the downgrade.
3. Credentials go only to the origin (scheme, host, port) they were given
   for: on a change of origin, the user info of the URI and any
   ``Authorization`` or ``Cookie`` header of ``additional_headers`` are
   dropped, and stay dropped for the rest of the chain.
4. A URI already tried is a loop, and at most ``max_redirects`` are followed;
   both fail at once with :exc:`~trio_ws.InvalidRedirect` rather than
   spending the whole ``open_timeout``.

Any other response (another status, or a redirect status without
``Location``) stays an :exc:`~trio_ws.InvalidStatus`.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from typing import TYPE_CHECKING, Final, final

from ._exceptions import InvalidRedirect, InvalidURI
from ._http import Headers
from ._uri import parse_uri

if TYPE_CHECKING:
    from ._http import HeadersLike, Response
    from ._uri import WebSocketURI

__all__ = ["REDIRECT_STATUSES", "Redirects"]

#: Statuses that send the client to ``Location`` (RFC 9110 section 15.4).
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})

# Request headers that carry credentials for one origin.
_CREDENTIALS: Final = ("Authorization", "Cookie")

# What an HTTP redirect means for a WebSocket client.
_SCHEMES: Final = {"http": "ws", "https": "wss"}


def _origin(uri: WebSocketURI) -> tuple[bool, str, int]:
    return uri.secure, uri.host, uri.port


def _target(uri: WebSocketURI) -> tuple[bool, str, int, str]:
    """What makes two requests the same, for loop detection."""
    return uri.secure, uri.host, uri.port, uri.path


@final
class Redirects:
    """The redirects followed while opening one connection.

    Args:
        uri: The URI given to :func:`~trio_ws.connect`.
        additional_headers: Its ``additional_headers``.
        max_redirects: How many redirects to follow at most.

    Attributes:
        uri: Where the next attempt goes.
        additional_headers: The extra headers for the next attempt, without
            credentials once the origin changed.
    """

    def __init__(
        self,
        uri: WebSocketURI,
        additional_headers: HeadersLike | None,
        max_redirects: int,
    ) -> None:
        self.uri = uri
        # A copy: an iterator of pairs would be used up by the first request.
        self.additional_headers = (
            None if additional_headers is None else Headers(additional_headers)
        )
        self._max = max_redirects
        self._tried = {_target(uri)}

    def follow(self, response: Response) -> bool:
        """Move :attr:`uri` to where ``response`` redirects, if it does.

        Returns:
            ``True`` when the next attempt goes to the new :attr:`uri`;
            ``False`` when ``response`` isn't a redirect (the caller raises
            :exc:`~trio_ws.InvalidStatus`).

        Raises:
            InvalidRedirect: A redirect that must not be followed.
        """
        locations = response.headers.get_all("Location")
        if response.status_code not in REDIRECT_STATUSES or not locations:
            return False
        location = urllib.parse.urljoin(str(self.uri), locations[0])
        if len(locations) > 1:
            raise InvalidRedirect(response, location, "several Location headers")
        scheme, sep, rest = location.partition(":")
        uri_text = _SCHEMES.get(scheme.lower(), scheme) + sep + rest
        try:
            new = parse_uri(uri_text)
        except InvalidURI as exc:
            raise InvalidRedirect(response, location, exc.msg) from exc
        if self.uri.secure and not new.secure:
            raise InvalidRedirect(response, location, "wss:// to ws:// is not allowed")
        if _target(new) in self._tried:
            raise InvalidRedirect(response, location, "redirect loop")
        if len(self._tried) > self._max:
            msg = f"more than {self._max} redirects"
            raise InvalidRedirect(response, location, msg)
        self._tried.add(_target(new))

        if _origin(new) == _origin(self.uri):
            if new.user_info is None:
                new = dataclasses.replace(new, user_info=self.uri.user_info)
        elif self.additional_headers is not None:
            for name in _CREDENTIALS:
                if name in self.additional_headers:
                    del self.additional_headers[name]  # every value of it
        self.uri = new
        return True
