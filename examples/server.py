"""A first server: greet each client by the name it sends.

Run it with ``python examples/server.py``; it listens on port 8765 until
Ctrl-C. ``python examples/client.py`` talks to it.
"""

from __future__ import annotations

import trio

import trio_ws


async def hello(ws: trio_ws.ServerConnection) -> None:
    """Read a name, answer with a greeting, and return (which closes)."""
    name = await ws.recv()
    if isinstance(name, bytes):
        await ws.aclose(1003, "send your name as text")  # 1003: unsupported data
        return
    print(f"<<< {name}")
    greeting = f"Hello {name}!"
    await ws.send(greeting)
    print(f">>> {greeting}")


async def main() -> None:
    # Listens on every interface; trio.run(trio_ws.serve, hello, 8765) works too.
    await trio_ws.serve(hello, 8765)


if __name__ == "__main__":
    trio.run(main)
