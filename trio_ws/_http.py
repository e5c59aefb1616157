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
from typing import Final, TypeAlias, final

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

    # Three parallel lists, one entry per (name, value) pair in arrival
    # order: the lower-cased name (for lookups), the name as given, and the
    # value. Requests and responses have a handful of headers: scanning such
    # lists is about as fast as a dict lookup, and they take a fraction of
    # the memory of a dict of lists, which every open connection would keep
    # twice (its request and response). Lower-cased names are shared between
    # instances (see _lower). Headers that a connection keeps (its request
    # and response) hold tuples instead (see _compact): the cyclic GC stops
    # tracking a tuple of strings, so that they cost nothing at each full
    # collection; a change makes them lists again (see _lists).
    __slots__ = ("_keys", "_names", "_values")

    _keys: list[str] | tuple[str, ...]
    _names: list[str] | tuple[str, ...]
    _values: list[str] | tuple[str, ...]

    def __init__(self, *args: HeadersLike, **kwargs: str) -> None:
        self._keys = []
        self._names = []
        self._values = []
        if args or kwargs:
            self.update(*args, **kwargs)

    @classmethod
    def _from_lists(
        cls,
        keys: list[str] | tuple[str, ...],
        names: list[str] | tuple[str, ...],
        values: list[str] | tuple[str, ...],
    ) -> Headers:
        """Adopt three parallel lists (or tuples), ``keys`` already lower-cased."""
        headers = cls.__new__(cls)
        headers._keys, headers._names, headers._values = keys, names, values
        return headers

    def _compact(self) -> None:
        """Hold tuples rather than lists, for headers that are kept."""
        self._keys = tuple(self._keys)
        self._names = tuple(self._names)
        self._values = tuple(self._values)

    def _lists(self) -> tuple[list[str], list[str], list[str]]:
        """The three lists, made again from tuples if :meth:`_compact` ran."""
        keys, names, values = self._keys, self._names, self._values
        if type(keys) is list and type(names) is list and type(values) is list:
            return keys, names, values
        lists = list(keys), list(names), list(values)
        self._keys, self._names, self._values = lists
        return lists

    def __str__(self) -> str:
        """The headers as they look on the wire, blank line included."""
        lines = [
            f"{name}: {value}\r\n"
            for name, value in zip(self._names, self._values, strict=True)
        ]
        return "".join(lines) + "\r\n"

    def __repr__(self) -> str:
        return f"Headers({list(zip(self._names, self._values, strict=True))!r})"

    def copy(self) -> Headers:
        """Return an independent copy of these headers."""
        return Headers._from_lists(
            list(self._keys), list(self._names), list(self._values)
        )

    # copy.copy() would share the internal lists with the original.
    __copy__ = copy

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(self._keys))

    def __len__(self) -> int:
        return len(set(self._keys))

    def __getitem__(self, name: str) -> str:
        """Return the only value of the header ``name``.

        Raises:
            KeyError: If the header is absent.
            MultipleValuesError: If the header has several values.
        """
        values = self.get_all(name)
        if not values:
            # Report the name as looked up, not lower-cased.
            raise KeyError(name)
        if len(values) > 1:
            raise MultipleValuesError(name)
        return values[0]

    def __setitem__(self, name: str, value: str) -> None:
        """Add a value to the header ``name``, after any existing ones."""
        keys, names, values = self._lists()
        keys.append(_lower(name))
        names.append(name)
        values.append(value)

    def __delitem__(self, name: str) -> None:
        """Remove every value of the header ``name``.

        Raises:
            KeyError: If the header is absent.
        """
        key = name.lower()
        keys = self._keys
        if key not in keys:
            raise KeyError(name)
        kept = [i for i, k in enumerate(keys) if k != key]
        self._keys = [keys[i] for i in kept]
        self._names = [self._names[i] for i in kept]
        self._values = [self._values[i] for i in kept]

    def _by_name(self) -> dict[str, list[str]]:
        by_name: dict[str, list[str]] = {}
        for key, value in zip(self._keys, self._values, strict=True):
            by_name.setdefault(key, []).append(value)
        return by_name

    def __eq__(self, other: object) -> bool:
        # The same values, in the same order, for each name; the case of the
        # names and the interleaving of different names don't matter.
        if not isinstance(other, Headers):
            return NotImplemented
        return self._by_name() == other._by_name()

    def clear(self) -> None:
        """Remove every header."""
        self._keys = []
        self._names = []
        self._values = []

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
        key = name.lower()
        keys = self._keys
        # List scans in C; most headers appear once or not at all.
        if key not in keys:
            return []
        first = keys.index(key)
        if keys.count(key) == 1:
            return [self._values[first]]
        values = self._values
        return [values[i] for i in range(first, len(keys)) if keys[i] == key]

    def raw_items(self) -> Iterator[tuple[str, str]]:
        """Iterate over every ``(name, value)`` pair, names as given, in order."""
        return iter(list(zip(self._names, self._values, strict=True)))


#: Lower-cased header names by name, so that every Headers shares one string
#: per name. Bounded, as names may come from the network: past the bound,
#: names are lower-cased without being remembered, as are names longer than
#: 128 characters (512 of them could take megabytes).
_LOWER: dict[str, str] = {}
_LOWER_MAX: Final = 512


def _lower(name: str) -> str:
    """``name.lower()``, the same string object for equal names when possible."""
    try:
        return _LOWER[name]
    except KeyError:
        pass
    except TypeError:
        # Not hashable: let str.lower report the wrong type.
        return name.lower()
    lower = name.lower()
    if len(_LOWER) < _LOWER_MAX and type(name) is str and len(name) <= 128:
        _LOWER[name] = _LOWER.setdefault(lower, lower)
    return lower


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
