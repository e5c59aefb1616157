"""Route connections by path: /rooms/{room} has a handler, other paths get 404."""

from __future__ import annotations

import functools

import trio

import trio_ws

router = trio_ws.Router()


@router.route("/rooms/{room}")
async def room(ws: trio_ws.ServerConnection, room: str) -> None:
    await ws.send(f"welcome to {room}")


async def main() -> list[str]:
    results = []
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            functools.partial(
                trio_ws.serve,
                router,
                0,
                host="127.0.0.1",
                process_request=router.process_request,
            )
        )
        base = f"ws://127.0.0.1:{server.port}"
        async with trio_ws.connect(f"{base}/rooms/lobby") as ws:
            results.append(str(await ws.recv()))
        try:
            async with trio_ws.connect(f"{base}/nowhere"):
                pass
        except trio_ws.InvalidStatus as exc:
            results.append(f"{exc.response.status_code} {exc.response.body!r}")
        await server.aclose()
    return results


if __name__ == "__main__":
    print(trio.run(main))
