"""What runs inside the processes: server handlers and client measurement loops.

Every client loop is bounded both by a count and by a duration and stops by
itself. The server picks its behaviour from the request path.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from time import perf_counter, process_time
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from .libs import Adapter, Conn

TEXT32 = "0123456789abcdef" * 2  # the 32-byte text message of rtt and fanout
END = "end"  # stream: "that was the last one, please acknowledge"

Metrics = dict[str, float]
#: Tells the parent a phase is reached and waits for its go-ahead.
Sync = Callable[[str, dict[str, Any]], Awaitable[None]]


# -- server side -------------------------------------------------------------


async def serve_echo(conn: Conn) -> None:
    send, recv = conn.send, conn.recv
    while True:
        await send(await recv())


async def serve_stream(conn: Conn) -> None:
    count = nbytes = 0
    while True:
        message = await conn.recv()
        if isinstance(message, str):
            await conn.send(f"{count} {nbytes}")
            count = nbytes = 0
        else:
            count += 1
            nbytes += len(message)


SERVER_HANDLERS: dict[str, Callable[[Conn], Awaitable[None]]] = {
    "/echo": serve_echo,
    "/idle": serve_echo,
    "/stream": serve_stream,
}


# -- client side -------------------------------------------------------------


async def client_rtt(lib: Adapter, base: str, p: dict[str, Any], sync: Sync) -> Metrics:
    message = TEXT32
    async with lib.connect(base + "/echo") as conn:
        send, recv = conn.send, conn.recv
        for _ in range(p["warmup"]):
            await send(message)
            await recv()
        max_count, count, reply = p["max_count"], 0, message
        await sync("timing", {})
        cpu = process_time()
        start = perf_counter()
        deadline = start + p["duration"]
        while count < max_count:
            await send(message)
            reply = await recv()
            count += 1
            if perf_counter() >= deadline:
                break
        elapsed = perf_counter() - start
        cpu = process_time() - cpu
    if reply != message:
        raise AssertionError(f"echo mismatch: {reply!r}")
    return {
        "round_trips_per_s": count / elapsed,
        "us_per_round_trip": elapsed / count * 1e6,
        "client_cpu_us": cpu / count * 1e6,
        "count": count,
    }


async def client_stream(
    lib: Adapter, base: str, p: dict[str, Any], sync: Sync
) -> Metrics:
    size = p["size"]
    payload = os.urandom(size)  # incompressible, so deflate gets no free lunch
    async with lib.connect(base + "/stream") as conn:
        send = conn.send
        for _ in range(p["warmup"]):
            await send(payload)
        await send(END)
        await conn.recv()
        max_count, count = p["max_count"], 0
        await sync("timing", {})
        cpu = process_time()
        start = perf_counter()
        deadline = start + p["duration"]
        while count < max_count:
            await send(payload)
            count += 1
            if perf_counter() >= deadline:
                break
        await send(END)
        ack = await conn.recv()
        elapsed = perf_counter() - start
        cpu = process_time() - cpu
    assert isinstance(ack, str)
    got_count, got_bytes = map(int, ack.split())
    if (got_count, got_bytes) != (count, count * size):
        raise AssertionError(f"server saw {ack!r}, sent {count} x {size} B")
    return {
        "mb_per_s": count * size / elapsed / 1e6,
        "messages_per_s": count / elapsed,
        "client_cpu_us": cpu / count * 1e6,
        "count": count,
    }


class _Fleet:
    """Shared state of many connections that start and stop together."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.connected = 0
        self.all_connected = trio.Event()
        self.go = trio.Event()
        self.deadline = 0.0
        self.counts: list[int] = []
        self.ends: list[float] = []
        self.all_done = trio.Event()
        self.release = trio.Event()

    def mark_connected(self) -> None:
        self.connected += 1
        if self.connected == self.n:
            self.all_connected.set()

    def mark_done(self, count: int) -> None:
        self.counts.append(count)
        self.ends.append(perf_counter())
        if len(self.counts) == self.n:
            self.all_done.set()


async def _open(
    lib: Adapter, uri: str, stack: AsyncExitStack, limiter: trio.CapacityLimiter
) -> Conn:
    async with limiter:
        return await stack.enter_async_context(lib.connect(uri))


async def client_fanout(
    lib: Adapter, base: str, p: dict[str, Any], sync: Sync
) -> Metrics:
    n, max_count, message = p["connections"], p["max_count"], TEXT32
    fleet = _Fleet(n)
    limiter = trio.CapacityLimiter(p["concurrency"])

    async def worker() -> None:
        async with AsyncExitStack() as stack:
            conn = await _open(lib, base + "/echo", stack, limiter)
            send, recv = conn.send, conn.recv
            await send(message)  # one round trip so the server handler is live
            await recv()
            fleet.mark_connected()
            await fleet.go.wait()
            deadline, count = fleet.deadline, 0
            while count < max_count:
                await send(message)
                await recv()
                count += 1
                if perf_counter() >= deadline:
                    break
            fleet.mark_done(count)
            await fleet.all_done.wait()  # don't close while others still measure

    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(worker)
        with trio.fail_after(60):
            await fleet.all_connected.wait()
        await sync("timing", {})
        cpu = process_time()
        start = perf_counter()
        fleet.deadline = start + p["duration"]
        fleet.go.set()
        with trio.fail_after(p["duration"] + 60):
            await fleet.all_done.wait()
        cpu = process_time() - cpu
        nursery.cancel_scope.deadline = trio.current_time() + 30  # bound the closing
    elapsed = max(fleet.ends) - start
    total = sum(fleet.counts)
    return {
        "messages_per_s": total / elapsed,
        "client_cpu_us": cpu / total * 1e6,
        "count": total,
    }


async def client_conns(
    lib: Adapter, base: str, p: dict[str, Any], sync: Sync
) -> Metrics:
    uri = base + "/idle"
    for _ in range(p["warmup"]):  # warm the server's code paths before the baseline
        async with lib.connect(uri) as conn:
            await conn.send(TEXT32)
            await conn.recv()
    await sync("baseline", {})

    n = p["connections"]
    fleet = _Fleet(n)
    limiter = trio.CapacityLimiter(p["concurrency"])

    async def holder() -> None:
        async with AsyncExitStack() as stack:
            await _open(lib, uri, stack, limiter)
            fleet.mark_connected()
            await fleet.release.wait()

    async with trio.open_nursery() as nursery:
        start = perf_counter()
        for _ in range(n):
            nursery.start_soon(holder)
        with trio.fail_after(60):
            await fleet.all_connected.wait()
        elapsed = perf_counter() - start
        await sync("open", {"connections": n})
        fleet.release.set()
        nursery.cancel_scope.deadline = trio.current_time() + 30  # bound the closing
    return {"handshakes_per_s": n / elapsed, "count": n}


CLIENTS: dict[
    str, Callable[[Adapter, str, dict[str, Any], Sync], Awaitable[Metrics]]
] = {
    "rtt": client_rtt,
    "stream": client_stream,
    "fanout": client_fanout,
    "conns": client_conns,
}
