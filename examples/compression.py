"""Turn permessage-deflate compression on (the default) or off.

Compression is negotiated in the opening handshake: it is used only when the
client offers it and the server accepts it. ``compression=None`` on either
side turns it off for that connection.
"""

from __future__ import annotations

import functools

import trio

import trio_ws


async def echo(ws: trio_ws.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def negotiated(ws: trio_ws.ClientConnection) -> str:
    assert ws.response is not None
    return ws.response.headers.get("Sec-WebSocket-Extensions", "no compression")


async def main() -> None:
    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(trio_ws.serve, echo, 0, host="127.0.0.1")
        )
        uri = f"ws://127.0.0.1:{server.port}"

        async with trio_ws.connect(uri) as ws:
            print("default:", negotiated(ws))

        async with trio_ws.connect(uri, compression=None) as ws:
            print("client off:", negotiated(ws))

        off: trio_ws.Server = await nursery.start(
            functools.partial(
                trio_ws.serve, echo, 0, host="127.0.0.1", compression=None
            )
        )
        async with trio_ws.connect(f"ws://127.0.0.1:{off.port}") as ws:
            print("server off:", negotiated(ws))
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
