"""trio_ws.reconnect: reconnecting with exponential backoff and jitter."""

from __future__ import annotations

import contextlib
import functools
import logging
import ssl
from collections.abc import AsyncIterator, Callable

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import _reconnect
from trio_ws._reconnect import open_connections
from trio_ws.testing import ConnectionPair, open_connection_pair


class ScriptedConnector:
    """Opens connections over memory; each attempt follows the script."""

    def __init__(self, *outcomes: str) -> None:
        self.outcomes = list(outcomes)
        self.attempts: list[float] = []
        self.pairs: list[ConnectionPair] = []

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[trio_ws.ClientConnection]:
        self.attempts.append(trio.current_time())
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if outcome == "refused":
            raise ConnectionRefusedError(111, "Connection refused")
        status = {"503": 503, "404": 404}.get(outcome)

        def answer(
            ws: trio_ws.ServerConnection, request: trio_ws.Request
        ) -> trio_ws.Response | None:
            return None if status is None else ws.respond(status, "No.\n")

        async with open_connection_pair(process_request=answer) as pair:
            self.pairs.append(pair)
            yield pair.client


def connections(
    connector: ScriptedConnector, **options: object
) -> contextlib.AbstractAsyncContextManager[AsyncIterator[trio_ws.ClientConnection]]:
    settings: dict[str, object] = {
        "min_delay": 1.0,
        "max_delay": 60.0,
        "factor": 2.0,
        "jitter": 0.0,
        "retry": trio_ws.retryable,
        "logger": logging.getLogger("trio_ws.client"),
    }
    settings.update(options)
    return open_connections(connector, **settings)  # type: ignore[arg-type]


async def test_backoff_doubles_until_a_connection_opens(autojump_clock: object) -> None:
    connector = ScriptedConnector("refused", "refused", "503", "ok")
    async with connections(connector) as iterator:
        ws = await anext(iterator)
        assert ws is connector.pairs[-1].client
        assert ws.state is trio_ws.State.OPEN
    assert connector.attempts == [0, 1, 3, 7]


async def test_delay_is_capped(autojump_clock: object) -> None:
    connector = ScriptedConnector(*["refused"] * 6)
    async with connections(connector, max_delay=5) as iterator:
        await anext(iterator)
    assert connector.attempts == [0, 1, 3, 7, 12, 17, 22]


async def test_reconnects_after_a_closed_connection(autojump_clock: object) -> None:
    connector = ScriptedConnector("refused", "ok", "ok")
    seen = []
    async with connections(connector) as iterator:
        async for ws in iterator:
            seen.append(trio.current_time())
            if len(seen) == 3:
                break
            await trio.sleep(10)
            # The server goes away; the backoff was reset by the opening.
            await connector.pairs[-1].server.aclose(1012)
            with pytest.raises(trio_ws.ConnectionClosedError):
                await ws.recv()
    assert seen == [1, 12, 23]


async def test_next_iteration_closes_an_open_connection(autojump_clock: object) -> None:
    connector = ScriptedConnector()
    async with connections(connector) as iterator:
        first = await anext(iterator)
        await anext(iterator)
        assert first.state is trio_ws.State.CLOSED
        assert connector.pairs[0].server.close_code == 1000


@pytest.mark.parametrize(
    ("value", "expected"), [(0.0, [0, 4, 12]), (1.0, [0, 2, 6]), (0.5, [0, 3, 9])]
)
async def test_jitter(
    autojump_clock: object,
    monkeypatch: pytest.MonkeyPatch,
    value: float,
    expected: list[float],
) -> None:
    monkeypatch.setattr(_reconnect._random, "random", lambda: value)
    connector = ScriptedConnector("refused", "refused")
    async with connections(connector, min_delay=4, jitter=0.5) as iterator:
        await anext(iterator)
    assert connector.attempts == expected


async def test_jitter_stays_in_bounds(autojump_clock: object) -> None:
    connector = ScriptedConnector(*["refused"] * 20)
    async with connections(connector, min_delay=1, max_delay=1, jitter=0.3) as iterator:
        await anext(iterator)
    gaps = [
        b - a for a, b in zip(connector.attempts, connector.attempts[1:], strict=False)
    ]
    assert all(0.7 <= gap <= 1.0 for gap in gaps)
    assert len(set(gaps)) > 1  # random indeed


async def test_unretryable_failure_is_raised(autojump_clock: object) -> None:
    connector = ScriptedConnector("refused", "404")
    async with connections(connector) as iterator:
        with pytest.raises(trio_ws.InvalidStatus) as info:
            await anext(iterator)
        assert info.value.response.status_code == 404
    assert connector.attempts == [0, 1]


async def test_custom_retry_policy(autojump_clock: object) -> None:
    connector = ScriptedConnector("404", "ok")
    async with connections(connector, retry=lambda exc: True) as iterator:
        await anext(iterator)
    assert connector.attempts == [0, 1]


