"""Profile one child process: cProfile always, pyinstrument when installed."""

from __future__ import annotations

import cProfile
import importlib.util
import pstats
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")
PROFILERS = ("auto", "cprofile", "pyinstrument")


def resolve(profiler: str) -> str:
    if profiler == "auto":
        found = importlib.util.find_spec("pyinstrument") is not None
        return "pyinstrument" if found else "cprofile"
    if profiler == "pyinstrument" and importlib.util.find_spec("pyinstrument") is None:
        raise SystemExit("pyinstrument is not installed (pip install pyinstrument)")
    return profiler


def run_profiled(fn: Callable[[], T], out: str | None, profiler: str) -> T:
    """Run ``fn``; with ``out``, under ``profiler``, writing its data to ``out``."""
    if out is None:
        return fn()
    if profiler == "pyinstrument":
        from pyinstrument import Profiler  # type: ignore[import-not-found, unused-ignore]

        sampler = Profiler(async_mode="disabled")
        sampler.start()
        try:
            return fn()
        finally:
            sampler.stop()
            Path(out).write_text(sampler.output_text(unicode=True, color=False))
    profile = cProfile.Profile()
    profile.enable()
    try:
        return fn()
    finally:
        profile.disable()
        profile.dump_stats(out)


def print_report(out: str, profiler: str, top: int, file: TextIO = sys.stdout) -> None:
    """Print the top functions from a profile written by run_profiled."""
    if profiler == "pyinstrument":
        print(Path(out).read_text(), file=file)
        return
    stats = pstats.Stats(out, stream=file)
    stats.strip_dirs()
    print(f"\n#### Top {top} functions by own time (tottime)\n\n```", file=file)
    stats.sort_stats("tottime").print_stats(top)
    print("```\n", file=file)
    print(f"#### Top {top} functions by cumulative time\n\n```", file=file)
    stats.sort_stats("cumulative").print_stats(top)
    print("```", file=file)
