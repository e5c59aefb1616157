"""Require a user name and password (HTTP Basic authentication).

``trio_ws.basic_auth`` builds a ``process_request`` that answers 401 to a
request without valid credentials; the client puts them in the URI.
"""

from __future__ import annotations

import functools

import trio

import trio_ws


async def hello(ws: trio_ws.ServerConnection) -> None:
    await ws.send(f"hello {ws.username}")


async def main() -> None:
    check = trio_ws.basic_auth({"alice": "s3cr3t"}, realm="example")
    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(
                trio_ws.serve, hello, 0, host="127.0.0.1", process_request=check
            )
        )
        # User info in the URI becomes an Authorization header.
        async with trio_ws.connect(f"ws://alice:s3cr3t@127.0.0.1:{server.port}") as ws:
            print(await ws.recv())
        try:
            async with trio_ws.connect(f"ws://alice:guess@127.0.0.1:{server.port}"):
                pass
        except trio_ws.InvalidStatus as exc:
            print(exc)
            print(exc.response.headers["WWW-Authenticate"])
            print(exc.response.body.decode(), end="")
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
