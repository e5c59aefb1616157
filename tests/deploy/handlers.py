"""Connection handlers that the worker processes of the deployment tests run.

They live in a module of their own so that workers can import them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import trio_ws


async def whoami(ws: trio_ws.ServerConnection) -> None:
    """Answer every message with ``pid <process id> <client host> <message>``."""
    async for message in ws:
        await ws.send(f"pid {os.getpid()} {ws.client_host} {message!s:.40}")
