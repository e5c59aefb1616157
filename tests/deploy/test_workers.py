"""serve_workers() on loopback, without a proxy: one port, several processes,
graceful stops and replacements, ``trio-ws serve --workers``.

Worker processes are real: each test takes about a second of real time.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys

import pytest
import trio

import trio_ws
from trio_ws import _workers

WHOAMI = "tests.deploy.handlers:whoami"
#: Bound on each test's waits (worker processes take a moment to start).
TIMEOUT = 20


async def start_pool(
    nursery: trio.Nursery, handler: str = WHOAMI, **options: object
) -> trio_ws.WorkerPool:
    options.setdefault("workers", 2)
    pool: trio_ws.WorkerPool = await nursery.start(
        functools.partial(
            trio_ws.serve_workers, handler, 0, host="127.0.0.1", **options
        )  # type: ignore[arg-type]
    )
    return pool


async def start_stubborn_pool(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> trio_ws.WorkerPool:
    """One worker running the stubborn handler, with a close_timeout and an
    EXIT_GRACE of 0.5 s each."""
    monkeypatch.setattr(_workers, "EXIT_GRACE", 0.5)
    return await start_pool(
        nursery, "tests.deploy.handlers:stubborn", workers=1, close_timeout=0.5
    )


def uri(pool: trio_ws.WorkerPool) -> str:
    return f"ws://127.0.0.1:{pool.port}/"


async def ask_pid(ws: trio_ws.ClientConnection) -> int:
    await ws.send("who")
    reply = await ws.recv()
    assert isinstance(reply, str)
    return int(reply.split()[1])


async def wait_replaced(pool: trio_ws.WorkerPool, pid: int, workers: int) -> None:
    # The pool says nothing when a replacement is ready: poll its pids.
    while pid in pool.pids or len(pool.pids) < workers:  # noqa: ASYNC110
        await trio.sleep(0.01)


async def test_workers_share_one_port(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        pool = await start_pool(nursery, workers=2)
        assert pool.port > 0
        assert repr(pool) == f"<WorkerPool port={pool.port} pids={pool.pids}>"
        seen = set()
        # Each connection lands on either worker: 30 all on one has odds 2**-29.
        for _ in range(30):
            async with trio_ws.connect(uri(pool)) as ws:
                seen.add(await ask_pid(ws))
        assert seen == set(pool.pids)
        assert os.getpid() not in seen
        await pool.aclose()
    assert pool.pids == []


async def test_workers_listen_on_every_interface(nursery: trio.Nursery) -> None:
    # host=None: the IPv4 and IPv6 wildcards, on one port.
    with trio.fail_after(TIMEOUT):
        pool: trio_ws.WorkerPool = await nursery.start(
            functools.partial(trio_ws.serve_workers, WHOAMI, 0, workers=1)
        )
        for host in ["127.0.0.1", "[::1]"]:
            async with trio_ws.connect(f"ws://{host}:{pool.port}/") as ws:
                assert await ask_pid(ws) == pool.pids[0]


async def test_sigterm_sends_1001_and_the_pool_replaces_the_worker(
    nursery: trio.Nursery,
) -> None:
    close_timeout = 2
    with trio.fail_after(TIMEOUT):
        pool = await start_pool(nursery, workers=1, close_timeout=close_timeout)
        async with trio_ws.connect(uri(pool)) as ws:
            stopped = await ask_pid(ws)
            os.kill(stopped, signal.SIGTERM)
            start = trio.current_time()
            with pytest.raises(trio_ws.ConnectionClosedOK) as caught:
                await ws.recv()
            assert trio.current_time() - start < close_timeout
        assert (
            str(caught.value)
            == "received 1001 (going away); then sent 1001 (going away)"
        )
        await wait_replaced(pool, stopped, 1)
        async with trio_ws.connect(uri(pool)) as ws:
            assert await ask_pid(ws) == pool.pids[0] != stopped


async def test_a_killed_worker_is_replaced(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        pool = await start_pool(nursery, workers=1)
        async with trio_ws.connect(uri(pool)) as ws:
            killed = await ask_pid(ws)
            os.kill(killed, signal.SIGKILL)
            with pytest.raises(trio_ws.ConnectionClosedError) as caught:
                await ws.recv()
        assert str(caught.value) == "no close frame received or sent"
        await wait_replaced(pool, killed, 1)


async def test_a_replacement_that_fails_to_start_is_retried(
    nursery: trio.Nursery,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(_workers, "RESPAWN_DELAY", 0.05)
    with trio.fail_after(TIMEOUT):
        pool = await start_pool(nursery, workers=1)
        [first] = pool.pids
        # Replacements started from now on fail while importing the handler.
        monkeypatch.setenv("TRIO_WS_TEST_WORKER_FAILS", "1")
        os.kill(first, signal.SIGTERM)
        while "worker failed to start; retrying" not in caplog.text:  # noqa: ASYNC110
            await trio.sleep(0.01)
        assert pool.pids == []
        monkeypatch.delenv("TRIO_WS_TEST_WORKER_FAILS")
        await wait_replaced(pool, first, 1)
        async with trio_ws.connect(uri(pool)) as ws:
            assert await ask_pid(ws) == pool.pids[0]


async def test_aclose_sends_1001_to_every_client(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        pool = await start_pool(nursery, workers=2)
        pids = pool.pids
        async with trio.open_nursery() as clients:
            # One client per worker, held open.
            connected: dict[int, trio_ws.ClientConnection] = {}
            while len(connected) < 2:
                ws = await clients.start(hold_open, uri(pool))
                pid = await ask_pid(ws)
                if pid in connected:
                    await ws.aclose()
                else:
                    connected[pid] = ws
            await pool.aclose()
        assert {ws.close_code for ws in connected.values()} == {1001}
    assert pool.pids == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def hold_open(
    uri: str, *, task_status: trio.TaskStatus[trio_ws.ClientConnection]
) -> None:
    async with trio_ws.connect(uri) as ws:
        task_status.started(ws)
        await ws.wait_closed()


async def test_cancelled_before_starting() -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        await trio_ws.serve_workers(WHOAMI, 0, workers=1, host="127.0.0.1")
    assert scope.cancelled_caught


async def test_cancelled_while_serving(nursery: trio.Nursery) -> None:
    scope = trio.CancelScope()

    async def run_pool(task_status: trio.TaskStatus[trio_ws.WorkerPool]) -> None:
        with scope:
            await trio_ws.serve_workers(
                WHOAMI, 0, workers=1, host="127.0.0.1", task_status=task_status
            )

    with trio.fail_after(TIMEOUT):
        pool = await nursery.start(run_pool)
        [pid] = pool.pids
        async with trio_ws.connect(uri(pool)) as ws:
            await ask_pid(ws)
            scope.cancel()
            await ws.wait_closed()
        assert ws.close_code == 1001
        await pool.aclose()  # returns at once: the pool has stopped
    assert pool.pids == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_aclose_cancelled_before(nursery: trio.Nursery) -> None:
    with trio.fail_after(TIMEOUT):
        pool = await start_pool(nursery, workers=1)
        [pid] = pool.pids
        with trio.CancelScope() as scope:
            scope.cancel()
            await pool.aclose()
        assert scope.cancelled_caught
        # The pool stops all the same; a second aclose() waits for it.
        await pool.aclose()
    assert not process_exists(pid)


async def test_aclose_cancelled_during(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(TIMEOUT):
        pool = await start_stubborn_pool(nursery, monkeypatch)
        [pid] = pool.pids
        async with trio_ws.connect(uri(pool)) as ws:
            assert await ws.recv() == "stubborn"
            # The stubborn worker takes a second to go: stop waiting sooner.
            with trio.move_on_after(0.1) as scope:
                await pool.aclose()
            assert scope.cancelled_caught
            await ws.wait_closed()
        assert ws.close_code == 1001
        await pool.aclose()
    assert not process_exists(pid)


async def test_a_worker_that_does_not_stop_is_killed(
    nursery: trio.Nursery,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(TIMEOUT):
        pool = await start_stubborn_pool(nursery, monkeypatch)
        async with trio_ws.connect(uri(pool)) as ws:
            assert await ws.recv() == "stubborn"
            start = trio.current_time()
            await pool.aclose()
            took = trio.current_time() - start
    # close_timeout, then EXIT_GRACE, then SIGKILL.
    assert 1.0 <= took < 5
    assert "did not stop in time; killing it" in caplog.text


async def test_a_stopped_worker_that_does_not_exit_is_killed(
    nursery: trio.Nursery,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(TIMEOUT):
        pool = await start_stubborn_pool(nursery, monkeypatch)
        [stuck] = pool.pids
        async with trio_ws.connect(uri(pool)) as ws:
            assert await ws.recv() == "stubborn"
            os.kill(stuck, signal.SIGTERM)
            await ws.wait_closed()
        await wait_replaced(pool, stuck, 1)
        while "did not stop in time" not in caplog.text:  # noqa: ASYNC110
            await trio.sleep(0.01)
        assert f"worker {stuck} did not stop in time; killing it" in caplog.text
        # Killed, then reaped by the pool.
        while process_exists(stuck):  # noqa: ASYNC110
            await trio.sleep(0.01)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("handler", "options", "error", "match"),
    [
        (WHOAMI, {"workers": 0}, ValueError, "workers must be at least 1, not 0"),
        (lambda ws: None, {}, TypeError, "cannot send the handler or options"),
        ("no_colon", {}, TypeError, "looks like 'module:name', not 'no_colon'"),
        (WHOAMI, {"ssl": None}, TypeError, r"does not support ssl="),
        (WHOAMI, {"listeners": []}, TypeError, r"does not support listeners="),
    ],
)
async def test_invalid_arguments(
    handler: object, options: dict[str, object], error: type[Exception], match: str
) -> None:
    options.setdefault("workers", 1)
    with pytest.raises(error, match=match):
        await trio_ws.serve_workers(handler, 0, host="127.0.0.1", **options)  # type: ignore[arg-type]


async def test_handler_from_main_is_refused() -> None:
    async def handler(ws: trio_ws.ServerConnection) -> None:
        pass

    handler.__module__ = "__main__"
    with pytest.raises(TypeError, match="move it out of __main__"):
        await trio_ws.serve_workers(handler, 0, workers=1, host="127.0.0.1")


async def test_worker_that_cannot_start() -> None:
    with trio.fail_after(TIMEOUT):
        with pytest.raises(RuntimeError, match="a worker exited before accepting"):
            await trio_ws.serve_workers(
                "tests.deploy.handlers:missing", 0, workers=2, host="127.0.0.1"
            )


async def test_port_taken() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with listeners[0]:
        with pytest.raises(OSError, match="in use"):
            await trio_ws.serve_workers(WHOAMI, port, workers=1, host="127.0.0.1")


async def test_handler_passed_as_a_function(nursery: trio.Nursery) -> None:
    from .handlers import whoami

    with trio.fail_after(TIMEOUT):
        pool = await start_pool(nursery, whoami, workers=1)  # type: ignore[arg-type]
        async with trio_ws.connect(uri(pool)) as ws:
            assert await ask_pid(ws) == pool.pids[0]


async def test_run_workers_stops_on_sigterm() -> None:
    lines: list[str] = []
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            pool = await nursery.start(
                _workers.run_workers,
                "trio_ws._cli:echo",
                "127.0.0.1",
                0,
                2,
                lines.append,
            )
            async with trio_ws.connect(uri(pool)) as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
                os.kill(os.getpid(), signal.SIGTERM)
                await ws.wait_closed()
        assert ws.close_code == 1001
    assert lines == [
        f"Listening on ws://127.0.0.1:{pool.port}/ with 2 workers (Ctrl-C to stop)."
    ]


async def test_cli_workers_stop_when_the_supervisor_dies() -> None:
    command = [
        sys.executable,
        "-m",
        "trio_ws",
        "serve",
        "--workers",
        "1",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
    ]
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            process = await nursery.start(
                functools.partial(
                    trio.run_process, command, stdout=subprocess.PIPE, check=False
                )
            )
            assert process.stdout is not None
            output = b""
            while b"\n" not in output:
                output += await process.stdout.receive_some()
            line = output.decode().strip()
            assert line.startswith("Listening on ws://127.0.0.1:")
            assert line.endswith("/ with 1 workers (Ctrl-C to stop).")
            port = int(line.split(":")[2].split("/")[0])
            async with trio_ws.connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
                # No clean-up by the supervisor: the worker sees its standard
                # input close and stops gracefully on its own.
                process.kill()
                await ws.wait_closed()
            assert ws.close_code == 1001
