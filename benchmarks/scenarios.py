"""The scenarios: which cases exist, their parameters and the metrics reported."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCENARIOS = ("rtt", "stream", "fanout", "conns")

KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool
    digits: int = 0


#: CPU time of both processes (client + server) per operation: unlike the
#: rates, it barely moves when other work shares the machine's cores.
CPU_KEY = "cpu_us"
RTT_METRICS = (
    Metric("round_trips_per_s", "round trips/s", True),
    Metric("us_per_round_trip", "µs/round trip", False, 1),
    Metric(CPU_KEY, "CPU µs/round trip", False, 1),
)
STREAM_METRICS = (
    Metric("mb_per_s", "MB/s", True, 1),
    Metric("messages_per_s", "messages/s", True),
    Metric(CPU_KEY, "CPU µs/message", False, 1),
)
FANOUT_METRICS = (
    Metric("messages_per_s", "messages/s (all connections)", True),
    Metric(CPU_KEY, "CPU µs/round trip", False, 1),
)
CONNS_METRICS = (
    Metric("server_kib_per_conn", "server KiB/connection", False, 1),
    Metric("handshakes_per_s", "handshakes/s", True),
)


@dataclass(frozen=True)
class Case:
    """One measurement shape, run for every library and repetition."""

    scenario: str
    name: str
    title: str
    metrics: tuple[Metric, ...]
    params: dict[str, Any] = field(default_factory=dict)
    #: Hard bound on the client process, in seconds.
    timeout: float = 60.0


def _size_name(size: int) -> str:
    if size >= MIB:
        return f"{size // MIB} MiB"
    if size >= KIB:
        return f"{size // KIB} KiB"
    return f"{size} B"


def _rtt(duration: float, quick: bool) -> list[Case]:
    return [
        Case(
            "rtt",
            "rtt",
            "rtt: one connection, sequential echo of a 32-byte text message",
            RTT_METRICS,
            {"duration": duration, "max_count": 1_000_000, "warmup": 200},
        )
    ]


def _stream(duration: float, quick: bool) -> list[Case]:
    return [
        Case(
            "stream",
            f"stream {_size_name(size)}",
            f"stream {_size_name(size)}: one connection, binary messages of "
            f"{_size_name(size)} client->server, acknowledged at the end",
            STREAM_METRICS,
            {
                "duration": duration,
                "size": size,
                "max_count": max(1, max_bytes // size),
                "warmup": 4 if size >= MIB else 50,
            },
        )
        for size, max_bytes in ((64, 10**9), (16 * KIB, 10**10), (MIB, 10**10))
    ]


def _fanout(duration: float, quick: bool) -> list[Case]:
    return [
        Case(
            "fanout",
            f"fanout {conns}",
            f"fanout {conns}: {conns} connections, each echoing 32-byte "
            "messages in a loop",
            FANOUT_METRICS,
            {
                "duration": duration,
                "connections": conns,
                "max_count": 10_000_000 // conns,
                "concurrency": 50,
            },
            timeout=120.0,
        )
        for conns in ((20, 100) if quick else (100, 1000))
    ]


def _conns(duration: float, quick: bool) -> list[Case]:
    conns = 200 if quick else 1000
    return [
        Case(
            "conns",
            f"conns {conns}",
            f"conns {conns}: {conns} idle connections, server memory and "
            "handshake rate",
            CONNS_METRICS,
            {
                "connections": conns,
                "concurrency": 10,
                "warmup": 20,
                "settle": 0.2 if quick else 0.5,
            },
            timeout=120.0,
        )
    ]


_BUILDERS = {"rtt": _rtt, "stream": _stream, "fanout": _fanout, "conns": _conns}


def build_cases(scenarios: list[str], quick: bool) -> list[Case]:
    """The cases of the chosen scenarios, smaller and shorter with ``quick``."""
    duration = 0.3 if quick else 2.0
    return [case for s in scenarios for case in _BUILDERS[s](duration, quick)]