@pytest.mark.parametrize(
    ("exit_how", "code"), [("normal", 1000), ("raise", 1011), ("cancel", 1001)]
)
async def test_leaving_the_block_closes_the_connection(
    autojump_clock: object, exit_how: str, code: int
) -> None:
    connector = ScriptedConnector()
    with trio.move_on_after(5), contextlib.suppress(KeyError):
        async with connections(connector) as iterator:
            await anext(iterator)
            if exit_how == "raise":
                raise KeyError("boom")
            if exit_how == "cancel":
                await trio.sleep_forever()
    assert connector.pairs[0].server.close_code == code


async def test_cancelled_before(autojump_clock: object) -> None:
    connector = ScriptedConnector()
    async with connections(connector) as iterator:
        with trio.CancelScope() as scope:
            scope.cancel()
            await anext(iterator)
        assert scope.cancelled_caught
        assert connector.attempts == []


async def test_cancelled_during_backoff_keeps_the_backoff(
    autojump_clock: object,
) -> None:
    connector = ScriptedConnector("refused", "refused", "refused")
    async with connections(connector) as iterator:
        with trio.move_on_after(2):  # attempts at 0, 1; waiting for 3
            await anext(iterator)
        assert connector.attempts == [0, 1]
        # The backoff goes on where it was: 2 s (two failures), not 1 s;
        # then 4 s after the third failure.
        ws = await anext(iterator)
        assert connector.attempts == [0, 1, 4, 8]
        assert ws.state is trio_ws.State.OPEN


async def test_cancelled_while_opening(autojump_clock: object) -> None:
    async def stall(ws: trio_ws.ServerConnection, request: trio_ws.Request) -> None:
        await trio.sleep_forever()

    @contextlib.asynccontextmanager
    async def connector() -> AsyncIterator[trio_ws.ClientConnection]:
        async with open_connection_pair(process_request=stall) as pair:
            yield pair.client  # pragma: no cover - never opens

    async with open_connections(
        connector,
        min_delay=1,
        max_delay=1,
        factor=1,
        jitter=0,
        retry=trio_ws.retryable,
        logger=logging.getLogger("test"),
    ) as iterator:
        with trio.move_on_after(3) as scope:
            await anext(iterator)
        assert scope.cancelled_caught
        assert trio.current_time() == 3


async def test_attempts_are_logged(
    autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trio_ws.client")
    connector = ScriptedConnector("refused")
    async with connections(connector) as iterator:
        await anext(iterator)
    messages = [r.getMessage() for r in caplog.records if r.name == "trio_ws.client"]
    assert messages[:2] == [
        "connection attempt failed: ConnectionRefusedError(111, 'Connection refused')",
        "reconnecting in 1 seconds",
    ]


def invalid_status(status: int) -> trio_ws.InvalidStatus:
    return trio_ws.InvalidStatus(trio_ws.Response(status, "", trio_ws.Headers(), b""))


def lost_during_handshake() -> trio_ws.InvalidHandshake:
    exc = trio_ws.InvalidHandshake("connection lost during the opening handshake")
    exc.__cause__ = trio.BrokenResourceError()
    return exc


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: ConnectionRefusedError(), True),
        (lambda: TimeoutError("timed out"), True),
        (lambda: ssl.SSLError("bad record"), True),
        (lambda: ssl.SSLCertVerificationError("bad cert"), False),
        (lambda: invalid_status(503), True),
        (lambda: invalid_status(429), True),
        (lambda: invalid_status(500), True),
        (lambda: invalid_status(404), False),
        (lambda: invalid_status(501), False),
        (lost_during_handshake, True),
        (lambda: trio_ws.InvalidHandshake("malformed response"), False),
        (lambda: trio_ws.InvalidURI("x", "not a ws URI"), False),
        (lambda: ValueError("bad option"), False),
    ],
)
def test_retryable(make: Callable[[], Exception], expected: bool) -> None:
    assert trio_ws.retryable(make()) is expected


@pytest.mark.parametrize(
    "options",
    [
        {"min_delay": -1},
        {"min_delay": 2, "max_delay": 1},
        {"factor": 0.5},
        {"jitter": 1.5},
        {"jitter": -0.1},
    ],
)
async def test_arguments_are_checked(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="reconnect\\(\\) needs"):
        async with trio_ws.reconnect("ws://localhost/", **options):
            pytest.fail("must not start")  # pragma: no cover


async def test_reconnect_over_tcp() -> None:
    attempts = 0

    def unavailable_once(
        ws: trio_ws.ServerConnection, request: trio_ws.Request
    ) -> trio_ws.Response | None:
        nonlocal attempts
        attempts += 1
        return ws.respond(503, "Starting.\n") if attempts == 1 else None

    async def hello(ws: trio_ws.ServerConnection) -> None:
        await ws.send(f"attempt {attempts}")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(
                    trio_ws.serve,
                    hello,
                    0,
                    host="127.0.0.1",
                    process_request=unavailable_once,
                )
            )
            uri = f"ws://127.0.0.1:{server.port}/"
            received = []
            async with trio_ws.reconnect(uri, min_delay=0.01) as connections:
                async for ws in connections:
                    received.append(await ws.recv())
                    if len(received) == 2:
                        break
            assert received == ["attempt 2", "attempt 3"]
            await server.aclose()
