"""The line protocol between the orchestrating process and its children.

A child writes JSON objects to stdout on lines starting with MARK (anything
else there is ignored) and reads plain command lines from stdin.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from typing import Any

import trio

MARK = "@@bench "


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(MARK + json.dumps(obj) + "\n")
    sys.stdout.flush()


def check_loopback(host: str) -> str:
    """Only loopback addresses are allowed as benchmark targets."""
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"refusing non-loopback address {host!r}")
    return host


def describe(exc: BaseException) -> str:
    """A one-line description, looking inside exception groups."""
    inner: tuple[BaseException, ...] = getattr(exc, "exceptions", ())
    if len(inner) == 1:
        return describe(inner[0])
    if inner:
        return "; ".join(describe(e) for e in inner[:3])
    return f"{type(exc).__name__}: {exc}"


class StdinLines:
    """Cancellable line reader on the process's stdin (EOF reads as None)."""

    def __init__(self) -> None:
        self._stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        self._buffer = b""

    async def readline(self) -> str | None:
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some(4096)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode().strip()

    async def aclose(self) -> None:
        await self._stream.aclose()
