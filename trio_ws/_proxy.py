"""Client proxies: HTTP ``CONNECT``, HTTPS proxies and SOCKS5.

Theory of operation: a proxy is only a different way to obtain the byte
stream that :func:`trio_ws.connect` runs TLS (for ``wss://``) and the
WebSocket handshake over. :func:`open_tunnel` connects to the proxy, wraps the
connection in TLS for an ``https://`` proxy, then holds one short
conversation that asks the proxy for a tunnel to the target; what it returns
is a stream to the target, and the WebSocket layers above never know.

The conversations are sans-I/O, in the shape of the handshake: an object
gives bytes to send (``data_to_send``) and takes bytes received
(``receive_data``, ``b""`` at EOF), returning ``True`` once the tunnel is
open and raising :exc:`~trio_ws.ProxyError` when the proxy refuses or breaks
its protocol.

- :class:`HTTPConnect`: ``CONNECT host:port`` (RFC 9110 section 9.3.6) on
  h11, with ``Proxy-Authorization: Basic`` when the proxy URI has
  credentials. Any 2xx opens the tunnel; 1xx are skipped; anything else
  (407 included) fails. h11 bounds the size of the response head.
- :class:`Socks5Connect`: RFC 1928 with the username/password method of RFC
  1929 when the proxy URI has credentials. Each reply has a bounded size.

The client speaks first in both WebSocket and TLS, so a proxy that sends
bytes past its reply before the tunnel was used is breaking its protocol:
those bytes are refused rather than carried over.

Proxy credentials go to the proxy only, in the conversation above, never into
the WebSocket handshake that travels through the tunnel to the target.

:func:`proxy_from_environment` reads the usual variables (``https_proxy``,
``http_proxy``, ``all_proxy``, ``no_proxy``, lower case first) without any
DNS lookup; only :func:`resolve_proxy` looks at :data:`os.environ`.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import os
import re
import urllib.parse
from collections.abc import Mapping
from typing import Literal, final

import h11
import trio

from ._connection import READ_SIZE
from ._exceptions import ProxyError

__all__ = [
    "HTTPConnect",
    "ProxyURI",
    "Socks5Connect",
    "open_tunnel",
    "parse_proxy_uri",
    "proxy_from_environment",
    "resolve_proxy",
]

_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}

# Separators in no_proxy: commas, as everyone writes it, and spaces, which
# some tools accept.
_NO_PROXY_SEP = re.compile(r"[\s,]+")

# RFC 1928 section 6.
_SOCKS5_REPLIES = {
    0x01: "general SOCKS server failure",
    0x02: "connection not allowed by ruleset",
    0x03: "network unreachable",
    0x04: "host unreachable",
    0x05: "connection refused",
    0x06: "TTL expired",
    0x07: "command not supported",
    0x08: "address type not supported",
}


@final
@dataclasses.dataclass(frozen=True)
class ProxyURI:
    """A parsed proxy URI.

    Attributes:
        scheme: ``http``, ``https``, ``socks5`` (the client resolves the
            target's name) or ``socks5h`` (the proxy resolves it).
        host: The proxy's host name or IP address, without brackets.
        port: The proxy's port.
        username: The user name for the proxy, if any.
        password: The password for the proxy, if any.
    """

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        # Credentials stay out: this string goes into logs and messages.
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_proxy_uri(uri: str) -> ProxyURI:
    """Parse ``scheme://[user:password@]host[:port]``; no scheme means http.

    Raises:
        ValueError: The scheme is not one of http, https, socks5, socks5h, or
            the URI has no host or a bad port.
    """
    if "://" not in uri:
        uri = "http://" + uri
    parts = urllib.parse.urlsplit(uri.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        msg = f"unsupported proxy scheme {scheme!r}: use http, https, socks5 or socks5h"
        raise ValueError(msg)
    if not parts.hostname:
        msg = f"proxy URI has no host: {uri!r}"
        raise ValueError(msg)
    port = parts.port  # raises ValueError for a bad port
    username = password = None
    if parts.username is not None:
        username = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
    return ProxyURI(
        scheme,
        parts.hostname,
        _DEFAULT_PORTS[scheme] if port is None else port,
        username,
        password,
    )


def resolve_proxy(
    proxy: str | Literal[True], secure: bool, host: str, port: int
) -> ProxyURI | None:
    """The proxy to use for ``host:port``: ``proxy``, or the environment's."""
    if proxy is True:
        environ = _proxy_environ()
        if not environ:
            return None
        from_env = proxy_from_environment(secure, host, port, environ)
        return None if from_env is None else parse_proxy_uri(from_env)
    return parse_proxy_uri(proxy)


# The variables proxy_from_environment reads.
_ENV_NAMES = (
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "REQUEST_METHOD",
)

# os.environ keeps the environment in its _data dict, under encoded names
# (bytes on POSIX, upper case on Windows). Looking a name up there costs a
# dict lookup; os.environ.get encodes the name, then raises and catches a
# KeyError for each variable that isn't set: about 6 microseconds per
# connection for the usual case, no proxy at all. _data is CPython's
# (since 3.2); without it (or if os.environ was replaced by something else),
# os.environ is read as is.
_env_keys = tuple(map(os.environ.encodekey, _ENV_NAMES))
# The raw values of _ENV_NAMES, and the variables among them that are set.
_env_cache: tuple[tuple[object, ...], Mapping[str, str]] = ((), {})


def _proxy_environ() -> Mapping[str, str]:
    """The proxy variables of :data:`os.environ` (those that are set).

    Read again whenever the value of one of them changed since the last
    call, so that a changed environment is honoured at the next connection.
    """
    global _env_cache  # replaced whole, never mutated: safe across threads
    environ = os.environ
    data = getattr(environ, "_data", None) if type(environ) is os._Environ else None
    if not isinstance(data, dict):
        return environ
    key = tuple(map(data.get, _env_keys))
    cached_key, cached = _env_cache
    if key != cached_key:
        cached = {name: environ[name] for name in _ENV_NAMES if name in environ}
        _env_cache = (key, cached)
    return cached


def proxy_from_environment(
    secure: bool, host: str, port: int, environ: Mapping[str, str]
) -> str | None:
    """The proxy URI the environment sets for ``host:port``, or ``None``.

    ``https_proxy`` for ``wss://`` and ``http_proxy`` for ``ws://``, else
    ``all_proxy``; each in lower case, then in upper case, the first
    non-empty one winning. ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD``
    is set: in a CGI script it comes from the client's ``Proxy:`` header.
    ``no_proxy`` then may exempt the host (see :func:`bypasses_proxy`).
    """
    names = ("https_proxy", "HTTPS_PROXY") if secure else ("http_proxy", "HTTP_PROXY")
    for name in (*names, "all_proxy", "ALL_PROXY"):
        if name == "HTTP_PROXY" and "REQUEST_METHOD" in environ:
            continue
        value = environ.get(name, "").strip()
        if value:
            break
    else:
        return None
    no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
    return None if bypasses_proxy(no_proxy, host, port) else value


def bypasses_proxy(no_proxy: str, host: str, port: int) -> bool:
    """Whether a ``no_proxy`` value exempts ``host:port`` from the proxy.

    Entries are separated by commas or spaces: ``*`` matches every host; a
    domain (``example.com``, ``.example.com`` or ``*.example.com``) matches
    itself and its subdomains; an IP address or CIDR network
    (``10.0.0.0/8``, ``::1``) matches IP hosts in it; ``:port`` after any of
    them (``[::1]:8080`` for IPv6) limits it to that port. Names are compared
    as written, never resolved.
    """
    host = host.lower().rstrip(".")
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        ip = None
    for entry in _NO_PROXY_SEP.split(no_proxy.lower()):
        if entry == "*":
            return True
        name, entry_port = _split_port(entry)
        if not name or (entry_port is not None and entry_port != port):
            continue
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                continue
        else:
            name = name.removeprefix("*").strip(".")
            if name and (host == name or host.endswith("." + name)):
                return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """Split ``host:port``, ``[v6]:port`` or ``[v6]``; a bare IPv6 has no port."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
    elif entry.count(":") == 1:
        name, _, port = entry.partition(":")
    else:
        return entry, None
    if not port:
        return name, None
    # A port that isn't a number can match no connection: an empty name
    # makes the entry match nothing.
    return (name, int(port)) if port.isdigit() else ("", None)


def _authority(host: str, port: int) -> str:
    """``host:port`` with brackets around an IPv6 address (RFC 9110 7.2)."""
    if ":" in host:
        return f"[{host.replace('%', '%25')}]:{port}"
    return f"{host}:{port}"


@final
class HTTPConnect:
    """The ``CONNECT`` conversation with an HTTP proxy, sans-I/O.

    Args:
        host: The target host (name or IP address).
        port: The target port.
        username: The proxy user name; with ``password``, sent as
            ``Proxy-Authorization: Basic``.
        password: The proxy password.
    """

    def __init__(
        self, host: str, port: int, username: str | None, password: str | None
    ) -> None:
        authority = _authority(host, port)
        headers = [("Host", authority)]
        if username is not None:
            credentials = f"{username}:{password or ''}".encode()
            token = base64.b64encode(credentials).decode("ascii")
            headers.append(("Proxy-Authorization", "Basic " + token))
        self._h11 = h11.Connection(h11.CLIENT)
        request = h11.Request(method="CONNECT", target=authority, headers=headers)
        self._out = self._h11.send(request) + (
            self._h11.send(h11.EndOfMessage()) or b""
        )

    def data_to_send(self) -> bytes:
        """Bytes to send to the proxy now (the request, once)."""
        out, self._out = self._out, b""
        return out

    def receive_data(self, data: bytes | bytearray) -> bool:
        """Take bytes from the proxy (``b""`` at EOF); ``True`` once tunnelled.

        Raises:
            ProxyError: The proxy refused the tunnel, closed the connection,
                or sent an invalid response.
        """
        if not data:
            # Before a complete 2xx, EOF means no tunnel, whatever came.
            msg = "proxy closed the connection before answering CONNECT"
            raise ProxyError(msg)
        self._h11.receive_data(bytes(data))
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                msg = f"invalid response from the proxy: {exc}"
                raise ProxyError(msg) from exc
            if event is h11.NEED_DATA:
                return False
            if isinstance(event, h11.Response):
                if not 200 <= event.status_code < 300:
                    reason = event.reason.decode("ascii", "replace")
                    msg = f"proxy refused the tunnel: {event.status_code} {reason}"
                    raise ProxyError(msg.rstrip())
                if self._h11.trailing_data[0]:
                    msg = "proxy sent data before the tunnel was used"
                    raise ProxyError(msg)
                return True
            # An InformationalResponse (1xx): the final answer follows.


@final
class Socks5Connect:
    """The SOCKS5 conversation (RFC 1928, RFC 1929 auth), sans-I/O.

    Args:
        host: The target: an IP address, or a name for the proxy to resolve.
        port: The target port.
        username: The proxy user name; with ``password``, offered as the
            username/password method.
        password: The proxy password.

    Raises:
        ValueError: A name, user name or password longer than 255 bytes.
    """

    def __init__(
        self, host: str, port: int, username: str | None, password: str | None
    ) -> None:
        self._auth: bytes | None = None
        if username is not None:
            self._auth = b"\x01" + _short(username) + _short(password or "")
            # No authentication or username/password: the proxy chooses.
            self._out = bytearray(b"\x05\x02\x00\x02")
        else:
            self._out = bytearray(b"\x05\x01\x00")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            address = b"\x03" + _short(host)
        else:
            address = (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
        # CONNECT, reserved byte, address, port.
        self._request = b"\x05\x01\x00" + address + port.to_bytes(2, "big")
        self._in = bytearray()
        self._state = "method"

    def data_to_send(self) -> bytes:
        """Bytes to send to the proxy now."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes | bytearray) -> bool:
        """Take bytes from the proxy (``b""`` at EOF); ``True`` once tunnelled.

        Raises:
            ProxyError: The proxy refused authentication or the connection,
                closed the connection, or broke the protocol.
        """
        if not data:
            msg = "proxy closed the connection during the SOCKS5 handshake"
            raise ProxyError(msg)
        self._in += data
        while self._step():
            if self._state == "done":
                if self._in:
                    msg = "proxy sent data before the tunnel was used"
                    raise ProxyError(msg)
                return True
        return False

    def _step(self) -> bool:
        """Parse one reply if it is all there; ``False`` to wait for more."""
        buf = self._in
        if len(buf) < 2:
            return False
        if self._state == "auth":
            # RFC 1929 section 2: version 1, status 0 for success.
            if buf[0] != 1:
                msg = "invalid SOCKS5 authentication reply"
                raise ProxyError(msg)
            if buf[1] != 0:
                msg = "SOCKS5 proxy rejected the user name and password"
                raise ProxyError(msg)
            del buf[:2]
            self._out += self._request
            self._state = "reply"
            return True
        if buf[0] != 5:
            msg = "proxy does not speak SOCKS5"
            raise ProxyError(msg)
        if self._state == "method":
            method = buf[1]
            del buf[:2]
            if method == 0x02 and self._auth is not None:
                self._out += self._auth
                self._state = "auth"
            elif method == 0x00:
                self._out += self._request
                self._state = "reply"
            elif method == 0xFF:
                msg = "SOCKS5 proxy accepts none of the authentication methods offered"
                raise ProxyError(msg)
            else:
                msg = f"SOCKS5 proxy chose a method that was not offered: {method:#04x}"
                raise ProxyError(msg)
            return True
        # The reply: version, status, reserved, address type, address, port.
        if buf[1] != 0:
            reason = _SOCKS5_REPLIES.get(buf[1], f"unknown reply {buf[1]:#04x}")
            msg = f"SOCKS5 proxy could not connect: {reason}"
            raise ProxyError(msg)
        if len(buf) < 5:
            return False
        sizes = {0x01: 4, 0x04: 16, 0x03: 1 + buf[4]}
        if buf[3] not in sizes:
            msg = f"invalid address type in SOCKS5 reply: {buf[3]:#04x}"
            raise ProxyError(msg)
        total = 4 + sizes[buf[3]] + 2
        if len(buf) < total:
            return False
        del buf[:total]
        self._state = "done"
        return True


def _short(text: str) -> bytes:
    """A SOCKS5 length-prefixed string: one length byte, at most 255 bytes."""
    data = text.encode()
    if len(data) > 255:
        msg = "SOCKS5 names, user names and passwords are limited to 255 bytes"
        raise ValueError(msg)
    return bytes([len(data)]) + data


async def open_tunnel(proxy: ProxyURI, host: str, port: int) -> trio.abc.Stream:
    """A stream to ``host:port`` through ``proxy``; the caller bounds its time.

    Raises:
        ProxyError: The proxy refused the tunnel or broke its protocol.
        OSError: The connection to the proxy (or TLS with it) failed, or
            ``socks5`` could not resolve ``host``.
    """
    if proxy.scheme == "socks5":
        # socks5:// resolves names here; socks5h:// leaves it to the proxy.
        host = await _resolve(host, port)
    stream: trio.abc.Stream = await trio.open_tcp_stream(proxy.host, proxy.port)
    try:
        if proxy.scheme == "https":
            # Import here: _client imports this module.
            from ._client import _start_tls, default_ssl_context

            stream = await _start_tls(stream, default_ssl_context(), proxy.host)
        conversation: HTTPConnect | Socks5Connect
        if proxy.scheme.startswith("socks5"):
            conversation = Socks5Connect(host, port, proxy.username, proxy.password)
        else:
            conversation = HTTPConnect(host, port, proxy.username, proxy.password)
        await _converse(stream, conversation)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream


async def _converse(
    stream: trio.abc.Stream, conversation: HTTPConnect | Socks5Connect
) -> None:
    """Exchange bytes until the conversation reports the tunnel open."""
    try:
        while True:
            if out := conversation.data_to_send():
                await stream.send_all(out)
            data = await stream.receive_some(READ_SIZE)
            if conversation.receive_data(data):
                return
    except trio.BrokenResourceError as exc:
        msg = "connection to the proxy lost"
        raise ProxyError(msg) from exc


async def _resolve(host: str, port: int) -> str:
    """An IP address for ``host``, the first one the resolver gives."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
        return str(infos[0][4][0])
    return host
