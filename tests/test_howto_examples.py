"""The examples of the how-to guides in docs/howto/examples/ run and do what they say."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys
from types import ModuleType

import pytest
import trio

EXAMPLES = pathlib.Path(__file__).parent.parent / "docs" / "howto" / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"howto_{name}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("routing_rooms", ["welcome to lobby", "404 b'Not found.\\n'"]),
        ("basic_auth", ["hello alice", '401 Basic realm="trio_ws", charset="UTF-8"']),
        ("reconnecting_client", 3),
        ("nursery_bound", ["one", "two"]),
    ],
)
async def test_example(name: str, expected: object) -> None:
    # Real sockets on 127.0.0.1: a trio-clock guard, no autojump_clock.
    with trio.fail_after(10):
        assert await load(name).main() == expected


def test_testing_example_passes_under_pytest() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(EXAMPLES / "test_app.py"),
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
