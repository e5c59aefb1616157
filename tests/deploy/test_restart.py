"""Worker processes behind nginx: balancing, and a graceful restart that a
reconnecting client rides through."""

from __future__ import annotations

import functools
import os
import signal
from typing import TYPE_CHECKING

import pytest
import trio

import trio_ws

if TYPE_CHECKING:
    from .conftest import Nginx, StartNginx

pytestmark = pytest.mark.nginx

WHOAMI = "tests.deploy.handlers:whoami"
#: Bound on each test (worker processes take a moment to start).
TIMEOUT = 20


async def start_pool(
    nursery: trio.Nursery, nginx: StartNginx, **options: object
) -> tuple[trio_ws.WorkerPool, Nginx]:
    pool: trio_ws.WorkerPool = await nursery.start(
        functools.partial(trio_ws.serve_workers, WHOAMI, 0, host="127.0.0.1", **options)
    )
    return pool, await nginx(pool.port)


async def ask_pid(ws: trio_ws.ClientConnection) -> int:
    await ws.send("who")
    reply = await ws.recv()
    assert isinstance(reply, str)
    return int(reply.split()[1])


async def test_nginx_balances_across_workers(
    nursery: trio.Nursery, nginx: StartNginx
) -> None:
    with trio.fail_after(TIMEOUT):
        pool, proxy = await start_pool(nursery, nginx, workers=3)
        assert len(pool.pids) == 3
        seen: list[int] = []
        # The kernel hashes each new connection to a worker: 30 connections
        # all missing one of 3 workers has odds of about 3 * (2/3)**30.
        for _ in range(30):
            async with trio_ws.connect(proxy.uri(), ssl=proxy.ssl) as ws:
                seen.append(await ask_pid(ws))
    assert set(seen) == set(pool.pids)


async def test_graceful_restart_through_the_proxy(
    nursery: trio.Nursery, nginx: StartNginx
) -> None:
    close_timeout = 2
    with trio.fail_after(TIMEOUT):
        pool, proxy = await start_pool(
            nursery, nginx, workers=2, close_timeout=close_timeout
        )
        async with trio_ws.connect(proxy.uri(), ssl=proxy.ssl) as ws:
            stopped = await ask_pid(ws)
            os.kill(stopped, signal.SIGTERM)
            start = trio.current_time()
            with pytest.raises(trio_ws.ConnectionClosedOK) as caught:
                await ws.recv()
            took = trio.current_time() - start
        # The worker said 1001 (going away) through nginx, in time.
        assert caught.value.rcvd is not None
        assert caught.value.rcvd.code == 1001
        assert took < close_timeout
        # The client reconnects and resumes on another worker. Connections
        # that were queued on the stopping worker's socket are reset, which
        # nginx reports as 502: a reconnecting client tries again.
        refused: list[int] = []
        for _ in range(50):
            try:
                async with trio_ws.connect(proxy.uri(), ssl=proxy.ssl) as ws:
                    await ws.send("resume")
                    reply = await ws.recv()
                    break
            except trio_ws.InvalidStatus as exc:
                refused.append(exc.response.status_code)
        else:
            pytest.fail("no worker took the reconnection")
        assert set(refused) <= {502}
        assert isinstance(reply, str)
        assert reply.startswith("pid ")
        assert int(reply.split()[1]) != stopped
        assert reply.endswith(" resume")
        # The pool replaced the stopped worker.
        while len(pool.pids) < 2 or stopped in pool.pids:  # noqa: ASYNC110
            await trio.sleep(0.01)
