"""``python -m benchmarks``: run the suite and print markdown tables.

See benchmarks/README.md for what each scenario measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from . import report
from .libs import LIBRARIES, VARIANT_OF, LibraryUnavailable, load, split_variant
from .profiling import PROFILERS, print_report, resolve
from .runner import (
    VARIANT_PATHS,
    Measurement,
    Profile,
    measure,
    medians,
    run_all,
    to_json,
)
from .scenarios import SCENARIOS, Case, build_cases


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="WebSocket benchmarks over loopback: trio_ws and other trio libraries.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: one repetition, short loops, small counts",
    )
    p.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        help="run only this scenario (repeatable)",
    )
    p.add_argument(
        "--case",
        action="append",
        metavar="NAME",
        help='run only this case, e.g. "stream 1 MiB" or "fanout 1000" (repeatable)',
    )
    p.add_argument(
        "--library",
        action="append",
        metavar="NAME",
        help=f"run only this library: {', '.join(LIBRARIES)} or trio_ws@LABEL "
        "(see --variant); repeatable",
    )
    p.add_argument(
        "--repeat",
        type=int,
        help="repetitions per measurement "
        "(default 3, or 1 with --quick); medians are reported",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="also run trio_ws imported from the source tree PATH, as row "
        "trio_ws@LABEL (repeatable; e.g. a branch's git worktree)",
    )
    p.add_argument("--json", metavar="FILE", help="write raw results to FILE")
    p.add_argument(
        "--profile",
        choices=("client", "server"),
        help="profile that process of the first library (default "
        "trio_ws) in the first case of the first scenario; print top functions",
    )
    p.add_argument(
        "--profiler",
        default="auto",
        choices=PROFILERS,
        help="auto: pyinstrument if installed, else cProfile",
    )
    p.add_argument("--top", type=int, default=25, help="functions shown by --profile")
    return p


def _progress(done: int, total: int, m: Measurement) -> None:
    if m.error is not None:
        what = "ERROR " + m.error.splitlines()[0]
    else:
        what = ", ".join(
            f"{k}={v:,.1f}"
            for k, v in m.metrics.items()
            if k != "count" and "baseline" not in k
        )
    print(
        f"[{done:>3}/{total}] rep {m.rep} {m.case:<14} {m.library:<16} {what} "
        f"({m.seconds:.1f} s)",
        file=sys.stderr,
        flush=True,
    )


def _variants(specs: list[str]) -> dict[str, str]:
    """``LABEL=PATH`` options -> {``trio_ws@LABEL``: absolute PATH}."""
    variants = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path or "@" in label:
            raise SystemExit(f"--variant wants LABEL=PATH, got {spec!r}")
        tree = Path(path).resolve()
        if not (tree / VARIANT_OF / "__init__.py").is_file():
            raise SystemExit(f"--variant {spec}: no {VARIANT_OF}/ package in {tree}")
        variants[f"{VARIANT_OF}@{label}"] = str(tree)
    return variants


def _tree_version(path: str) -> str:
    """The git commit of a variant's tree, ``+`` if its package has local changes."""
    try:
        rev = subprocess.run(
            ["git", "-C", path, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", path, "status", "--porcelain", "--", VARIANT_OF],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"{VARIANT_OF} from {path}"
    return (
        f"{VARIANT_OF} from {path} at {rev}{'+' if dirty else ''} (comparable settings)"
    )


def _available(names: list[str]) -> tuple[list[str], dict[str, str], list[str]]:
    found, versions, notes = [], {}, []
    for name in names:
        if name in VARIANT_PATHS:
            # Loaded in the children only: this process has its own trio_ws.
            versions[name] = _tree_version(VARIANT_PATHS[name])
            found.append(name)
            continue
        try:
            versions[name] = load(name).version()
            found.append(name)
        except LibraryUnavailable as exc:
            notes.append(f"- **{name}: skipped**, it cannot be imported ({exc}).")
    return found, versions, notes


def _profile(args: argparse.Namespace, libraries: list[str], cases: list[Case]) -> int:
    library, case = libraries[0], cases[0]
    profiler = resolve(args.profiler)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "profile.out")
        print(
            f"profiling the {args.profile} of {library} in {case.name} with {profiler}",
            file=sys.stderr,
        )
        m = measure(library, case, 1, Profile(args.profile, profiler, out))
        _progress(1, 1, m)
        if m.error is not None:
            print(m.error, file=sys.stderr)
            return 1
        print(f"## Profile: {args.profile} of {library}, {case.title}\n")
        print("(figures under a profiler are slower than real ones)")
        print_report(out, profiler, args.top)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    scenarios = args.scenario or list(SCENARIOS)
    VARIANT_PATHS.update(_variants(args.variant))
    for name in args.library or ():
        if split_variant(name)[0] not in LIBRARIES or (
            "@" in name and name not in VARIANT_PATHS
        ):
            print(f"unknown library {name!r}", file=sys.stderr)
            return 2
    requested = args.library or (["trio_ws"] if args.profile else list(LIBRARIES))
    # Variants come right after trio_ws (or last), in the order given.
    at = requested.index(VARIANT_OF) + 1 if VARIANT_OF in requested else len(requested)
    requested[at:at] = [v for v in VARIANT_PATHS if v not in requested]
    repeat = args.repeat or (1 if args.quick else 3)
    libraries, versions, notes = _available(requested)
    for note in notes:
        print(note.replace("**", ""), file=sys.stderr)
    if not libraries:
        print("no library to benchmark", file=sys.stderr)
        return 1
    cases = build_cases(scenarios, args.quick)
    if args.case:
        cases = [c for c in cases if c.name in args.case]
        if not cases:
            print(f"no case named {args.case}", file=sys.stderr)
            return 2
    if args.profile:
        return _profile(args, libraries, cases)

    started = time.monotonic()
    results = run_all(libraries, cases, repeat, _progress)
    elapsed = time.monotonic() - started
    med = medians(results)
    meta: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": platform.python_version(),
        "trio": version("trio"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "mode": "quick" if args.quick else "full",
        "repeat": repeat,
        "libraries": versions,
        "seconds": round(elapsed, 1),
    }
    print("# trio_ws benchmarks\n")
    print(
        f"{meta['date']}; Python {meta['python']}, trio {meta['trio']}; "
        f"{meta['machine']}; {meta['mode']} run, median of {repeat} run(s); "
        f"{elapsed:.0f} s.\n"
    )
    print(
        "Client and server are separate processes on 127.0.0.1, both using the "
        "library of the row. `vs X` = this row's median / X's median in the same "
        "run (↑: higher is better, ↓: lower is better).\n"
    )
    for name in libraries:
        print(f"- {name}: {versions[name]}")
    print("\n".join(notes) + "\n")
    print(report.render(cases, libraries, med, results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "meta": meta,
                    "notes": notes,
                    "results": to_json(results),
                    "medians": {f"{c}|{lib}": v for (c, lib), v in med.items()},
                },
                f,
                indent=1,
            )
    return 1 if any(m.error for m in results) else 0


if __name__ == "__main__":
    sys.exit(main())
