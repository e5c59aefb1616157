"""Several worker processes serving one port: :func:`serve_workers`.

Theory of operation
-------------------

A supervisor (the process calling :func:`serve_workers`) binds the port once,
with ``SO_REUSEPORT``, without listening: that resolves ``port=0``, fails early
when the port is taken, and keeps the port reserved while workers come and go.
It then starts ``workers`` Python processes. Each binds its own listening
socket to the same address with ``SO_REUSEPORT`` and runs :func:`serve` on it;
the kernel spreads incoming connections across the listening sockets, so no
process hands connections to another.

A worker is told what to run by a pickle on its command line (the handler and
``serve`` options travel by reference, the way :mod:`multiprocessing` sends
them, so they must be importable) and the supervisor's :data:`sys.path`, so it
imports what the supervisor imports. It talks back through a pipe: ``ready``
once it accepts, ``stopping`` when it begins to shut down.

A worker shuts down gracefully on SIGTERM or SIGINT, or when its standard
input (a pipe from the supervisor) reaches end of file because the supervisor
is gone: :meth:`Server.aclose` stops accepting, sends 1001 (going away) to
every client and gives handlers ``close_timeout`` seconds. Signals keep being
absorbed until the worker exits, so a second Ctrl-C does not cut that short.

The supervisor starts a replacement as soon as a worker says ``stopping`` (or
dies), so stopping workers one at a time with SIGTERM is a rolling restart.
Cancelling the supervisor sends SIGTERM to every worker, waits up to
``close_timeout`` plus a grace period, then kills what is left.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import math
import os
import pickle
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Final, NamedTuple, final

import trio

if sys.version_info < (3, 11):  # pragma: no cover - trio installs the backport
    from exceptiongroup import BaseExceptionGroup

from ._server import Handler, Server, serve

__all__ = ["WorkerPool", "serve_workers"]

logger = logging.getLogger("trio_ws.workers")

#: Seconds a stopping worker gets beyond ``close_timeout`` to exit.
EXIT_GRACE: Final = 5.0
#: Seconds between attempts to replace a worker that failed to start.
RESPAWN_DELAY: Final = 1.0

# The worker's entry point. It sets sys.path before importing trio_ws, which
# may only be importable through the supervisor's sys.path.
_BOOTSTRAP: Final = (
    "import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
    "from trio_ws._workers import _worker_main; _worker_main()"
)


class _Spec(NamedTuple):
    """What a worker runs; pickled onto its command line."""

    handler: Handler | str
    addresses: list[tuple[int, tuple[object, ...]]]
    close_timeout: float | None
    options: dict[str, object]


@final
class WorkerPool:
    """Worker processes serving one port, reported by :func:`serve_workers`.

    Attributes:
        port: The port the workers listen on (useful after ``port=0``).
        close_timeout: Seconds a stopping worker gives its connections.
    """

    def __init__(self, port: int, close_timeout: float | None) -> None:
        self.port = port
        self.close_timeout = close_timeout
        self._processes: dict[int, trio.Process] = {}
        self._scope = trio.CancelScope()
        self._stopped = trio.Event()

    def __repr__(self) -> str:
        return f"<WorkerPool port={self.port} pids={self.pids}>"

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers that accept connections, in start order."""
        return list(self._processes)

    async def aclose(self) -> None:
        """Stop every worker and return once :func:`serve_workers` has returned.

        Each worker gets SIGTERM, closes its connections with 1001 (going
        away) within ``close_timeout``, and is killed if it has not exited
        5 seconds (``EXIT_GRACE``) after that.

        Cancellation:
            Cancelled, it stops waiting; the workers are still stopped by
            :func:`serve_workers`, which shields that step.
        """
        self._scope.cancel()
        await self._stopped.wait()


