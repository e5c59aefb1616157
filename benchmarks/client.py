"""Client process: ``python -m benchmarks.client --library NAME --port P --case JSON``.

Runs one case against a server and prints ``{"result": {...}}`` (or
``{"error": ...}``) on a MARK line. At a sync point it prints ``{"sync": ...}``
and waits for a ``go`` line on stdin.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from typing import Any

import trio

from .libs import Adapter, load
from .profiling import PROFILERS, resolve, run_profiled
from .proto import StdinLines, check_loopback, describe, emit
from .workload import CLIENTS, Metrics


async def run_case(
    adapter: Adapter, host: str, port: int, scenario: str, params: dict[str, Any]
) -> Metrics:
    stdin = StdinLines()

    async def sync(name: str, info: dict[str, Any]) -> None:
        emit({"sync": name, **info})
        line = await stdin.readline()
        if line != "go":
            raise RuntimeError(f"parent said {line!r} at sync point {name!r}")

    try:
        return await CLIENTS[scenario](adapter, f"ws://{host}:{port}", params, sync)
    finally:
        await stdin.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.client")
    parser.add_argument("--library", required=True)
    parser.add_argument(
        "--path", help="import the library from this source tree first (variants)"
    )
    parser.add_argument("--host", default="127.0.0.1", type=check_loopback)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--scenario", required=True, choices=sorted(CLIENTS))
    parser.add_argument("--params", default="{}", help="JSON object")
    parser.add_argument("--profile-out")
    parser.add_argument("--profiler", default="auto", choices=PROFILERS)
    args = parser.parse_args(argv)
    if args.path:
        sys.path.insert(0, args.path)
    try:
        adapter = load(args.library)
        params = json.loads(args.params)
        metrics = run_profiled(
            lambda: trio.run(
                run_case, adapter, args.host, args.port, args.scenario, params
            ),
            args.profile_out,
            resolve(args.profiler),
        )
    except Exception as exc:
        traceback.print_exc()
        emit({"error": describe(exc)})
        sys.exit(1)
    emit({"result": metrics})


if __name__ == "__main__":
    main()
