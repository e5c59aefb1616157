"""Send each message to many clients, without letting a slow one hold up the rest.

:func:`trio_ws.broadcast` never waits: it queues the message for each
connection, and a task beside each connection's reader sends its queue. A
client that falls more than ``max_backlog`` messages behind is closed with
1008 (policy violation) instead of holding up the others.
"""

from __future__ import annotations

import functools

import trio

import trio_ws


async def handler(ws: trio_ws.ServerConnection) -> None:
    await ws.send("welcome")  # tells the demo client it is connected
    # Read (and ignore) what the client sends until it leaves; its messages
    # never pile up, and the handler ends when the client closes.
    async for _ in ws:
        pass


async def listen(
    uri: str, received: list[str | bytes], task_status: trio.TaskStatus[None]
) -> None:
    async with trio_ws.connect(uri) as ws:
        assert await ws.recv() == "welcome"
        task_status.started()
        received.extend([await ws.recv() for _ in range(3)])


async def main() -> None:
    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(trio_ws.serve, handler, 0, host="127.0.0.1")
        )
        uri = f"ws://127.0.0.1:{server.port}"
        received: dict[str, list[str | bytes]] = {"alice": [], "bob": []}
        async with trio.open_nursery() as clients:
            for messages in received.values():
                await clients.start(listen, uri, messages)
            for number in range(3):
                # To every open connection of the server; a set kept by the
                # handlers (a chat room) works as well.
                trio_ws.broadcast(server.connections, f"news {number}")
        for name, messages in received.items():
            print(name, "got", messages)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
