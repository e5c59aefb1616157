"""Time out ``recv`` with trio's own scopes; no message is lost."""

from __future__ import annotations

import functools

import trio

import trio_ws


async def slow_echo(ws: trio_ws.ServerConnection) -> None:
    async for message in ws:
        await trio.sleep(0.2)
        await ws.send(message)


async def main() -> None:
    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(trio_ws.serve, slow_echo, 0, host="127.0.0.1")
        )
        async with trio_ws.connect(f"ws://127.0.0.1:{server.port}") as ws:
            await ws.send("first")

            # move_on_after: give up waiting, carry on.
            with trio.move_on_after(0.05) as scope:
                await ws.recv()
            print("timed out:", scope.cancelled_caught)

            # The reply was not lost: it is the next message.
            print("then got:", await ws.recv())

            # fail_after: a timeout is an error, trio.TooSlowError.
            await ws.send("second")
            try:
                with trio.fail_after(0.05):
                    await ws.recv()
            except trio.TooSlowError:
                print("too slow")
            print("then got:", await ws.recv())
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
