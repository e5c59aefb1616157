"""Run behind a reverse proxy: the client's address, a pre-bound socket.

A proxy such as nginx or HAProxy connects to trio_ws itself, so
:attr:`~trio_ws.ServerConnection.client_host` would be the proxy's address;
with ``trusted_proxies``, trio_ws reads the client's address from the
``X-Forwarded-For`` header that those proxies (and only those) add. Here the
proxy is played by a client that sends the header itself, from 127.0.0.1.
"""

from __future__ import annotations

import functools
import socket

import trio

import trio_ws


async def whoami(ws: trio_ws.ServerConnection) -> None:
    await ws.send(f"you are {ws.client_host}")


async def main() -> None:
    # The socket a supervisor (systemd, a container runtime) would pass in;
    # serve() takes such listeners instead of host and port.
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    await sock.bind(("127.0.0.1", 0))
    sock.listen()
    listener = trio.SocketListener(sock)

    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(
                trio_ws.serve,
                whoami,
                listeners=[listener],
                trusted_proxies=["127.0.0.1"],
            )
        )
        uri = f"ws://127.0.0.1:{server.port}/"
        forwarded = {"X-Forwarded-For": "203.0.113.7"}
        async with trio_ws.connect(uri, additional_headers=forwarded) as ws:
            print(await ws.recv())
        async with trio_ws.connect(uri) as ws:
            print(await ws.recv())
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
