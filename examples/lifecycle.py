"""A handler that runs a task beside its receive loop, for one connection.

The handler's nursery holds the connection's own tasks; when the client
leaves, the receive loop ends, the handler cancels what it started and
returns, and trio_ws closes the connection.
"""

from __future__ import annotations

import functools

import trio

import trio_ws


async def send_ticks(ws: trio_ws.ServerConnection, interval: float) -> None:
    """Push a message every ``interval`` seconds, until cancelled."""
    tick = 0
    while True:
        await trio.sleep(interval)
        tick += 1
        await ws.send(f"tick {tick}")


async def handler(ws: trio_ws.ServerConnection) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_ticks, ws, 0.01)
        try:
            async for message in ws:  # ends when the client closes normally
                await ws.send(message)
        finally:
            # The connection is done: stop its other tasks too.
            nursery.cancel_scope.cancel()
    print("handler done, ticker stopped")


async def main() -> None:
    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(trio_ws.serve, handler, 0, host="127.0.0.1")
        )
        async with trio_ws.connect(f"ws://127.0.0.1:{server.port}") as ws:
            await ws.send("hello")
            echoed, ticks = False, 0
            while not echoed or ticks < 3:
                if await ws.recv() == "hello":
                    echoed = True
                else:
                    ticks += 1
            print("got the echo and at least 3 ticks")
        # Waits for handlers to finish (at most close_timeout), then returns.
        await server.aclose()


if __name__ == "__main__":
    trio.run(main)