async def serve_workers(
    handler: Handler | str,
    port: int,
    *,
    workers: int,
    host: str | None = None,
    close_timeout: float | None = 10,
    task_status: trio.TaskStatus[WorkerPool] = trio.TASK_STATUS_IGNORED,
    **options: object,
) -> None:
    """Run ``workers`` processes that each :func:`serve` ``handler`` on ``port``.

    Start it like :func:`serve`: ``pool = await nursery.start(functools.partial(
    serve_workers, "myapp:handler", 8765, workers=4))``. The
    :class:`WorkerPool` is reported once every worker accepts connections.
    Every worker listens on the same address with ``SO_REUSEPORT`` and the
    kernel balances new connections across them. A worker that exits, or that
    is told to stop with SIGTERM, is replaced by a new one; stopping workers
    one at a time is a rolling restart. Runs until cancelled or
    :meth:`WorkerPool.aclose`.

    Args:
        handler: The connection handler, run in the workers: a function that
            can be imported by its module and name (not a lambda, a local
            function or one defined in ``__main__``), or a ``"module:name"``
            string.
        port: The TCP port; ``0`` picks a free one (:attr:`WorkerPool.port`).
        workers: How many worker processes to run.
        host: The interface to listen on; ``None`` listens on all.
        close_timeout: Passed to :func:`serve`; a stopping worker gives its
            connections that long to close and is killed
            5 seconds (``EXIT_GRACE``) later.
        task_status: Used by :meth:`trio.Nursery.start` to report the
            :class:`WorkerPool`.
        **options: Other :func:`serve` options (``ping_interval``,
            ``trusted_proxies``, ``process_request``...). Values travel to the
            workers by pickle: functions must be importable; ``ssl`` and
            ``listeners`` are not supported.

    Raises:
        TypeError: ``handler`` or an option cannot be sent to a worker.
        ValueError: ``workers`` is less than 1.
        NotImplementedError: The platform has no ``SO_REUSEPORT``.
        RuntimeError: A worker exited before it accepted connections (its
            traceback is on the workers' standard error).
        OSError: The port cannot be bound.

    Cancellation:
        Cancelling the task running :func:`serve_workers` stops the workers
        as :meth:`WorkerPool.aclose` does, in a shielded scope that lasts at
        most ``close_timeout`` plus 5 seconds (``EXIT_GRACE``).
    """
    if workers < 1:
        msg = f"workers must be at least 1, not {workers}"
        raise ValueError(msg)
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - Linux has it
        msg = "serve_workers() needs SO_REUSEPORT, which this platform lacks"
        raise NotImplementedError(msg)
    for name in ("ssl", "listeners"):
        if name in options:
            msg = f"serve_workers() does not support {name}="
            raise TypeError(msg)
    placeholders, addresses = _reserve(port, host)
    try:
        spec = _Spec(handler, addresses, close_timeout, options)
        command = _command(spec)
        pool = WorkerPool(int(placeholders[0].getsockname()[1]), close_timeout)
        grace = math.inf if close_timeout is None else close_timeout + EXIT_GRACE
        try:
            with _one_exception(), pool._scope:
                async with trio.open_nursery() as nursery:
                    await _start_all(pool, nursery, workers, command, grace)
                    logger.info("%d workers listening on port %d", workers, pool.port)
                    task_status.started(pool)
        finally:
            pool._processes.clear()
            pool._stopped.set()
    finally:
        for sock in placeholders:
            sock.close()


