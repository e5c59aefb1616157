"""Process orchestration: one server and one client process per measurement.

The parent only waits on pipes; all timing happens inside the client. Every
child has a hard deadline and is killed if it overstays.
"""

from __future__ import annotations

import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .proto import MARK

if TYPE_CHECKING:
    from collections.abc import Callable

    from .scenarios import Case

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT = 30.0

#: ``trio_ws@LABEL`` -> the source tree its children import trio_ws from.
VARIANT_PATHS: dict[str, str] = {}


class ChildError(Exception):
    """A child process failed, timed out or broke the line protocol."""


@dataclass
class Measurement:
    library: str
    case: str
    scenario: str
    rep: int
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


@dataclass
class Profile:
    """Run one side (``client`` or ``server``) under a profiler."""

    side: str
    profiler: str
    out: str


def read_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (clock-tick resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        # Fields after the parenthesised command name; utime and stime are
        # fields 14 and 15 of the whole line.
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_vmrss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise ChildError(f"no VmRSS for pid {pid}")


class Child:
    """A ``python -m benchmarks.X`` process talking MARK lines on stdout."""

    def __init__(self, module: str, args: list[str], profile: Profile | None) -> None:
        cmd = [sys.executable, "-m", module, *args]
        if profile is not None:
            cmd += ["--profile-out", profile.out, "--profiler", profile.profiler]
        self.module = module
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._buffer = b""

    def read(self, timeout: float) -> dict[str, Any]:
        """The next MARK line as an object, within ``timeout`` seconds."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        end = time.monotonic() + timeout
        while True:
            line, nl, rest = self._buffer.partition(b"\n")
            if nl:
                self._buffer = rest
                text = line.decode(errors="replace")
                if text.startswith(MARK):
                    obj: dict[str, Any] = json.loads(text[len(MARK) :])
                    return obj
                continue
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise ChildError(f"{self.module}: no answer in {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    code = self.proc.wait(timeout=5)
                    raise ChildError(
                        f"{self.module} exited ({code}){self.stderr_tail()}"
                    )
                self._buffer += chunk

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def stderr_tail(self, lines: int = 6) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        return "\n    " + "\n    ".join(text.splitlines()[-lines:]) if text else ""

    def close(self, grace: float = 10.0) -> None:
        """Close stdin (the child's signal to stop), then wait, then kill."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


def _server_memory(server: Child, settle: float, expect_active: int) -> int:
    """Settled VmRSS (KiB) of the server once it runs ``expect_active`` handlers."""
    deadline = time.monotonic() + 30
    while True:
        server.send(f"gc {settle}")
        answer = server.read(timeout=30)
        if answer.get("active") == expect_active:
            return read_vmrss_kib(server.proc.pid)
        if time.monotonic() > deadline:
            raise ChildError(
                f"server has {answer.get('active')} live handlers, "
                f"expected {expect_active}"
            )


def _add_cpu(metrics: dict[str, float], server: Child, start: float) -> None:
    """Server CPU per operation since ``start``, and the sum of both processes."""
    count = metrics["count"]
    server_us = (read_cpu_seconds(server.proc.pid) - start) / count * 1e6
    metrics["server_cpu_us"] = server_us
    metrics["cpu_us"] = metrics["client_cpu_us"] + server_us


def measure(
    library: str, case: Case, rep: int, profile: Profile | None = None
) -> Measurement:
    """Run one case for one library in a fresh pair of processes."""
    result = Measurement(library, case.name, case.scenario, rep)
    started = time.monotonic()
    path = VARIANT_PATHS.get(library)
    lib_args = ["--library", library] + (["--path", path] if path else [])
    server = Child(
        "benchmarks.server",
        [*lib_args, "--host", HOST, "--port", "0"],
        profile if profile is not None and profile.side == "server" else None,
    )
    try:
        port = int(server.read(START_TIMEOUT)["port"])
        client = Child(
            "benchmarks.client",
            [
                *lib_args,
                "--host",
                HOST,
                "--port",
                str(port),
                "--scenario",
                case.scenario,
                "--params",
                json.dumps(case.params),
            ],
            profile if profile is not None and profile.side == "client" else None,
        )
        try:
            extra: dict[str, float] = {}
            baseline = 0
            server_cpu: float | None = None
            end = time.monotonic() + case.timeout
            while True:
                msg = client.read(max(0.1, end - time.monotonic()))
                if "result" in msg:
                    result.metrics = {**msg["result"], **extra}
                    if server_cpu is not None:
                        _add_cpu(result.metrics, server, server_cpu)
                    break
                if "error" in msg:
                    raise ChildError(msg["error"] + client.stderr_tail())
                if msg.get("sync") == "timing":
                    server_cpu = read_cpu_seconds(server.proc.pid)
                elif msg.get("sync") == "baseline":
                    baseline = _server_memory(server, case.params["settle"], 0)
                elif msg.get("sync") == "open":
                    n = int(msg["connections"])
                    loaded = _server_memory(server, case.params["settle"], n)
                    extra["server_kib_per_conn"] = (loaded - baseline) / n
                    extra["server_rss_baseline_kib"] = baseline
                client.send("go")
        finally:
            client.close()
    except (ChildError, OSError, ValueError, KeyError) as exc:
        result.error = str(exc) or type(exc).__name__
        server_tail = server.stderr_tail()
        if server_tail:
            result.error += "\n  server stderr:" + server_tail
    finally:
        server.close()
    result.seconds = time.monotonic() - started
    return result


def run_all(
    libraries: list[str],
    cases: list[Case],
    repeat: int,
    progress: Callable[[int, int, Measurement], None],
) -> list[Measurement]:
    """Repetitions outermost, libraries innermost, so drift hits all alike."""
    total = repeat * len(cases) * len(libraries)
    results: list[Measurement] = []
    for rep in range(1, repeat + 1):
        for case in cases:
            for library in libraries:
                m = measure(library, case, rep)
                results.append(m)
                progress(len(results), total, m)
    return results


def medians(
    results: list[Measurement],
) -> dict[tuple[str, str], dict[str, list[float]]]:
    """(case, library) -> metric -> [median, min, max, runs] over successful runs."""
    samples: dict[tuple[str, str], dict[str, list[float]]] = {}
    for m in results:
        if m.error is None:
            per_metric = samples.setdefault((m.case, m.library), {})
            for key, value in m.metrics.items():
                per_metric.setdefault(key, []).append(value)
    return {
        key: {
            metric: [statistics.median(v), min(v), max(v), float(len(v))]
            for metric, v in per_metric.items()
        }
        for key, per_metric in samples.items()
    }


def to_json(results: list[Measurement]) -> list[dict[str, Any]]:
    return [asdict(m) for m in results]
