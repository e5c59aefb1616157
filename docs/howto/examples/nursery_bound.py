"""A client object whose connection outlives the code that opened it."""

from __future__ import annotations

import functools

import trio

import trio_ws


class Feed:
    """Keeps one connection open, in a nursery its owner provides."""

    def __init__(self, nursery: trio.Nursery, uri: str) -> None:
        self.nursery = nursery
        self.uri = uri
        self.ws: trio_ws.ClientConnection | None = None

    async def start(self) -> None:
        # Returns once the connection is open; its tasks run in the nursery.
        self.ws = await trio_ws.open_connection(self.nursery, self.uri)

    async def ask(self, question: str) -> str | bytes:
        assert self.ws is not None
        await self.ws.send(question)
        return await self.ws.recv()


async def echo(ws: trio_ws.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def main() -> list[str | bytes]:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            functools.partial(trio_ws.serve, echo, 0, host="127.0.0.1")
        )
        async with trio.open_nursery() as connections:
            feed = Feed(connections, f"ws://127.0.0.1:{server.port}/")
            await feed.start()
            answers = [await feed.ask("one"), await feed.ask("two")]
            # Cancelling the nursery closes the connection with 1001.
            connections.cancel_scope.cancel()
        await server.aclose()
    return answers


if __name__ == "__main__":
    print(trio.run(main))
