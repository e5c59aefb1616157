"""A server and a client talking over a Unix socket."""

from __future__ import annotations

import functools
import os
import sys
import tempfile

import trio

import trio_ws


async def open_unix_listener(path: str) -> trio.SocketListener:
    """Listen on a new Unix socket at ``path`` (which must not exist)."""
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        sock.listen()
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


async def echo(ws: trio_ws.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def main(directory: str) -> str | bytes:
    path = os.path.join(directory, "app.sock")
    listener = await open_unix_listener(path)
    try:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(trio_ws.serve, echo, listeners=[listener])
            )
            # The URI gives the Host header and the path; the socket, where
            # the server is.
            async with trio_ws.connect(
                "ws://localhost/chat", unix_socket_path=path
            ) as ws:
                await ws.send("hello over a Unix socket")
                reply = await ws.recv()
            await server.aclose()
    finally:
        # Closing a Unix socket leaves its file behind.
        os.unlink(path)
    return reply


if __name__ == "__main__":
    if sys.platform == "win32":  # pragma: no cover - no AF_UNIX in trio there
        sys.exit("Unix sockets need a Unix-like system")
    with tempfile.TemporaryDirectory() as directory:
        print(trio.run(main, directory))
