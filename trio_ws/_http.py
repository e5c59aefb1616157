"""HTTP requests, responses and headers as trio_ws users see them.

The opening handshake is an HTTP/1.1 exchange (RFC 6455 section 4). h11 reads
and writes it in :mod:`trio_ws._handshake`; what reaches users, and what they
hand back from ``process_request`` and ``process_response``, are the plain
classes defined here, so that no h11 type leaks into the public API.
"""

from __future__ import annotations

import dataclasses
import email.utils
import http
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import TypeAlias, final

__all__ = [
    "Headers",
    "HeadersLike",
    "MultipleValuesError",
    "Request",
    "Response",
    "plain_response",
]


class MultipleValuesError(LookupError):
    """A header looked up with ``headers[name]`` has several values.

    Use :meth:`Headers.get_all` to read every value of a header that may be
    repeated.

    Args:
        name: The name of the header, as it was looked up.

    Attributes:
        name: The name of the header, as it was looked up.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"multiple values for header {self.name!r}"


@final
class Headers(MutableMapping[str, str]):
    """A case-insensitive multi-mapping of HTTP headers.

    HTTP allows a header to appear several times, and header names are
    case-insensitive. :class:`Headers` keeps every ``(name, value)`` pair in
    the order it was added, with the name as given, and answers lookups
    whatever the case of the name::

        >>> headers = Headers([("Set-Cookie", "a=1"), ("Host", "example.com")])
        >>> headers["set-cookie"] = "b=2"
        >>> headers["host"]
        'example.com'
        >>> headers.get_all("Set-Cookie")
        ['a=1', 'b=2']
        >>> headers["Set-Cookie"]
        Traceback (most recent call last):
          ...
        trio_ws.MultipleValuesError: multiple values for header 'Set-Cookie'

    As a mapping, it goes over the distinct header names, in lower case.
    Setting a value **adds** it (``headers[name] = value`` appends, as
    :meth:`update` does); delete the header first to replace it.

    Args:
        *args: At most one :class:`Headers`, mapping of names to values, or
            iterable of ``(name, value)`` pairs.
        **kwargs: More headers, given as keyword arguments.

    Raises:
        TypeError: If more than one positional argument is given.
    """

    __slots__ = ("_dict", "_list")

    def __init__(self, *args: HeadersLike, **kwargs: str) -> None:
        # Values by lower-cased name, and every pair in arrival order.
        self._dict: dict[str, list[str]] = {}
        self._list: list[tuple[str, str]] = []
        self.update(*args, **kwargs)

    def __str__(self) -> str:
        """The headers as they look on the wire, blank line included."""
        lines = [f"{name}: {value}\r\n" for name, value in self._list]
        return "".join(lines) + "\r\n"

    def __repr__(self) -> str:
        return f"Headers({self._list!r})"

    def copy(self) -> Headers:
        """Return an independent copy of these headers."""
        return Headers(self._list)

    # copy.copy() would share the internal lists with the original.
    __copy__ = copy

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._dict

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __getitem__(self, name: str) -> str:
        """Return the only value of the header ``name``.

        Raises:
            KeyError: If the header is absent.
            MultipleValuesError: If the header has several values.
        """
        try:
            values = self._dict[name.lower()]
        except KeyError:
            # Report the name as looked up, not lower-cased.
            raise KeyError(name) from None
        if len(values) > 1:
            raise MultipleValuesError(name)
        return values[0]

    def __setitem__(self, name: str, value: str) -> None:
        """Add a value to the header ``name``, after any existing ones."""
        self._dict.setdefault(name.lower(), []).append(value)
        self._list.append((name, value))

    def __delitem__(self, name: str) -> None:
        """Remove every value of the header ``name``.

        Raises:
            KeyError: If the header is absent.
        """
        lower = name.lower()
        if lower not in self._dict:
            raise KeyError(name)
        del self._dict[lower]
        self._list = [pair for pair in self._list if pair[0].lower() != lower]

    def __eq__(self, other: object) -> bool:
        # The same values, in the same order, for each name; the case of the
        # names and the interleaving of different names don't matter.
        if not isinstance(other, Headers):
            return NotImplemented
        return self._dict == other._dict

    def clear(self) -> None:
        """Remove every header."""
        self._dict = {}
        self._list = []

    # The signature differs from MutableMapping.update's overloads: it also
    # takes Headers, whose repeated values a plain mapping can't express.
    def update(self, *args: HeadersLike, **kwargs: str) -> None:  # type: ignore[override]
        """Add headers, keeping the existing ones.

        Args:
            *args: At most one :class:`Headers`, mapping of names to values,
                or iterable of ``(name, value)`` pairs.
            **kwargs: More headers, given as keyword arguments.

        Raises:
            TypeError: If more than one positional argument is given.
        """
        if len(args) > 1:
            raise TypeError(f"update expected at most 1 argument, got {len(args)}")
        if args:
            other = args[0]
            # Going through raw_items() keeps every value of a repeated
            # header, which the mapping interface can't return.
            if isinstance(other, Headers):
                pairs: Iterable[tuple[str, str]] = other.raw_items()
            elif isinstance(other, Mapping):
                pairs = other.items()
            else:
                pairs = other
            for name, value in pairs:
                self[name] = value
        for name, value in kwargs.items():
            self[name] = value

    def get_all(self, name: str) -> list[str]:
        """Return every value of the header ``name``, in order.

        Returns:
            A new list, empty if the header is absent.
        """
        return list(self._dict.get(name.lower(), ()))

    def raw_items(self) -> Iterator[tuple[str, str]]:
        """Iterate over every ``(name, value)`` pair, names as given, in order."""
        return iter(list(self._list))


#: What trio_ws accepts wherever headers are expected: :class:`Headers`, a
#: mapping of names to values, or an iterable of ``(name, value)`` pairs.
HeadersLike: TypeAlias = Headers | Mapping[str, str] | Iterable[tuple[str, str]]


@final
@dataclasses.dataclass
class Request:
    """The HTTP request that opens a WebSocket connection.

    Only ``GET`` requests in HTTP/1.1 reach users: the server answers others
    itself. On the client side, this is the request that was sent.

    Attributes:
        path: The request target: the path, and the query string if any,
            for example ``/chat?room=1``.
        headers: The request headers.
    """

    path: str
    headers: Headers


@final
@dataclasses.dataclass
class Response:
    """An HTTP response to the opening handshake.

    On the server side, ``process_request`` may return one to answer a request
    without upgrading it (see :meth:`~trio_ws.ServerConnection.respond`), and
    ``process_response`` may change or replace the ``101 Switching
    Protocols`` one. On the client side, it is what the server answered; a
    status other than 101 raises :exc:`~trio_ws.InvalidStatus`, which
    carries the response.

    Attributes:
        status_code: The HTTP status code, for example 101 or 403.
        reason_phrase: The reason phrase, for example ``Forbidden``.
        headers: The response headers.
        body: The response body; empty for a 101 response.
    """

    status_code: int
    reason_phrase: str
    headers: Headers
    body: bytes = b""


def plain_response(status: int, text: str, *, server_header: str | None) -> Response:
    """Build a short plain-text response, the fallback when not upgrading.

    The response says ``Connection: close``, as the server closes the
    connection after any response but a 101.

    Args:
        status: The HTTP status code.
        text: The body, sent encoded in UTF-8.
        server_header: The value of the ``Server`` header, or ``None`` to
            leave it out.

    Returns:
        A response with the ``Date``, ``Server`` (when given), ``Connection``,
        ``Content-Type`` and ``Content-Length`` headers set.
    """
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        # An unregistered status: HTTP allows an empty reason phrase.
        reason = ""
    body = text.encode()
    headers = Headers()
    headers["Date"] = email.utils.formatdate(usegmt=True)
    if server_header is not None:
        headers["Server"] = server_header
    headers["Connection"] = "close"
    headers["Content-Type"] = "text/plain; charset=utf-8"
    headers["Content-Length"] = str(len(body))
    return Response(status, reason, headers, body)
