"""A server that moved an endpoint, and a client that follows it there."""

from __future__ import annotations

import functools

import trio

import trio_ws


def moved(
    ws: trio_ws.ServerConnection, request: trio_ws.Request
) -> trio_ws.Response | None:
    # Answer requests for the old path with a permanent redirect.
    if request.path == "/old":
        response = ws.respond(308, "Moved to /new\n")
        response.headers["Location"] = "/new"
        return response
    return None


async def hello(ws: trio_ws.ServerConnection) -> None:
    assert ws.request is not None
    await ws.send(f"welcome to {ws.request.path}")


async def main() -> str | bytes:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            functools.partial(
                trio_ws.serve, hello, 0, host="127.0.0.1", process_request=moved
            )
        )
        async with trio_ws.connect(f"ws://127.0.0.1:{server.port}/old") as ws:
            greeting = await ws.recv()
        await server.aclose()
    return greeting


if __name__ == "__main__":
    print(trio.run(main))
