"""A trio-websocket program, before moving to trio_ws (see migrate_after.py).

The server rejects clients without a token, echoes messages in upper case,
and the client prints how the connection ended.
"""

from __future__ import annotations

import functools

import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketRequest,
    open_websocket_url,
    serve_websocket,
)


async def handler(request: WebSocketRequest) -> None:
    if dict(request.headers).get(b"authorization") != b"token":
        await request.reject(401, body=b"Missing token.\n")
        return
    ws = await request.accept()
    try:
        while True:
            message = await ws.get_message()
            await ws.send_message(str(message).upper())
    except ConnectionClosed:
        pass


async def main() -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            functools.partial(
                serve_websocket, handler, "127.0.0.1", 0, ssl_context=None
            )
        )
        url = f"ws://127.0.0.1:{server.port}/"
        try:
            async with open_websocket_url(url):
                pass
        except ConnectionRejected as exc:
            print("rejected:", exc.status_code)
        headers = [(b"authorization", b"token")]
        async with open_websocket_url(url, extra_headers=headers) as ws:
            await ws.send_message("hello")
            print(await ws.get_message())
            await ws.aclose(code=1000, reason="done")
            try:
                await ws.get_message()
            except ConnectionClosed as exc:
                reason = exc.reason
                if reason is not None:
                    print("closed:", reason.code, reason.reason)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
