"""Tell a normal closure from an abnormal one.

``async for`` ends quietly after a normal closure (1000 or 1001 both ways)
and raises :exc:`~trio_ws.ConnectionClosedError` otherwise; ``recv`` raises
:exc:`~trio_ws.ConnectionClosedOK` or :exc:`~trio_ws.ConnectionClosedError`.
Either carries the close frames received and sent.
"""

from __future__ import annotations

import functools

import trio

import trio_ws


async def handler(ws: trio_ws.ServerConnection) -> None:
    command = await ws.recv()
    if command == "bye":
        return  # the handler returns: the server closes with 1000
    await ws.aclose(4001, "unknown command")  # a private-use code


async def talk(uri: str, command: str) -> None:
    async with trio_ws.connect(uri) as ws:
        await ws.send(command)
        try:
            async for message in ws:
                print("message:", message)
            print(f"{command}: closed normally")
        except trio_ws.ConnectionClosedError as exc:
            print(f"{command}: {exc}")
            print(f"{command}: code={exc.code} reason={exc.reason!r}")
            print(f"{command}: rcvd={exc.rcvd} sent={exc.sent}")


async def main() -> None:
    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(trio_ws.serve, handler, 0, host="127.0.0.1")
        )
        uri = f"ws://127.0.0.1:{server.port}"
        await talk(uri, "bye")
        await talk(uri, "dance")
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
