"""Parse ``ws://`` and ``wss://`` URIs (RFC 6455 section 3).

:func:`parse_uri` turns the URI given to :func:`trio_ws.connect` into a
:class:`WebSocketURI`: where to connect (``host``, ``port``, ``secure``) and
what to put in the request line (``path``) and in the ``Host`` and
``Authorization`` headers. Internationalised host names and paths are
converted to their ASCII forms here, so that the handshake only ever sends
ASCII.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import ipaddress
import re
import urllib.parse
from typing import final

from ._exceptions import InvalidURI

__all__ = ["WebSocketURI", "parse_uri"]

_DEFAULT_PORTS = {False: 80, True: 443}

# Characters left as they are when percent-encoding a path, a query or user
# info: RFC 3986 gen-delims and sub-delims, plus "%" so that existing escapes
# survive. Anything else that isn't unreserved (non-ASCII, spaces, quotes...)
# is percent-encoded, which turns an IRI into a URI (RFC 3987 section 3.1).
_SAFE = "!$%&'()*+,/:;=?@[]~"

# RFC 3986 reg-name and IPv4address characters, once percent-decoded and
# IDNA-encoded.
_HOST_RE = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=]+")

# Control characters would be silently dropped by urllib (tabs and newlines)
# or make an invalid request line; refuse them instead of guessing.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@final
@dataclasses.dataclass(frozen=True)
class WebSocketURI:
    """A parsed WebSocket URI.

    Attributes:
        secure: ``True`` for ``wss://``, ``False`` for ``ws://``.
        host: What to connect to: the host name (percent-decoded,
            IDNA-encoded, lower case) or IP address. IPv6 addresses come
            without brackets, with their zone ID (``fe80::1%eth0``) if any.
        port: The port, 80 or 443 when the URI has none.
        path: The resource name sent in the request line: the path, at least
            ``/``, then ``?`` and the query if there is one. Non-ASCII
            characters are percent-encoded.
        user_info: ``(username, password)``, percent-decoded, when the URI
            carries credentials; they become HTTP Basic authentication.
    """

    secure: bool
    host: str
    port: int
    path: str
    user_info: tuple[str, str] | None = None

    @property
    def host_header(self) -> str:
        """The value of the ``Host`` header (RFC 6455 section 4.1, item 4).

        The port appears only when it isn't the default one for the scheme;
        IPv6 addresses are enclosed in brackets.
        """
        # Only IPv6 addresses contain colons: reg-names and IPv4 can't. A
        # zone ID's "%" is escaped as in the URI (RFC 6874 section 2).
        if ":" in self.host:
            host = "[" + self.host.replace("%", "%25") + "]"
        else:
            host = self.host
        if self.port != _DEFAULT_PORTS[self.secure]:
            return f"{host}:{self.port}"
        return host

    @property
    def authorization(self) -> str | None:
        """The value of the ``Authorization`` header, or ``None``.

        ``Basic`` followed by the base64 of ``username:password`` encoded in
        UTF-8 (RFC 7617 section 2), when the URI carries user info.
        """
        if self.user_info is None:
            return None
        credentials = ":".join(self.user_info).encode()
        return "Basic " + base64.b64encode(credentials).decode("ascii")

    def __str__(self) -> str:
        scheme = "wss" if self.secure else "ws"
        return f"{scheme}://{self.host_header}{self.path}"


def parse_uri(uri: str) -> WebSocketURI:
    """Parse and validate a WebSocket URI.

    The result is immutable, so the last few valid URIs are remembered: a
    client connecting again and again parses its URI once. URIs with user
    info aren't, so that credentials stay in memory no longer than the
    caller keeps them.

    Args:
        uri: A ``ws://`` or ``wss://`` URI (or IRI: non-ASCII host names and
            paths are accepted and converted).

    Returns:
        The parsed URI.

    Raises:
        InvalidURI: If ``uri`` isn't a valid WebSocket URI: another scheme, no
            host, a fragment, a bad port, a user name without a password...
    """
    if type(uri) is str and "@" not in uri:
        return _parse_cached(uri)
    return _parse(uri)


def _parse(uri: str) -> WebSocketURI:
    """:func:`parse_uri`, every time."""
    if _CONTROL_RE.search(uri):
        raise InvalidURI(uri, "control characters aren't allowed")
    try:
        # Lone surrogates have no UTF-8 form, hence no percent-encoding.
        uri.encode()
    except UnicodeEncodeError as exc:
        raise InvalidURI(uri, "invalid characters") from exc
    # RFC 6455 section 3: fragment identifiers are meaningless in WebSocket
    # URIs and "#" must be escaped as %23 anywhere else.
    if "#" in uri:
        raise InvalidURI(uri, "fragments aren't allowed")
    try:
        parsed = urllib.parse.urlsplit(uri)
        hostname = parsed.hostname
        port = parsed.port
    except ValueError as exc:
        # Invalid IPv6 literal, port out of range or not a number.
        raise InvalidURI(uri, str(exc)) from exc

    if parsed.scheme not in ("ws", "wss"):
        raise InvalidURI(uri, "scheme isn't ws or wss")
    secure = parsed.scheme == "wss"
    if not hostname:
        raise InvalidURI(uri, "missing host")
    if port is None:
        port = _DEFAULT_PORTS[secure]
    elif port == 0:
        raise InvalidURI(uri, "port 0 isn't a destination")

    host_port = parsed.netloc.rpartition("@")[2]
    if host_port.startswith("["):
        hostname = _ip_literal(uri, host_port)
    else:
        hostname = _reg_name(uri, hostname)

    path = urllib.parse.quote(parsed.path or "/", safe=_SAFE)
    if parsed.query:
        path += "?" + urllib.parse.quote(parsed.query, safe=_SAFE)

    user_info = None
    if parsed.username is not None:
        # HTTP Basic authentication needs both; a bare user name is most
        # likely a mistake rather than an empty password.
        if parsed.password is None:
            raise InvalidURI(uri, "username provided without password")
        user_info = (
            urllib.parse.unquote(parsed.username),
            urllib.parse.unquote(parsed.password),
        )

    return WebSocketURI(secure, hostname, port, path, user_info)


#: :func:`_parse`, for the last few URIs (errors aren't remembered).
_parse_cached = functools.lru_cache(maxsize=32)(_parse)


def _ip_literal(uri: str, host_port: str) -> str:
    """The IPv6 address of ``[address]`` or ``[address]:port`` (RFC 3986 3.2.2).

    urlsplit lets through what follows ``]`` when it isn't a port, and only
    recent Pythons check what is inside the brackets.
    """
    literal, _, rest = host_port[1:].partition("]")
    if rest and not rest.startswith(":"):
        raise InvalidURI(uri, "invalid IPv6 literal")
    # A zone ID is case-sensitive and escapes "%" as "%25" (RFC 6874).
    address, percent, zone = literal.partition("%")
    host = address.lower() + urllib.parse.unquote(percent + zone)
    try:
        ipaddress.IPv6Address(host)
    except ValueError as exc:
        # IPvFuture literals ("[v1.x]") end up here too.
        raise InvalidURI(uri, "invalid IPv6 address") from exc
    return host


def _reg_name(uri: str, hostname: str) -> str:
    """A host name or IPv4 address, decoded and converted to ASCII."""
    try:
        host = urllib.parse.unquote(hostname, errors="strict")
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise InvalidURI(uri, "invalid host name") from exc
    if not _HOST_RE.fullmatch(host):
        raise InvalidURI(uri, "invalid host name")
    return host