@contextlib.contextmanager
def _one_exception() -> Iterator[None]:
    """Let one exception out of the supervisor's nested nurseries.

    The supervisor's nurseries nest (pool, worker slots, ``run_process``), so
    one cancellation arrives as a tree of :exc:`trio.Cancelled`: it leaves as
    one of them, and gives way to a single real error, which leaves as itself.
    Several real errors at once leave as their group.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        cancelled, errors = group.split(trio.Cancelled)
        leaves = list(_leaves(errors if errors is not None else cancelled))
        if errors is not None and len(leaves) > 1:
            raise  # pragma: no cover - two supervisor bugs at once
        exc = leaves[0]
        context = exc.__context__
        try:
            raise exc
        finally:
            exc.__context__ = context
            del exc, group, context, cancelled, errors, leaves


def _leaves(exc: BaseException | None) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for child in exc.exceptions:
            yield from _leaves(child)
    elif exc is not None:
        yield exc


def _reserve(
    port: int, host: str | None
) -> tuple[list[socket.socket], list[tuple[int, tuple[object, ...]]]]:
    """Bind (without listening) every address of ``host``; the bound addresses."""
    infos = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    addresses: list[tuple[int, tuple[object, ...]]] = []
    try:
        for family, type_, proto, _, sockaddr in infos:
            try:
                sock = socket.socket(family, type_, proto)
            except OSError:  # pragma: no cover - e.g. IPv6 disabled
                continue
            sockets.append(sock)
            _set_reuse(sock)
            if addresses:
                # port=0: every address on the port the first one got.
                sockaddr = (sockaddr[0], addresses[0][1][1], *sockaddr[2:])
            sock.bind(sockaddr)
            addresses.append((family, tuple(sock.getsockname())))
        if not sockets:  # pragma: no cover - getaddrinfo returns one at least
            msg = f"no address to listen on for host {host!r}"
            raise OSError(msg)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets, addresses


def _set_reuse(sock: socket.socket | trio.socket.SocketType) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if sock.family == socket.AF_INET6:
        # The IPv4 wildcard has its own socket.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)


def _command(spec: _Spec) -> list[str]:
    if isinstance(spec.handler, str):
        _split_reference(spec.handler)
    elif getattr(spec.handler, "__module__", None) == "__main__":
        msg = "the handler must be importable: move it out of __main__ into a module"
        raise TypeError(msg)
    try:
        payload = pickle.dumps(spec)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        msg = f"cannot send the handler or options to a worker: {exc}"
        raise TypeError(msg) from exc
    return [
        sys.executable,
        "-c",
        _BOOTSTRAP,
        json.dumps(sys.path),
        base64.b64encode(payload).decode("ascii"),
    ]


def _split_reference(reference: str) -> tuple[str, str]:
    module, sep, name = reference.partition(":")
    if not (module and sep and name):
        msg = f"a handler reference looks like 'module:name', not {reference!r}"
        raise TypeError(msg)
    return module, name


async def _start_all(
    pool: WorkerPool,
    nursery: trio.Nursery,
    workers: int,
    command: list[str],
    grace: float,
) -> None:
    """Start the workers side by side; return once they all accept."""
    failures: list[RuntimeError] = []

    async def start_one() -> None:
        try:
            await nursery.start(_keep_one_running, pool, command, grace)
        except RuntimeError as exc:
            # Usually every worker fails alike: report it once, not as a group.
            failures.append(exc)

    async with trio.open_nursery() as starting:
        for _ in range(workers):
            starting.start_soon(start_one)
    if failures:
        raise failures[0]


async def _keep_one_running(
    pool: WorkerPool,
    command: list[str],
    grace: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep one worker accepting: start it, and replace it when it stops."""
    failed = False
    async with trio.open_nursery() as nursery:
        first = True
        while True:
            started = await _start_worker(pool, nursery, command, grace)
            if started is None:
                if first:
                    # Raised outside the nursery (now empty), so that it
                    # is not wrapped in an exception group.
                    failed = True
                    break
                logger.error("worker failed to start; retrying")
                await trio.sleep(RESPAWN_DELAY)
                continue
            pid, news = started
            if first:
                first = False
                task_status.started()
            # Wait for "stopping" or end of file (the worker died).
            try:
                await _read_line(news)
            finally:
                news.close()
            # It drains its connections beside the replacement, for a while.
            nursery.start_soon(_reap, pool._processes.pop(pid), grace)
            logger.info("worker %d stopped; starting a replacement", pid)
    if failed:
        msg = "a worker exited before accepting connections"
        raise RuntimeError(msg)


async def _start_worker(
    pool: WorkerPool, nursery: trio.Nursery, command: list[str], grace: float
) -> tuple[int, trio.lowlevel.FdStream] | None:
    """Start a worker; once it accepts, its pid and the pipe it talks on.

    ``None`` if it exited before accepting.
    """
    read_fd, write_fd = os.pipe()
    news = trio.lowlevel.FdStream(read_fd)
    try:
        try:
            process: trio.Process = await nursery.start(
                functools.partial(
                    trio.run_process,
                    [*command, str(write_fd)],
                    stdin=subprocess.PIPE,
                    check=False,
                    pass_fds=(write_fd,),
                    deliver_cancel=functools.partial(_stop_process, grace=grace),
                )
            )
        finally:
            # Only the worker writes: its exit is then our end of file.
            os.close(write_fd)
        ready = await _read_line(news) == b"ready"
    except BaseException:
        news.close()
        raise
    if not ready:
        news.close()
        return None
    pool._processes[process.pid] = process
    logger.info("worker %d accepting connections", process.pid)
    return process.pid, news


