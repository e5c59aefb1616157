"""Stop a server gracefully: stop accepting, send 1001, let handlers finish.

``await server.aclose()`` closes every connection with 1001 (going away),
gives handlers ``close_timeout`` seconds, then cancels what is left. Here a
trio.Event stands for whatever asks the server to stop (a signal, an admin
command); see :func:`trio.open_signal_receiver` for SIGTERM.
"""

from __future__ import annotations

import functools

import trio

import trio_ws


async def handler(ws: trio_ws.ServerConnection) -> None:
    try:
        async for message in ws:
            await ws.send(message)
    finally:
        print("handler finished, close code", ws.close_code)


async def run_until(stop: trio.Event, task_status: trio.TaskStatus[int]) -> None:
    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(trio_ws.serve, handler, 0, host="127.0.0.1")
        )
        assert server.port is not None
        task_status.started(server.port)
        await stop.wait()
        await server.aclose()  # returns once serve() has returned
    print("server stopped")


async def main() -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(run_until, stop)
        async with trio_ws.connect(f"ws://127.0.0.1:{port}") as ws:
            await ws.send("hello")
            await ws.recv()
            stop.set()
            try:
                await ws.recv()
            except trio_ws.ConnectionClosedOK as exc:
                print("client:", exc)


if __name__ == "__main__":
    trio.run(main)
