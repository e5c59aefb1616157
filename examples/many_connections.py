"""Run many client connections from one nursery, one task per connection.

Each task owns its ``async with trio_ws.connect(...)`` block, so each
connection closes when its task is done; a connection that fails is handled
in its own task and does not disturb the others.
"""

from __future__ import annotations

import functools

import trio

import trio_ws


async def echo(ws: trio_ws.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def ask(uri: str, question: str, answers: dict[str, str | bytes]) -> None:
    """One connection: send a question, store the answer."""
    try:
        async with trio_ws.connect(uri) as ws:
            await ws.send(question)
            answers[question] = await ws.recv()
    except (OSError, trio_ws.WebSocketError) as exc:
        # Only this connection failed; the other tasks carry on.
        answers[question] = f"failed: {exc}"


async def main() -> None:
    async with trio.open_nursery() as servers:
        server: trio_ws.Server = await servers.start(
            functools.partial(trio_ws.serve, echo, 0, host="127.0.0.1")
        )
        uri = f"ws://127.0.0.1:{server.port}"

        answers: dict[str, str | bytes] = {}
        # The nursery waits for every connection's task.
        async with trio.open_nursery() as clients:
            for number in range(20):
                clients.start_soon(ask, uri, f"question {number}", answers)
            clients.start_soon(ask, "ws://127.0.0.1:1", "question X", answers)

        print(sum(answers[f"question {n}"] == f"question {n}" for n in range(20)))
        print(answers["question X"])
        servers.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
