"""The common shape of a library adapter: a server and a client, both on trio."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import trio

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

Message = str | bytes


class Conn(Protocol):
    """What a scenario needs from a connection, on either side."""

    async def send(self, message: Message, /) -> None: ...

    async def recv(self) -> Message: ...


#: A server-side scenario handler: the connection and the request path.
Handler = Callable[[Conn, str], Awaitable[None]]


class Adapter(abc.ABC):
    """One library under test: a server and a client with the same settings."""

    #: Name used on the command line and in the tables.
    name: str
    #: Exceptions that mean "the peer closed the connection".
    closed: tuple[type[BaseException], ...]

    @abc.abstractmethod
    def version(self) -> str:
        """The version of the library under test, for the report."""

    @abc.abstractmethod
    async def serve(
        self,
        handler: Handler,
        host: str,
        port: int,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve ``handler`` on ``host:port``; report the bound port; run forever."""

    @abc.abstractmethod
    def connect(self, uri: str) -> AbstractAsyncContextManager[Conn]:
        """Open a client connection; leaving the block closes it."""
