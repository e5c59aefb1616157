"""``python -m trio_ws`` / ``trio-ws``: an interactive client and an echo server.

* ``trio-ws URI``: lines typed are sent as text messages, messages received
  are printed as ``< message``; end of input (Ctrl-D) closes the connection.
* ``trio-ws serve [--host H] [--port P] [--workers N]``: an echo server, to
  try clients out, optionally in N worker processes.

Connection failures print a message on stderr and exit with status 1;
Ctrl-C exits with 130. ``docs/reference/cli.rst`` documents the command.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, TextIO

import trio

from ._client import connect
from ._exceptions import ConnectionClosed, InvalidHandshake
from ._server import Server, ServerConnection, serve
from ._workers import run_workers

if TYPE_CHECKING:
    from ._connection import Connection

__all__ = ["main"]


def _format(message: str | bytes) -> str:
    if isinstance(message, str):
        return f"< {message}"
    return f"< (binary) {message.hex()}"


async def interactive_client(
    uri: str,
    lines: AsyncIterable[str],
    write: Callable[[str], None],
    **options: object,
) -> None:
    """Send each line of ``lines`` and ``write`` each message received.

    Returns when ``lines`` ends (after closing the connection) or when the
    server closes the connection.
    """
    async with connect(uri, **options) as ws:  # type: ignore[arg-type]
        write(f"Connected to {uri}.")
        async with trio.open_nursery() as nursery:

            async def print_messages() -> None:
                try:
                    async for message in ws:
                        write(_format(message))
                except ConnectionClosed as exc:
                    write(f"Connection closed: {exc}.")
                else:
                    write("Connection closed.")
                # The server is gone: stop waiting for input.
                nursery.cancel_scope.cancel()

            nursery.start_soon(print_messages)
            await send_lines(ws, lines)
            await ws.aclose()


async def send_lines(ws: Connection, lines: AsyncIterable[str]) -> None:
    """Send each line as a text message, until ``lines`` or the connection ends."""
    async for line in lines:
        try:
            await ws.send(line.rstrip("\r\n"))
        except ConnectionClosed:
            return


async def echo(ws: ServerConnection) -> None:
    """Send every message back to where it came from."""
    async for message in ws:
        await ws.send(message)


class _Lines:
    """The lines of a text file, read in a thread (a terminal read blocks).

    An iterator rather than an async generator: the client may stop reading
    early (the server closed), and an abandoned async generator would need
    finalising. The file is left open: it is the process's stdin.
    """

    def __init__(self, file: TextIO) -> None:
        self._file = trio.wrap_file(file)

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        line = await self._file.readline()
        if not line:
            raise StopAsyncIteration
        return line


def _stdin_lines(stdin: TextIO) -> AsyncIterator[str]:
    return _Lines(stdin)


async def run_server(
    host: str,
    port: int,
    write: Callable[[str], None],
    *,
    ping_interval: float | None = 20,
    task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run an echo server until cancelled, announcing where it listens.

    Reports the :class:`~trio_ws.Server` through ``task_status`` once it
    accepts connections, for ``nursery.start(run_server, ...)``.
    """
    async with trio.open_nursery() as nursery:
        server: Server = await nursery.start(
            functools.partial(serve, echo, port, host=host, ping_interval=ping_interval)
        )
        write(f"Listening on ws://{host}:{server.port}/ (Ctrl-C to stop).")
        task_status.started(server)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-ws", description="Talk to a WebSocket server, or run an echo server."
    )
    parser.add_argument("uri", help="a ws:// or wss:// URI, or 'serve'")
    parser.add_argument(
        "--host", default="localhost", help="serve: interface (localhost)"
    )
    parser.add_argument("--port", type=int, default=8765, help="serve: port (8765)")
    parser.add_argument(
        "--workers",
        type=int,
        help="serve: run N worker processes sharing the port (SO_REUSEPORT)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)

    def write(text: str) -> None:
        print(text, flush=True)

    try:
        if args.uri == "serve" and args.workers is not None:
            trio.run(
                run_workers,
                f"{__name__}:echo",
                args.host,
                args.port,
                args.workers,
                write,
            )
        elif args.uri == "serve":
            trio.run(run_server, args.host, args.port, write)
        else:
            trio.run(interactive_client, args.uri, _stdin_lines(sys.stdin), write)
    except KeyboardInterrupt:
        return 130
    except (InvalidHandshake, OSError, TimeoutError) as exc:
        print(f"Failed to connect to {args.uri}: {exc}.", file=sys.stderr)
        return 1
    return 0
