"""Fixtures for the tests against real proxy servers from Debian packages.

- ``tinyproxy`` (package tinyproxy): HTTP ``CONNECT``, optionally with
  ``BasicAuth`` (407 without it) and ``ConnectPort`` restrictions (403).
- ``dante`` (package dante-server, ``danted``): SOCKS5 without
  authentication, with a rule that blocks port 9.
- ``microsocks`` (package microsocks): SOCKS5 with username/password
  authentication (RFC 1929).

Tests that use them carry the ``proxy`` marker (``pytestmark`` in their
module): the default run deselects them, and CI runs them in a step of their
own that installs the packages first (``pytest -m proxy tests/proxy``). A
missing binary fails the fixture; it never skips. Each proxy runs in the
foreground as the current user, on 127.0.0.1, with its configuration in the
test's ``tmp_path``, and stops with the test's nursery. Real sockets and real
time: every wait is bounded.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeAlias

import pytest
import trio

from ..deploy.conftest import free_port, wait_until_accepting

#: Seconds a proxy gets to start accepting.
START_TIMEOUT = 10

#: ``await start(...)`` returns the proxy's URI.
StartProxy: TypeAlias = Callable[..., Awaitable[str]]


def executable(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.fail(f"{name} is not installed: apt-get install -y {package}")
    return found


async def run_until_accepting(
    nursery: trio.Nursery, command: list[str], port: int
) -> None:
    # check=True: a proxy that exits on its own (bad configuration, port
    # taken) fails the test with its exit status.
    await nursery.start(functools.partial(trio.run_process, command))
    with trio.fail_after(START_TIMEOUT):
        await wait_until_accepting(port)


@pytest.fixture
async def tinyproxy(nursery: trio.Nursery, tmp_path: Path) -> StartProxy:
    """``await tinyproxy(basic_auth=("u", "p"), connect_ports=[443])``."""
    binary = executable("tinyproxy", "tinyproxy")

    async def start(
        *,
        basic_auth: tuple[str, str] | None = None,
        connect_ports: list[int] | None = None,
    ) -> str:
        port = free_port()
        lines = [
            f"Port {port}",
            "Listen 127.0.0.1",
            "Timeout 30",
            "MaxClients 20",
            "LogLevel Info",
            f'PidFile "{tmp_path / f"tinyproxy-{port}.pid"}"',
        ]
        if basic_auth is not None:
            lines.append("BasicAuth {} {}".format(*basic_auth))
        # Without ConnectPort lines, tinyproxy tunnels to any port.
        lines += [f"ConnectPort {p}" for p in connect_ports or []]
        config = tmp_path / f"tinyproxy-{port}.conf"
        config.write_text("\n".join(lines) + "\n")
        await run_until_accepting(nursery, [binary, "-d", "-c", str(config)], port)
        return f"http://127.0.0.1:{port}"

    return start


@pytest.fixture
async def dante(nursery: trio.Nursery, tmp_path: Path) -> StartProxy:
    """``await dante()``: SOCKS5 without authentication; port 9 is blocked."""
    binary = executable("danted", "dante-server")

    async def start() -> str:
        port = free_port()
        config = tmp_path / f"danted-{port}.conf"
        config.write_text(
            "logoutput: stderr\n"
            f"internal: 127.0.0.1 port = {port}\n"
            "external: 127.0.0.1\n"
            "clientmethod: none\n"
            "socksmethod: none\n"
            "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
            "socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 port = 9 }\n"
            "socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }\n"
        )
        command = [
            binary,
            *("-f", str(config)),
            *("-p", str(tmp_path / f"danted-{port}.pid")),
            *("-N", "1"),
        ]
        await run_until_accepting(nursery, command, port)
        return f"127.0.0.1:{port}"

    return start


@pytest.fixture
async def microsocks(nursery: trio.Nursery) -> StartProxy:
    """``await microsocks("user", "password")``: SOCKS5 with RFC 1929 auth."""
    binary = executable("microsocks", "microsocks")

    async def start(username: str, password: str) -> str:
        port = free_port()
        command = [binary, "-i", "127.0.0.1", "-p", str(port)]
        command += ["-u", username, "-P", password]
        await run_until_accepting(nursery, command, port)
        return f"127.0.0.1:{port}"

    return start
