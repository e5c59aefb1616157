"""The command line: ``trio-ws URI``, ``trio-ws serve`` and ``python -m trio_ws``.

The interactive client and the echo server run in-process, with lines given
as an async iterable and output collected in a list; a single subprocess test
checks that ``python -m trio_ws`` wires stdin and stdout to them. Every test
that touches the network listens on 127.0.0.1, port 0, under ``fail_after``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import _cli
from trio_ws.testing import open_connection_pair

TIMEOUT = 10


async def lines_of(*lines: str) -> AsyncIterator[str]:
    """Lines as trio_ws reads them from stdin, newline included."""
    for line in lines:
        yield line
        await trio.lowlevel.checkpoint()


async def lines_forever(*lines: str) -> AsyncIterator[str]:
    """Lines, then an input that never ends (a user who types nothing more)."""
    async for line in lines_of(*lines):
        yield line
    await trio.sleep_forever()


class Console:
    """Collects what the client writes; lets the "user" wait for replies."""

    def __init__(self) -> None:
        self.output: list[str] = []
        self._changed = trio.Event()

    def write(self, text: str) -> None:
        self.output.append(text)
        self._changed.set()
        self._changed = trio.Event()

    async def type_after_replies(self, *lines: str) -> AsyncIterator[str]:
        """Type each line once the reply to the previous one is printed."""
        await self._wait_for(1)  # "Connected to ..."
        for line in lines:
            printed = len(self.output)
            yield line
            await self._wait_for(printed + 1)

    async def _wait_for(self, count: int) -> None:
        while len(self.output) < count:
            await self._changed.wait()


Handler = Callable[[trio_ws.ServerConnection], Awaitable[None]]


async def start_server(nursery: trio.Nursery, handler: Handler = _cli.echo) -> str:
    """Start a server on a free port; return its URI."""
    server: trio_ws.Server = await nursery.start(
        functools.partial(trio_ws.serve, handler, 0, host="127.0.0.1")
    )
    return f"ws://127.0.0.1:{server.port}/"


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- trio-ws URI: the interactive client ------------------------------------


async def test_client_sends_lines_and_prints_replies() -> None:
    console = Console()
    lines = console.type_after_replies("hello\n", "wörld\r\n", "\n")
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            uri = await start_server(nursery)
            await _cli.interactive_client(uri, lines, console.write)
            nursery.cancel_scope.cancel()
    # End of input closes the connection normally.
    assert console.output == [
        f"Connected to {uri}.",
        "< hello",
        "< wörld",
        "< ",
        "Connection closed.",
    ]


async def test_client_closes_with_1000_at_end_of_input() -> None:
    closures: list[trio_ws.ConnectionClosed] = []

    async def handler(ws: trio_ws.ServerConnection) -> None:
        try:
            await ws.recv()
        except trio_ws.ConnectionClosed as exc:
            closures.append(exc)

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            uri = await start_server(nursery, handler)
            await _cli.interactive_client(uri, lines_of(), [].append)
            nursery.cancel_scope.cancel()
    [closed] = closures
    assert isinstance(closed, trio_ws.ConnectionClosedOK)
    assert closed.rcvd == trio_ws.Close(1000, "")


async def test_client_prints_binary_messages_in_hex() -> None:
    async def handler(ws: trio_ws.ServerConnection) -> None:
        await ws.send(b"\x00\x01\xfe\xff")

    output: list[str] = []
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            uri = await start_server(nursery, handler)
            await _cli.interactive_client(uri, lines_forever(), output.append)
            nursery.cancel_scope.cancel()
    assert output[1] == "< (binary) 0001feff"


async def test_client_returns_when_the_server_closes() -> None:
    async def handler(ws: trio_ws.ServerConnection) -> None:
        await ws.send("bye")
        await ws.aclose(4000, "done")

    output: list[str] = []
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            uri = await start_server(nursery, handler)
            # The input never ends: only the server's close can stop the client.
            await _cli.interactive_client(uri, lines_forever(), output.append)
            nursery.cancel_scope.cancel()
    assert output == [
        f"Connected to {uri}.",
        "< bye",
        (
            "Connection closed: received 4000 (private use) done; "
            "then sent 4000 (private use) done."
        ),
    ]


async def test_client_stops_sending_once_the_server_has_closed() -> None:
    closed = trio.Event()

    async def handler(ws: trio_ws.ServerConnection) -> None:
        await ws.aclose()
        closed.set()

    async def lines() -> AsyncIterator[str]:
        await closed.wait()
        # The server is gone; these lines cannot be sent.
        for line in ["one\n", "two\n"]:
            yield line

    output: list[str] = []
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            uri = await start_server(nursery, handler)
            await _cli.interactive_client(uri, lines(), output.append)
            nursery.cancel_scope.cancel()
    assert output == [f"Connected to {uri}.", "Connection closed."]


async def test_stdin_lines_reads_a_file_line_by_line() -> None:
    lines = [line async for line in _cli._stdin_lines(io.StringIO("a\nb c\n\nd"))]
    assert lines == ["a\n", "b c\n", "\n", "d"]


# --- trio-ws serve: the echo server ------------------------------------------


async def test_serve_echoes_and_announces_its_address() -> None:
    output: list[str] = []
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server: trio_ws.Server = await nursery.start(
                functools.partial(_cli.run_server, "127.0.0.1", 0, output.append)
            )
            assert output == [
                f"Listening on ws://127.0.0.1:{server.port}/ (Ctrl-C to stop)."
            ]
            async with trio_ws.connect(f"ws://127.0.0.1:{server.port}") as ws:
                await ws.send("text")
                assert await ws.recv() == "text"
                await ws.send(b"\x00bytes")
                assert await ws.recv() == b"\x00bytes"
            nursery.cancel_scope.cancel()


async def test_echo_handler_returns_after_a_normal_closure() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            uri = await start_server(nursery)
            async with trio_ws.connect(uri) as ws:
                await ws.send("once")
                assert await ws.recv() == "once"
            # The handler returned: the server side closed with 1000 too.
            assert ws.close_code == 1000
            nursery.cancel_scope.cancel()


# --- main(): arguments and exit status ---------------------------------------


def fake_run_server(
    calls: list[tuple[str, int]], exc: BaseException | None = None
) -> Callable[[str, int, object], Awaitable[None]]:
    """Stands in for run_server: records its address, then returns or raises."""

    async def run_server(host: str, port: int, write: object) -> None:
        calls.append((host, port))
        if exc is not None:
            raise exc

    return run_server


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serve"], ("localhost", 8765)),
        (["serve", "--port", "9000"], ("localhost", 9000)),
        (["serve", "--host", "0.0.0.0", "--port", "0"], ("0.0.0.0", 0)),
    ],
)
def test_main_serve_options(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: tuple[str, int]
) -> None:
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(_cli, "run_server", fake_run_server(calls))
    assert _cli.main(argv) == 0
    assert calls == [expected]


def test_main_serve_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []

    async def fake_run_workers(
        handler: str, host: str, port: int, workers: int, write: object
    ) -> None:
        calls.append((handler, host, port, workers))

    monkeypatch.setattr(_cli, "run_workers", fake_run_workers)
    assert _cli.main(["serve", "--port", "0", "--workers", "3"]) == 0
    # Workers import the handler by name: the CLI's own echo.
    assert calls == [("trio_ws._cli:echo", "localhost", 0, 3)]


def test_main_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(_cli, "run_server", fake_run_server(calls, KeyboardInterrupt()))
    assert _cli.main(["serve"]) == 130


def test_main_connection_refused_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    uri = f"ws://127.0.0.1:{port}"
    assert _cli.main([uri]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"Failed to connect to {uri}: "
        f"all attempts to connect to 127.0.0.1:{port} failed.\n"
    )


def test_main_invalid_uri_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main(["http://example.com/"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "Failed to connect to http://example.com/: "
        "http://example.com/ isn't a valid URI: scheme isn't ws or wss.\n"
    )


def test_main_rejected_upgrade_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    # An HTTP server that is not a WebSocket server: 404 to everything.
    def not_found(sock: socket.socket) -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                b"Connection: close\r\n\r\n"
            )

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        thread = threading.Thread(target=not_found, args=(sock,))
        thread.start()
        try:
            assert _cli.main([f"ws://127.0.0.1:{port}/"]) == 1
        finally:
            thread.join(TIMEOUT)
    _, err = capsys.readouterr()
    assert err == (
        f"Failed to connect to ws://127.0.0.1:{port}/: "
        "server rejected WebSocket connection: HTTP 404.\n"
    )


def test_main_without_arguments_shows_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _cli.main([])
    assert info.value.code == 2
    usage = capsys.readouterr().err
    assert usage.startswith("usage: trio-ws [-h] [--host HOST] [--port PORT]")
    assert usage.splitlines()[-1] == (
        "trio-ws: error: the following arguments are required: uri"
    )


# --- python -m trio_ws ------------------------------------------------------


async def read_until(stream: trio.abc.ReceiveStream, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = await stream.receive_some()
        assert chunk, f"EOF after {data!r}"
        data += chunk
    return data


async def test_python_m_trio_ws_talks_through_stdin_and_stdout() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            uri = await start_server(nursery)
            process: trio.Process = await nursery.start(
                functools.partial(
                    trio.run_process,
                    [sys.executable, "-m", "trio_ws", uri],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    check=False,
                )
            )
            assert process.stdin is not None
            assert process.stdout is not None
            out = await read_until(process.stdout, b".\n")
            for line in [b"hello\n", b"second line\n"]:
                await process.stdin.send_all(line)
                out += await read_until(process.stdout, b"< " + line)
            await process.stdin.aclose()  # Ctrl-D
            out += await read_until(process.stdout, b"Connection closed.\n")
            assert await process.wait() == 0
            nursery.cancel_scope.cancel()
    assert out.decode().splitlines() == [
        f"Connected to {uri}.",
        "< hello",
        "< second line",
        "Connection closed.",
    ]


def test_module_entry_point_is_main() -> None:
    import trio_ws.__main__ as entry

    assert entry.main is _cli.main


def test_reference_page_shows_the_real_help(monkeypatch: pytest.MonkeyPatch) -> None:
    # docs/reference/cli.rst quotes `trio-ws --help` on an 80-column terminal.
    monkeypatch.setenv("COLUMNS", "80")
    help_text = _cli._parser().format_help()
    page = (Path(__file__).parent.parent / "docs/reference/cli.rst").read_text()
    quoted = "\n".join(f"   {line}".rstrip() for line in help_text.splitlines())
    assert quoted in page


async def test_send_lines_stops_at_a_closed_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection_pair() as pair:
        await pair.server.aclose()
        sent: list[str] = []

        async def lines() -> AsyncIterator[str]:
            for line in ["one\n", "two\n"]:
                sent.append(line)
                yield line

        # Returns instead of raising ConnectionClosed; stops at the first line.
        async with contextlib.aclosing(lines()) as iterator:
            await _cli.send_lines(pair.client, iterator)
        assert sent == ["one\n"]
