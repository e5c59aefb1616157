"""A bounded soak test: thousands of connections to a real ``serve()``.

Marked ``slow``, so not in the default run::

    python -m pytest --no-cov -m slow tests/test_soak.py -s

Connections to ``serve`` on 127.0.0.1 are opened and closed with a mix of
endings: clean closes (``trio_ws.connect``), resets (a raw client that sets
``SO_LINGER`` to 0 and closes: TCP RST) of open connections and of
connections halfway through their request, silent peers that complete the
handshake and then never answer (the server's keepalive, with a short
``ping_interval`` and ``ping_timeout``, fails them with 1011), and clients
that never send a request (dropped at ``open_timeout``). A first, smaller
round warms up caches; after the main round, the server must hold no
connection, no task beyond those it had before the round, no file
descriptor more, and about the same traced memory. The numbers are printed
(``-s`` shows them).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import socket
import struct
import time
import tracemalloc

import pytest
import trio

from trio_ws import (
    Connection,
    ConnectionClosed,
    Server,
    ServerConnection,
    connect,
    serve,
)

from .helpers import MASK, OP_CLOSE, OP_PING, OP_TEXT, frame, parse_frames
from .test_server import receive_all, receive_head, upgrade_request

pytestmark = pytest.mark.slow

#: How the connections of a round end, in rotation.
KINDS = ["clean"] * 4 + ["reset"] * 2 + ["abort"] + ["silent"] * 2 + ["idle"]
CONNECTIONS = 2000
CONCURRENCY = 200
PING = 0.2  # ping_interval and ping_timeout of the server
OPEN_TIMEOUT = 0.5


async def handler(ws: ServerConnection) -> None:
    # Resets and silent peers end in ConnectionClosedError: not a failure.
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            await ws.send(message)


async def clean(port: int) -> None:
    async with connect(f"ws://127.0.0.1:{port}/", ping_interval=None) as ws:
        await ws.send("soak")
        assert await ws.recv() == "soak"


async def handshake(port: int) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(upgrade_request())
    head, rest = await receive_head(stream)
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert rest == b""
    return stream


def send_reset(stream: trio.SocketStream) -> None:
    # SO_LINGER 0: close() sends RST instead of FIN.
    stream.socket.setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    stream.socket.close()


async def reset(port: int) -> None:
    """Reset an open connection, right after a message and its echo."""
    stream = await handshake(port)
    await stream.send_all(frame(OP_TEXT, b"bye", mask=MASK))
    data = b""
    while len(data) < 5:
        data += await stream.receive_some()
    assert parse_frames(data) == [(OP_TEXT, True, 0, b"bye")]
    send_reset(stream)


async def abort(port: int) -> None:
    """Reset the connection halfway through the request."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(upgrade_request()[:50])
    send_reset(stream)


async def silent(port: int) -> None:
    """Never answer: the server pings, gives up, sends 1011 and closes."""
    stream = await handshake(port)
    frames = parse_frames(await receive_all(stream))
    assert frames[0][0] == OP_PING
    assert frames[-1][:2] == (OP_CLOSE, True)
    assert frames[-1][3][:2] == (1011).to_bytes(2, "big")
    await stream.aclose()


async def idle(port: int) -> None:
    """Never send a request: dropped at open_timeout."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    assert await receive_all(stream) == b""
    await stream.aclose()


CLIENTS = {
    "clean": clean,
    "reset": reset,
    "abort": abort,
    "silent": silent,
    "idle": idle,
}


async def run_round(port: int, count: int) -> dict[str, int]:
    limiter = trio.CapacityLimiter(CONCURRENCY)
    done = dict.fromkeys(CLIENTS, 0)

    async def one(kind: str) -> None:
        async with limiter:
            await CLIENTS[kind](port)
        done[kind] += 1

    async with trio.open_nursery() as nursery:
        for i in range(count):
            nursery.start_soon(one, KINDS[i % len(KINDS)])
    return done


def count_tasks() -> int:
    """Every task in the run, from the root task down."""
    count = 0
    nurseries = list(trio.lowlevel.current_root_task().child_nurseries)
    while nurseries:
        nursery = nurseries.pop()
        for task in nursery.child_tasks:
            count += 1
            nurseries.extend(task.child_nurseries)
    return count + 1


def count_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settle(server: Server, tasks: int) -> None:
    """Wait until the server side has wound every connection down."""
    while server._connections or count_tasks() > tasks:
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)


async def test_soak(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="trio_ws")
    tracemalloc.start()
    try:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                server: Server = await nursery.start(
                    functools.partial(
                        serve,
                        handler,
                        0,
                        host="127.0.0.1",
                        ping_interval=PING,
                        ping_timeout=PING,
                        open_timeout=OPEN_TIMEOUT,
                    )
                )
                assert server.port is not None
                idle_tasks = count_tasks()
                await run_round(server.port, 300)  # warm-up
                await settle(server, idle_tasks)
                gc.collect()
                tasks, fds = count_tasks(), count_fds()
                memory, _ = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                start = time.monotonic()
                done = await run_round(server.port, CONNECTIONS)
                elapsed = time.monotonic() - start
                await settle(server, tasks)
                gc.collect()
                after_memory, peak = tracemalloc.get_traced_memory()
                after_tasks, after_fds = count_tasks(), count_fds()
                assert server.connections == set()
                assert server._connections == set()
                await server.aclose()
    finally:
        tracemalloc.stop()
    print(
        f"\nsoak: {CONNECTIONS} connections {done} in {elapsed:.1f} s; "
        f"tasks {tasks} -> {after_tasks}; fds {fds} -> {after_fds}; "
        f"traced memory {memory / 2**20:.2f} -> {after_memory / 2**20:.2f} MiB "
        f"(peak {peak / 2**20:.1f} MiB)"
    )
    assert sum(done.values()) == CONNECTIONS
    assert after_tasks == tasks
    assert after_fds == fds
    # Back near the baseline: no Connection object survives the round, and
    # what the allocator still holds stays under 512 bytes per connection
    # (runs measured between -0.2 and +0.4 MiB, against a peak of ~18 MiB).
    assert not [o for o in gc.get_objects() if isinstance(o, Connection)]
    assert after_memory - memory < CONNECTIONS * 512
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
