"""Server process: ``python -m benchmarks.server --library NAME --port 0``.

Prints its port on stdout (a MARK line), then serves until stdin closes, a
``quit`` line arrives or ``--max-seconds`` pass. ``gc SETTLE`` collects
garbage, sleeps SETTLE seconds, collects again and answers with the number of
live connection handlers, so the parent can read a settled VmRSS.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import sys
import traceback

import trio

from .libs import Adapter, Conn, load
from .profiling import PROFILERS, resolve, run_profiled
from .proto import StdinLines, check_loopback, emit
from .workload import SERVER_HANDLERS


class _State:
    active = 0
    errors = 0


async def _control(stdin: StdinLines, state: _State) -> None:
    while True:
        line = await stdin.readline()
        if line is None or line == "quit":
            return
        command, _, arg = line.partition(" ")
        if command == "gc":
            gc.collect()
            await trio.sleep(float(arg or 0))
            gc.collect()
            emit({"gc": True, "active": state.active, "errors": state.errors})


async def serve(adapter: Adapter, host: str, port: int, max_seconds: float) -> None:
    state = _State()

    async def handler(conn: Conn, path: str) -> None:
        func = SERVER_HANDLERS.get(path.partition("?")[0])
        if func is None:
            return
        state.active += 1
        try:
            await func(conn)
        except adapter.closed:
            pass
        except Exception:
            state.errors += 1
            if state.errors <= 3:
                traceback.print_exc()
        finally:
            state.active -= 1

    stdin = StdinLines()
    with trio.move_on_after(max_seconds):
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(
                functools.partial(adapter.serve, handler, host, port)
            )
            emit({"port": bound, "pid": os.getpid(), "version": adapter.version()})
            await _control(stdin, state)
            nursery.cancel_scope.cancel()
    await stdin.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server")
    parser.add_argument("--library", required=True)
    parser.add_argument(
        "--path", help="import the library from this source tree first (variants)"
    )
    parser.add_argument("--host", default="127.0.0.1", type=check_loopback)
    parser.add_argument("--port", default=0, type=int)
    parser.add_argument("--max-seconds", default=900.0, type=float)
    parser.add_argument("--profile-out")
    parser.add_argument("--profiler", default="auto", choices=PROFILERS)
    args = parser.parse_args(argv)
    if args.path:
        sys.path.insert(0, args.path)
    adapter = load(args.library)
    run_profiled(
        lambda: trio.run(serve, adapter, args.host, args.port, args.max_seconds),
        args.profile_out,
        resolve(args.profiler),
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
