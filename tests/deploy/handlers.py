"""Connection handlers that the worker processes of the deployment tests run.

They live in a module of their own so that workers can import them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    import trio_ws


async def whoami(ws: trio_ws.ServerConnection) -> None:
    """Answer every message with ``pid <process id> <client host> <message>``."""
    async for message in ws:
        await ws.send(f"pid {os.getpid()} {ws.client_host} {message!s:.40}")


async def stubborn(ws: trio_ws.ServerConnection) -> None:
    """Ignore being told to stop: the worker outlives its close deadline."""
    await ws.send("stubborn")
    with trio.CancelScope(shield=True):
        await trio.sleep(60)


if os.environ.get("TRIO_WS_TEST_WORKER_FAILS"):
    # test_workers.py: a worker started now cannot import its handler.
    msg = "this worker was told to fail"
    raise RuntimeError(msg)
