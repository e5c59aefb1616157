"""The program of migrate_before.py, moved from trio-websocket to trio_ws.

The server rejects clients without a token, echoes messages in upper case,
and the client prints how the connection ended.
"""

from __future__ import annotations

import functools

import trio

import trio_ws


def check_token(
    ws: trio_ws.ServerConnection, request: trio_ws.Request
) -> trio_ws.Response | None:
    # WebSocketRequest.reject() becomes a response from process_request.
    if request.headers.get("Authorization") != "token":
        return ws.respond(401, "Missing token.\n")
    return None  # WebSocketRequest.accept() is implicit


async def handler(ws: trio_ws.ServerConnection) -> None:
    # The loop ends quietly after a normal closure.
    async for message in ws:
        await ws.send(str(message).upper())


async def main() -> None:
    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(
                trio_ws.serve, handler, 0, host="127.0.0.1", process_request=check_token
            )
        )
        url = f"ws://127.0.0.1:{server.port}/"
        try:
            async with trio_ws.connect(url):
                pass
        except trio_ws.InvalidStatus as exc:
            print("rejected:", exc.response.status_code)
        headers = [("Authorization", "token")]
        async with trio_ws.connect(url, additional_headers=headers) as ws:
            await ws.send("hello")
            print(await ws.recv())
            await ws.aclose(code=1000, reason="done")
            try:
                await ws.recv()
            except trio_ws.ConnectionClosed as exc:
                print("closed:", exc.code, exc.reason)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
