"""trio_ws.open_connection: connections whose tasks live in the caller's nursery."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import _bound
from trio_ws._bound import start_connection
from trio_ws.testing import ConnectionPair, open_connection_pair


class PairConnector:
    """A connector over memory: what open_connection does, minus TCP."""

    def __init__(self, **options: object) -> None:
        self.options = options
        self.pair: ConnectionPair | None = None
        self.exited = trio.Event()

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[trio_ws.ClientConnection]:
        try:
            async with open_connection_pair(**self.options) as pair:  # type: ignore[arg-type]
                self.pair = pair
                yield pair.client
        finally:
            self.exited.set()


async def test_connection_outlives_the_opening_code(autojump_clock: object) -> None:
    connector = PairConnector()
    async with trio.open_nursery() as nursery:

        async def open_it() -> trio_ws.ClientConnection:
            return await start_connection(nursery, connector)

        ws = await open_it()
        assert ws.state is trio_ws.State.OPEN
        await ws.send("still open")
        assert connector.pair is not None
        assert await connector.pair.server.recv() == "still open"
        await ws.aclose()
    # aclose() ended the holding task, so the nursery could finish.
    assert connector.exited.is_set()
    assert connector.pair.server.close_code == 1000
    assert trio.current_time() == 0


async def test_cancelling_the_nursery_closes_with_1001(autojump_clock: object) -> None:
    connector = PairConnector()
    async with trio.open_nursery() as nursery:
        ws = await start_connection(nursery, connector)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert connector.pair is not None
    assert connector.pair.server.close_code == 1001
    assert ws.state is trio_ws.State.CLOSED
    assert trio.current_time() == 5


async def test_peer_closing_ends_the_task(autojump_clock: object) -> None:
    connector = PairConnector()
    async with trio.open_nursery() as nursery:
        ws = await start_connection(nursery, connector)
        assert connector.pair is not None
        await connector.pair.server.aclose(1001, "bye")
    assert ws.close_code == 1001
    assert ws.close_reason == "bye"


async def test_failure_to_open_raises_as_itself(autojump_clock: object) -> None:
    def reject(
        ws: trio_ws.ServerConnection, request: trio_ws.Request
    ) -> trio_ws.Response:
        return ws.respond(403, "No.\n")

    connector = PairConnector(process_request=reject)
    async with trio.open_nursery() as nursery:
        with pytest.raises(trio_ws.InvalidStatus) as info:
            await start_connection(nursery, connector)
        assert info.value.response.status_code == 403
        # Nothing was left running in the nursery.
        assert nursery.child_tasks == frozenset()


async def test_cancelled_before(autojump_clock: object) -> None:
    connector = PairConnector()
    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as scope:
            scope.cancel()
            await start_connection(nursery, connector)
        assert scope.cancelled_caught
        assert connector.pair is None
        assert nursery.child_tasks == frozenset()


async def test_cancelled_while_opening(autojump_clock: object) -> None:
    async def stall(ws: trio_ws.ServerConnection, request: trio_ws.Request) -> None:
        await trio.sleep_forever()

    connector = PairConnector(process_request=stall)
    async with trio.open_nursery() as nursery:
        with trio.move_on_after(2) as scope:
            await start_connection(nursery, connector)
        assert scope.cancelled_caught
        assert trio.current_time() == 2
        assert connector.exited.is_set()
        assert nursery.child_tasks == frozenset()


async def test_callers_cancel_scope_does_not_reach_it(autojump_clock: object) -> None:
    connector = PairConnector()
    async with trio.open_nursery() as nursery:
        with trio.move_on_after(1):
            ws = await start_connection(nursery, connector)
            await trio.sleep_forever()
        assert ws.state is trio_ws.State.OPEN
        await ws.aclose()


async def echo(ws: trio_ws.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def test_open_connection_over_tcp() -> None:
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(trio_ws.serve, echo, 0, host="127.0.0.1")
            )
            async with trio.open_nursery() as connections:
                ws = await trio_ws.open_connection(
                    connections, f"ws://127.0.0.1:{server.port}/", ping_interval=None
                )
                await ws.send("ping")
                assert await ws.recv() == "ping"
                connections.cancel_scope.cancel()
            assert ws.close_code == 1001
            # Nobody listens on the port any more: trio's OSError comes out.
            port = server.port
            await server.aclose()
            async with trio.open_nursery() as connections:
                with pytest.raises(OSError, match="all attempts to connect"):
                    await trio_ws.open_connection(
                        connections, f"ws://127.0.0.1:{port}/"
                    )


def keyword_options(f: object) -> dict[str, inspect.Parameter]:
    """The keyword-only parameters of ``f``, by name."""
    parameters = inspect.signature(f).parameters.values()  # type: ignore[arg-type]
    return {p.name: p for p in parameters if p.kind is p.KEYWORD_ONLY}


@pytest.mark.parametrize("function", [trio_ws.open_connection, trio_ws.reconnect])
def test_takes_every_option_of_connect(function: object) -> None:
    # Options added to connect() must be added here too, with its defaults.
    def options(f: object) -> dict[str, object]:
        return {name: p.default for name, p in keyword_options(f).items()}

    expected = options(trio_ws.connect)
    actual = options(function)
    assert {name: actual.get(name) for name in expected} == expected


@pytest.mark.parametrize("function", [trio_ws.open_connection, trio_ws.reconnect])
def test_documents_every_option_as_connect(function: object) -> None:
    # The signatures are the reference docs: each option carries connect()'s
    # annotation and has an Args entry (autodoc types documented ones only).
    def annotations(f: object) -> dict[str, object]:
        return {name: p.annotation for name, p in keyword_options(f).items()}

    expected = annotations(trio_ws.connect)
    actual = annotations(function)
    assert {name: actual.get(name) for name in expected} == expected
    doc = inspect.getdoc(function)
    assert doc is not None
    assert [name for name in expected if f"\n    {name}: " not in doc] == []


@pytest.mark.parametrize("function", [trio_ws.open_connection, trio_ws.reconnect])
async def test_passes_every_option_to_connect(
    function: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {name: object() for name in keyword_options(trio_ws.connect)}
    calls: list[tuple[str, dict[str, object]]] = []

    @contextlib.asynccontextmanager
    async def connect(
        uri: str, **options: object
    ) -> AsyncIterator[trio_ws.ClientConnection]:
        calls.append((uri, options))
        raise ValueError("not connecting")
        yield  # pragma: no cover

    monkeypatch.setattr(_bound, "connect", connect)
    async with trio.open_nursery() as nursery:
        with pytest.raises(ValueError, match="not connecting"):
            if function is trio_ws.open_connection:
                await trio_ws.open_connection(nursery, "ws://a/", **values)  # type: ignore[arg-type]
            else:
                async with trio_ws.reconnect("ws://a/", **values) as connections:  # type: ignore[arg-type]
                    await connections.__anext__()
    assert calls == [("ws://a/", values)]
