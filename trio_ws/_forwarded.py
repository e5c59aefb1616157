"""The client's address behind a reverse proxy, from ``X-Forwarded-For``.

Theory of operation
-------------------

Behind a proxy, the socket's peer is the proxy; the proxy appends the address
it saw to ``X-Forwarded-For`` (nginx: ``$proxy_add_x_forwarded_for``). Any
client can send that header too, with whatever it likes in it, so it is
believed only when the socket's peer is one of the proxies the user trusts
(``serve(..., trusted_proxies=[...])``), and only as far back as the chain of
trusted proxies goes: the list is read from the right, skipping addresses of
trusted proxies, and the first other address is the client. Everything left of
it was written by someone untrusted. A hop that is not a valid address ends the
walk: the last valid hop read (at worst the socket's peer) is the answer.

No trio here: this module only reads addresses and headers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import TypeAlias

__all__ = ["TrustedProxies", "client_host", "peer_host"]

_Network: TypeAlias = "ipaddress.IPv4Network | ipaddress.IPv6Network"
_Address: TypeAlias = "ipaddress.IPv4Address | ipaddress.IPv6Address"


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` header is believed.

    Args:
        proxies: IP addresses or networks (``"127.0.0.1"``, ``"10.0.0.0/8"``,
            ``"::1"``), or ``"*"`` to trust every peer (for a Unix socket
            that only the proxy can reach).

    Raises:
        ValueError: An entry is neither ``"*"`` nor an address or network.
    """

    def __init__(self, proxies: Iterable[str]) -> None:
        if isinstance(proxies, str):
            # A lone string would be read character by character.
            msg = "trusted_proxies must be a list of addresses, not a string"
            raise TypeError(msg)
        self.trust_all = False
        self.networks: list[_Network] = []
        for proxy in proxies:
            if proxy == "*":
                self.trust_all = True
            else:
                self.networks.append(ipaddress.ip_network(proxy, strict=False))

    def __contains__(self, host: object) -> bool:
        if self.trust_all:
            return True
        address = _parse(host) if isinstance(host, str) else None
        return address is not None and any(
            address.version == network.version and address in network
            for network in self.networks
        )

    def client_host(self, peer: str | None, forwarded: Sequence[str]) -> str | None:
        """The client's address, given the peer and the header values.

        Args:
            peer: The socket's peer address, or ``None`` (a Unix socket).
            forwarded: Every ``X-Forwarded-For`` header value, in order.
        """
        if peer not in self:
            return peer
        # Several headers make one comma-separated list (RFC 9110 5.3).
        hops = [hop.strip() for value in forwarded for hop in value.split(",")]
        client = peer
        for hop in reversed(hops):
            address = _parse(hop)
            if address is None:
                # Garbage from an untrusted writer: stop at the last good hop.
                break
            client = str(address)
            if client not in self:
                break
        return client


def _parse(text: str) -> _Address | None:
    # Bracketed IPv6 ("[::1]") as some proxies write it.
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def peer_host(address: object) -> str | None:
    """The host of a socket address as :attr:`Connection.remote_address` gives it."""
    if isinstance(address, tuple) and address and isinstance(address[0], str):
        return address[0]
    return None


def client_host(
    remote_address: object,
    forwarded: Sequence[str],
    trusted: TrustedProxies | None,
) -> str | None:
    """The client's host: forwarded by a trusted proxy, else the socket's peer."""
    peer = peer_host(remote_address)
    if trusted is None:
        return peer
    return trusted.client_host(peer, forwarded)
