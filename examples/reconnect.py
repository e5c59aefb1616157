"""A client that reconnects, with exponential backoff, until told to stop.

The demo server refuses the first attempt (503), drops the second connection
with 1012 (service restart) after one message, and serves the third.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable

import trio

import trio_ws

#: What may go wrong on the way to an open connection, or while it is open.
RETRYABLE = (OSError, TimeoutError, trio_ws.InvalidHandshake, trio_ws.ConnectionClosed)


async def run_forever(
    uri: str,
    session: Callable[[trio_ws.ClientConnection], Awaitable[None]],
    *,
    initial_delay: float = 1.0,
    max_delay: float = 60.0,
) -> None:
    """Run ``session(ws)`` on a connection to ``uri``; reconnect after failures.

    Returns when ``session`` returns; cancel the caller to stop retrying.
    """
    delay = initial_delay
    while True:
        try:
            async with trio_ws.connect(uri) as ws:
                delay = initial_delay  # connected: reset the backoff
                await session(ws)
                return
        except RETRYABLE as exc:
            print(f"connection failed ({exc}); retrying")
        # Full jitter keeps many clients from reconnecting in lockstep.
        await trio.sleep(random.uniform(0, delay))
        delay = min(delay * 2, max_delay)


async def main() -> None:
    attempts = 0

    def refuse_first(
        ws: trio_ws.ServerConnection, request: trio_ws.Request
    ) -> trio_ws.Response | None:
        nonlocal attempts
        attempts += 1
        return ws.respond(503, "Starting up.\n") if attempts == 1 else None

    async def handler(ws: trio_ws.ServerConnection) -> None:
        message = await ws.recv()
        if attempts == 2:
            await ws.aclose(1012)  # service restart
            return
        await ws.send(message)

    async def session(ws: trio_ws.ClientConnection) -> None:
        await ws.send("hello")
        print("echo:", await ws.recv())

    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(
                trio_ws.serve,
                handler,
                0,
                host="127.0.0.1",
                process_request=refuse_first,
            )
        )
        uri = f"ws://127.0.0.1:{server.port}"
        await run_forever(uri, session, initial_delay=0.01)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
