"""Require HTTP Basic credentials before upgrading a connection."""

from __future__ import annotations

import functools

import trio

import trio_ws


async def hello(ws: trio_ws.ServerConnection) -> None:
    await ws.send(f"hello {ws.username}")


async def main() -> list[str]:
    results = []
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            functools.partial(
                trio_ws.serve,
                hello,
                0,
                host="127.0.0.1",
                process_request=trio_ws.basic_auth({"alice": "s3cr3t"}),
            )
        )
        # User info in the URI becomes an Authorization header.
        async with trio_ws.connect(f"ws://alice:s3cr3t@127.0.0.1:{server.port}/") as ws:
            results.append(str(await ws.recv()))
        try:
            async with trio_ws.connect(f"ws://alice:guess@127.0.0.1:{server.port}/"):
                pass
        except trio_ws.InvalidStatus as exc:
            challenge = exc.response.headers["WWW-Authenticate"]
            results.append(f"{exc.response.status_code} {challenge}")
        await server.aclose()
    return results


if __name__ == "__main__":
    print(trio.run(main))
