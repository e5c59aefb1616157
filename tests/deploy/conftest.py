"""Fixtures for the deployment tests: a real nginx in front of trio_ws.

Tests that use the ``nginx`` fixture must carry the ``nginx`` marker (their
modules set ``pytestmark``): the default run deselects them, and CI runs them
in a step of their own that installs nginx first (``pytest -m nginx
tests/deploy``). Without nginx installed the fixture fails; it never skips.

Each test gets its own nginx, started from ``nginx.conf`` beside this file
(the configuration that docs/howto/deployment.rst shows) in the test's
``tmp_path``, with a certificate from a trustme CA, and stopped with the
test's nursery. Real sockets and real time: every wait is bounded.
"""

from __future__ import annotations

import functools
import re
import shutil
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import pytest
import trio
import trustme

NGINX_CONF = Path(__file__).with_name("nginx.conf")
#: Seconds nginx gets to start accepting.
NGINX_START_TIMEOUT = 10


@dataclass
class Nginx:
    """A running nginx proxying ``wss://127.0.0.1:port`` to a trio_ws port."""

    port: int
    prefix: Path
    #: A client context that trusts nginx's certificate.
    ssl: ssl.SSLContext

    def uri(self, path: str = "/") -> str:
        return f"wss://127.0.0.1:{self.port}{path}"

    def error_log(self) -> str:
        return (self.prefix / "error.log").read_text()


StartNginx: TypeAlias = Callable[..., Awaitable[Nginx]]


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


def free_port() -> int:
    # A small race with other programs on this machine, which nginx would
    # report as "Address already in use".
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_until_accepting(port: int) -> None:
    """Poll until something accepts on ``port``: nginx gives no other sign."""
    while True:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            await trio.sleep(0.01)
        else:
            await stream.aclose()
            return


@pytest.fixture
async def nginx(nursery: trio.Nursery, tmp_path: Path, ca: trustme.CA) -> StartNginx:
    """``await nginx(upstream_port, read_timeout="1s")`` starts an nginx."""
    executable = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if executable is None:
        pytest.fail("nginx is not installed: apt-get install -y nginx")
    count = 0

    async def start(upstream_port: int, *, read_timeout: str = "1s") -> Nginx:
        nonlocal count
        count += 1
        prefix = tmp_path / f"nginx{count}"
        (prefix / "tmp").mkdir(parents=True)
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(prefix / "server.key")
        chain = b"".join(pem.bytes() for pem in cert.cert_chain_pems)
        trustme.Blob(chain).write_to_path(prefix / "server.pem")
        port = free_port()
        config = NGINX_CONF.read_text()
        for name, value in {
            "UPSTREAM_PORT": str(upstream_port),
            "LISTEN_PORT": str(port),
            "CERTIFICATE": str(prefix / "server.pem"),
            "PRIVATE_KEY": str(prefix / "server.key"),
            "READ_TIMEOUT": read_timeout,
        }.items():
            config = config.replace(f"@{name}@", value)
        assert not re.search("@[A-Z_]+@", config)
        (prefix / "nginx.conf").write_text(config)
        command = [
            executable,
            *("-e", str(prefix / "error.log")),
            *("-c", str(prefix / "nginx.conf")),
            *("-p", str(prefix)),
            *("-g", "daemon off;"),
        ]
        # check=True: an nginx that exits on its own (bad configuration, port
        # taken) fails the test with its exit status; its stderr is captured.
        await nursery.start(functools.partial(trio.run_process, command))
        with trio.fail_after(NGINX_START_TIMEOUT):
            await wait_until_accepting(port)
        context = ssl.create_default_context()
        ca.configure_trust(context)
        return Nginx(port, prefix, context)

    return start
