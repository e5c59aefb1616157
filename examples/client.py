"""A first client: send a name, print the greeting.

Start ``python examples/server.py`` first, then run
``python examples/client.py Alice``.
"""

from __future__ import annotations

import sys

import trio

import trio_ws


async def hello(uri: str, name: str) -> None:
    async with trio_ws.connect(uri) as ws:
        await ws.send(name)
        print(f">>> {name}")
        greeting = await ws.recv()
        print("<<<", greeting)


async def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "world"
    await hello("ws://localhost:8765", name)


if __name__ == "__main__":
    trio.run(main)
