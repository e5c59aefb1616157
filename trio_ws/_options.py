"""What ``connect`` and ``serve`` need to build connections: options and factories.

``create_connection`` accepts a :class:`~trio_ws.Connection` subclass or any
callable with the same signature (:class:`ConnectionFactory`);
:class:`ConnectionOptions` carries the options every new connection gets.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Protocol as TypingProtocol, TypeAlias, TypeVar

if TYPE_CHECKING:
    import trio

    from ._connection import Connection

__all__ = ["ConnectionFactory", "ConnectionOptions", "LoggerLike"]

LoggerLike: TypeAlias = "logging.Logger | logging.LoggerAdapter[logging.Logger]"

ConnectionT = TypeVar("ConnectionT", bound="Connection")
ConnectionT_co = TypeVar("ConnectionT_co", bound="Connection", covariant=True)


class ConnectionFactory(TypingProtocol[ConnectionT_co]):
    """What ``create_connection`` accepts: a :class:`Connection` subclass or a
    callable with the same signature, such as
    ``functools.partial(MyConnection, extra_argument=42)``."""

    def __call__(
        self,
        stream: trio.abc.Stream,
        /,
        *,
        max_size: int | None,
        max_queue: int | None,
        ping_interval: float | None,
        ping_timeout: float | None,
        close_timeout: float | None,
        logger: LoggerLike | None,
    ) -> ConnectionT_co: ...


@dataclasses.dataclass(frozen=True)
class ConnectionOptions:
    """The options ``connect`` and ``serve`` pass to every new connection."""

    max_size: int | None
    max_queue: int | None
    ping_interval: float | None
    ping_timeout: float | None
    close_timeout: float | None
    logger: LoggerLike | None

    def create(
        self, factory: ConnectionFactory[ConnectionT], stream: trio.abc.Stream
    ) -> ConnectionT:
        """Build a connection on ``stream`` with ``factory`` and these options."""
        return factory(
            stream,
            max_size=self.max_size,
            max_queue=self.max_queue,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            close_timeout=self.close_timeout,
            logger=self.logger,
        )
