"""See what trio_ws logs, and tag each line with the connection it is about.

trio_ws logs on ``trio_ws.client`` and ``trio_ws.server`` (children of
``trio_ws``). A failing handler is logged at ERROR with its traceback;
``logger=`` takes a :class:`logging.LoggerAdapter` to add context.
"""

from __future__ import annotations

import functools
import logging
import sys

import trio

import trio_ws


async def failing(ws: trio_ws.ServerConnection) -> None:
    await ws.recv()
    raise RuntimeError("boom")


async def main() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("trio_ws")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        # An adapter puts the service's name in front of every message.
        adapter = logging.LoggerAdapter(
            logging.getLogger("trio_ws.server"), {"service": "chat"}
        )
        adapter.process = lambda msg, kwargs: (f"[chat] {msg}", kwargs)  # type: ignore[method-assign]
        async with trio.open_nursery() as nursery:
            server: trio_ws.Server = await nursery.start(
                functools.partial(
                    trio_ws.serve, failing, 0, host="127.0.0.1", logger=adapter
                )
            )
            closed: trio_ws.ConnectionClosed | None = None
            async with trio_ws.connect(f"ws://127.0.0.1:{server.port}") as ws:
                await ws.send("anything")
                try:
                    await ws.recv()
                except trio_ws.ConnectionClosedError as exc:
                    closed = exc
            # Once the server has stopped, its log is written.
            await server.aclose()
        print("client:", closed)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


if __name__ == "__main__":
    trio.run(main)
