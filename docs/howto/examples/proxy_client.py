"""A client that goes through a proxy: ``python proxy_client.py URI PROXY``."""

from __future__ import annotations

import sys

import trio

import trio_ws


async def main(uri: str, proxy: str) -> str:
    """Send one message through ``proxy`` and return the reply, or the refusal."""
    try:
        # proxy= overrides the environment; leave it out to use https_proxy,
        # http_proxy, all_proxy and no_proxy, or pass None to connect directly.
        async with trio_ws.connect(uri, proxy=proxy, open_timeout=5) as ws:
            await ws.send("hello through the proxy")
            return str(await ws.recv())
    except trio_ws.ProxyError as exc:
        # The proxy answered but refused: 407 for missing credentials, a
        # SOCKS5 reply code, ...; unreachable proxies raise OSError instead.
        return f"the proxy said no: {exc}"


if __name__ == "__main__":
    print(trio.run(main, sys.argv[1], sys.argv[2]))
