"""Send each message to many clients without letting a slow one hold up the rest.

Every client gets a bounded queue and a task that drains it; the broadcaster
only puts messages in queues, and drops a client whose queue is full (it is
too slow to keep up) instead of waiting for it.
"""

from __future__ import annotations

import functools

import trio

import trio_ws


class Hub:
    """The connected clients, each with its outgoing queue."""

    def __init__(self, queue_size: int = 16) -> None:
        self.queue_size = queue_size
        self.clients: dict[trio_ws.ServerConnection, trio.MemorySendChannel[str]] = {}

    def broadcast(self, message: str) -> None:
        for ws, queue in list(self.clients.items()):
            try:
                queue.send_nowait(message)
            except trio.WouldBlock:
                # Too slow: close it (in its own task) rather than wait.
                del self.clients[ws]
                queue.close()

    async def handler(self, ws: trio_ws.ServerConnection) -> None:
        send, receive = trio.open_memory_channel[str](self.queue_size)
        self.clients[ws] = send
        await ws.send("welcome")  # tells the demo client it is registered
        try:
            async with receive:
                async for message in receive:
                    await ws.send(message)
            # The queue was closed by broadcast(): this client fell behind.
            await ws.aclose(1008, "too slow")
        finally:
            self.clients.pop(ws, None)


async def listen(
    uri: str, received: list[str | bytes], task_status: trio.TaskStatus[None]
) -> None:
    async with trio_ws.connect(uri) as ws:
        assert await ws.recv() == "welcome"
        task_status.started()
        received.extend([await ws.recv() for _ in range(3)])


async def main() -> None:
    hub = Hub()
    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(trio_ws.serve, hub.handler, 0, host="127.0.0.1")
        )
        uri = f"ws://127.0.0.1:{server.port}"
        received: dict[str, list[str | bytes]] = {"alice": [], "bob": []}
        async with trio.open_nursery() as clients:
            for messages in received.values():
                await clients.start(listen, uri, messages)
            for number in range(3):
                hub.broadcast(f"news {number}")
        for name, messages in received.items():
            print(name, "got", messages)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
