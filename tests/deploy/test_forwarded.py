"""X-Forwarded-For: who the client is behind trusted proxies (no nginx here)."""

from __future__ import annotations

import functools

import pytest
import trio

import trio_ws
from trio_ws._forwarded import TrustedProxies, client_host, peer_host

PROXY = "10.0.0.5"


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        # No header: the peer (the proxy) is all we know.
        ([], PROXY),
        (["198.51.100.7"], "198.51.100.7"),
        # A forged hop left of the one the proxy wrote is not believed.
        (["203.0.113.9, 198.51.100.7"], "198.51.100.7"),
        # Hops written by other trusted proxies are skipped.
        (["198.51.100.7, 10.0.0.8, 10.1.2.3"], "198.51.100.7"),
        # Several headers form one list, in order.
        (["203.0.113.9", "198.51.100.7"], "198.51.100.7"),
        # IPv6, bracketed or not, normalised.
        (["2001:DB8::1"], "2001:db8::1"),
        (["[2001:db8::1]"], "2001:db8::1"),
        # Garbage ends the walk at the last good hop.
        (["unknown"], PROXY),
        (["198.51.100.7, not-an-ip, 10.0.0.8"], "10.0.0.8"),
        # Only trusted hops: the leftmost of them.
        (["10.0.0.9, 10.0.0.8"], "10.0.0.9"),
    ],
)
def test_client_host_from_a_trusted_proxy(forwarded: list[str], expected: str) -> None:
    trusted = TrustedProxies(["10.0.0.0/8", "::1"])
    assert trusted.client_host(PROXY, forwarded) == expected


def test_untrusted_peer_header_is_ignored() -> None:
    trusted = TrustedProxies(["127.0.0.1"])
    assert trusted.client_host("198.51.100.7", ["203.0.113.9"]) == "198.51.100.7"
    # Addresses of the other family never match a network.
    assert "::ffff:127.0.0.1" not in trusted
    assert None not in trusted


def test_trust_every_peer_for_unix_sockets() -> None:
    trusted = TrustedProxies(["*"])
    assert trusted.client_host(None, ["198.51.100.7"]) == "198.51.100.7"
    assert trusted.client_host(None, []) is None


def test_invalid_trusted_proxies() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6"):
        TrustedProxies(["localhost"])
    with pytest.raises(TypeError, match="list of addresses, not a string"):
        TrustedProxies("127.0.0.1")


def test_peer_host_and_client_host_without_the_option() -> None:
    assert peer_host(("127.0.0.1", 5000)) == "127.0.0.1"
    assert peer_host(("::1", 5000, 0, 0)) == "::1"
    assert peer_host("") is None  # a Unix socket's peer
    assert peer_host(None) is None
    assert client_host(("127.0.0.1", 5000), ["198.51.100.7"], None) == "127.0.0.1"


async def report_client_host(ws: trio_ws.ServerConnection) -> None:
    await ws.send(str(ws.client_host))


async def test_serve_rejects_invalid_trusted_proxies() -> None:
    # Before listening: a typo fails at start-up, not on the first request.
    with pytest.raises(ValueError, match="not-an-address"):
        await trio_ws.serve(report_client_host, 0, trusted_proxies=["not-an-address"])


@pytest.mark.parametrize(
    ("trusted_proxies", "expected"),
    [(None, "127.0.0.1"), (["127.0.0.0/8"], "198.51.100.7")],
)
async def test_client_host_over_loopback(
    nursery: trio.Nursery, trusted_proxies: list[str] | None, expected: str
) -> None:
    # Here the test's client plays the proxy that wrote the header.
    with trio.fail_after(10):
        server = await nursery.start(
            functools.partial(
                trio_ws.serve,
                report_client_host,
                0,
                host="127.0.0.1",
                trusted_proxies=trusted_proxies,
            )
        )
        async with trio_ws.connect(
            f"ws://127.0.0.1:{server.port}/",
            additional_headers=[("X-Forwarded-For", "198.51.100.7")],
        ) as ws:
            assert await ws.recv() == expected
            await ws.aclose()
        await server.aclose()
