"""Start an echo server, send it one message and print the reply.

Run it with ``python examples/quickstart.py``; it prints ``< Hello, trio_ws!``.
"""

from __future__ import annotations

import functools

import trio

import trio_ws


async def echo(ws: trio_ws.ServerConnection) -> None:
    """Send every message back to the client that sent it."""
    async for message in ws:
        await ws.send(message)


async def main() -> None:
    async with trio.open_nursery() as nursery:
        # Port 0 picks a free port; nursery.start returns once the server
        # accepts connections, so connecting right away is race-free.
        server: trio_ws.Server = await nursery.start(
            functools.partial(trio_ws.serve, echo, 0, host="127.0.0.1")
        )
        async with trio_ws.connect(f"ws://127.0.0.1:{server.port}") as ws:
            await ws.send("Hello, trio_ws!")
            reply = await ws.recv()
            print("<", reply)
        # Stop the server: cancelling its task closes it cleanly.
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
