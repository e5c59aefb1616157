"""Stay connected: reconnect with backoff whenever the connection drops."""

from __future__ import annotations

import functools

import trio

import trio_ws


async def flaky(ws: trio_ws.ServerConnection) -> None:
    # A server that drops every connection after one message.
    await ws.send(f"hello from connection {ws.id}")
    await ws.aclose(1012)  # service restart


async def main() -> int:
    received: list[str | bytes] = []

    def process(message: str | bytes) -> None:
        received.append(message)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            functools.partial(trio_ws.serve, flaky, 0, host="127.0.0.1")
        )
        uri = f"ws://127.0.0.1:{server.port}/"
        async with trio_ws.reconnect(uri, min_delay=0.01) as connections:
            async for ws in connections:
                try:
                    async for message in ws:
                        process(message)
                except trio_ws.ConnectionClosed:
                    pass  # 1012 is not a normal closure: reconnect
                if len(received) == 3:
                    break
        await server.aclose()
    return len(received)


if __name__ == "__main__":
    print(trio.run(main))
