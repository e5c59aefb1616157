"""A client that reconnects, with exponential backoff, until its work is done.

The demo server refuses the first attempt (503), drops the second connection
with 1012 (service restart) after one message, and serves the third.
"""

from __future__ import annotations

import functools

import trio

import trio_ws


async def fetch_greeting(uri: str) -> str | bytes:
    """Get one reply from the server, however many attempts it takes."""
    async with trio_ws.reconnect(uri, min_delay=0.01) as connections:
        async for ws in connections:
            try:
                await ws.send("hello")
                return await ws.recv()
            except trio_ws.ConnectionClosed as exc:
                # The next iteration waits, then connects again.
                print(f"connection lost ({exc}); reconnecting")
    raise AssertionError("unreachable: reconnect() never ends on its own")


async def main() -> None:
    attempts = 0

    def refuse_first(
        ws: trio_ws.ServerConnection, request: trio_ws.Request
    ) -> trio_ws.Response | None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            print("server: 503 to attempt 1")
            return ws.respond(503, "Starting up.\n")
        return None

    async def handler(ws: trio_ws.ServerConnection) -> None:
        message = await ws.recv()
        if attempts == 2:
            await ws.aclose(1012)  # service restart
            return
        await ws.send(message)

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
        print("echo:", await fetch_greeting(f"ws://127.0.0.1:{server.port}"))
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