async def _read_line(stream: trio.lowlevel.FdStream) -> bytes:
    """One line from a worker (without the newline), or ``b""`` at its exit."""
    line = b""
    while not line.endswith(b"\n"):
        data = await stream.receive_some(64)
        if not data:
            return b""
        line += data
    return line[:-1]


async def _stop_process(process: trio.Process, *, grace: float) -> None:
    """``run_process``'s ``deliver_cancel``: SIGTERM, and SIGKILL after ``grace``."""
    process.terminate()
    await _reap(process, grace)


async def _reap(process: trio.Process, grace: float) -> None:
    """Kill a stopping worker that has not exited ``grace`` seconds later."""
    with trio.move_on_after(grace):
        await process.wait()
        return
    logger.warning("worker %d did not stop in time; killing it", process.pid)
    process.kill()


# --- In the worker ---------------------------------------------------------


def _worker_main() -> None:
    # The supervisor wrote this pickle: it is as trusted as our own code.
    spec: _Spec = pickle.loads(base64.b64decode(sys.argv[2]))
    news = int(sys.argv[3])
    trio.run(_run_worker, spec, news)


def _resolve(handler: Handler | str) -> Handler:
    if not isinstance(handler, str):
        return handler
    module, name = _split_reference(handler)
    target: object = __import__(module, fromlist=[name])
    for part in name.split("."):
        target = getattr(target, part)
    return target  # type: ignore[return-value]


async def _run_worker(spec: _Spec, news_fd: int) -> None:
    """Serve until a signal or the supervisor's exit, then close gracefully."""
    handler = _resolve(spec.handler)
    listeners = []
    for family, address in spec.addresses:
        sock = trio.socket.socket(family, socket.SOCK_STREAM)
        _set_reuse(sock)
        await sock.bind(address)
        sock.listen(socket.SOMAXCONN)
        listeners.append(trio.SocketListener(sock))
    news = trio.lowlevel.FdStream(news_fd)
    stop = trio.Event()
    # Open before announcing "ready", so that no early SIGTERM is missed; held
    # until the worker exits, so that a second signal cannot cut closing short.
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(
                functools.partial(
                    serve,
                    handler,
                    listeners=listeners,
                    close_timeout=spec.close_timeout,
                    **spec.options,  # type: ignore[arg-type]
                )
            )
            nursery.start_soon(_stop_on_signal, signals, stop)
            nursery.start_soon(_stop_on_eof, stop)
            await _tell(news, b"ready\n")
            await stop.wait()
            await _tell(news, b"stopping\n")
            await server.aclose()
            nursery.cancel_scope.cancel()
    await news.aclose()


async def _tell(news: trio.lowlevel.FdStream, line: bytes) -> None:
    # A supervisor that is gone hears nothing; its end of file stops us.
    with contextlib.suppress(trio.BrokenResourceError):
        await news.send_all(line)


async def _stop_on_signal(signals: AsyncIterator[int], stop: trio.Event) -> None:
    async for _ in signals:
        stop.set()


async def _stop_on_eof(stop: trio.Event) -> None:
    # Standard input is a pipe from the supervisor: end of file means it died.
    stdin = trio.lowlevel.FdStream(os.dup(0))
    async with stdin:
        while await stdin.receive_some(4096):  # pragma: no cover - nothing is sent
            pass
    stop.set()


async def run_workers(
    handler: str,
    host: str | None,
    port: int,
    workers: int,
    write: Callable[[str], None],
    *,
    task_status: trio.TaskStatus[WorkerPool] = trio.TASK_STATUS_IGNORED,
) -> None:
    """``trio-ws serve --workers N``: :func:`serve_workers` until SIGTERM.

    Announces where it listens with ``write``. SIGTERM stops the workers
    gracefully, as Ctrl-C (SIGINT) does.
    """
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            pool: WorkerPool = await nursery.start(
                functools.partial(
                    serve_workers, handler, port, host=host, workers=workers
                )
            )
            write(
                f"Listening on ws://{host}:{pool.port}/ with {workers} workers"
                " (Ctrl-C to stop)."
            )
            task_status.started(pool)
            async for _ in signals:
                nursery.cancel_scope.cancel()
