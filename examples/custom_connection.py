"""Use your own connection class, with extra arguments, via ``create_connection``.

``create_connection`` takes the class, a subclass or any factory with the
same signature; :func:`functools.partial` binds arguments of your own.
"""

from __future__ import annotations

import functools

import trio

import trio_ws


class ChatConnection(trio_ws.ServerConnection):
    """A server connection that knows which chat room it belongs to."""

    def __init__(self, *args: object, room: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.room = room

    async def say(self, text: str) -> None:
        await self.send(f"[{self.room}] {text}")


async def handler(ws: trio_ws.ServerConnection) -> None:
    assert isinstance(ws, ChatConnection)
    async for message in ws:
        await ws.say(str(message))


async def main() -> None:
    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(
                trio_ws.serve,
                handler,
                0,
                host="127.0.0.1",
                create_connection=functools.partial(ChatConnection, room="lobby"),
            )
        )
        async with trio_ws.connect(f"ws://127.0.0.1:{server.port}") as ws:
            await ws.send("hi")
            print(await ws.recv())
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
