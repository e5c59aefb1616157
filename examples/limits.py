"""What happens when a peer sends a message over ``max_size``.

The client accepts messages of at most 1000 bytes; the server sends one of
500, then one of 2000. The first arrives; the second fails the connection
with 1009 (message too big), and ``recv`` raises ConnectionClosedError, whose
``__cause__`` is the PayloadTooBig that explains it.
"""

from __future__ import annotations

import functools

import trio

import trio_ws


async def send_two(ws: trio_ws.ServerConnection) -> None:
    await ws.send("x" * 500)
    await ws.send("x" * 2000)
    await ws.wait_closed()


async def main() -> None:
    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(trio_ws.serve, send_two, 0, host="127.0.0.1")
        )
        uri = f"ws://127.0.0.1:{server.port}"
        async with trio_ws.connect(uri, max_size=1000) as ws:
            print("received", len(await ws.recv()), "characters")
            try:
                await ws.recv()
            except trio_ws.ConnectionClosedError as exc:
                print(exc)
                print(f"{type(exc.__cause__).__name__}: {exc.__cause__}")
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
