"""Cancellation of every public async operation: cancelled before and during.

Inventory (operation -> its tests; "here" = this file). "Before": the
enclosing scope is already cancelled when the call starts. "During": the
call is cancelled while it waits.

connect (entering)              before  test_client::test_cancelled_before_connect
                                during  test_client::test_cancelled_during_tcp,
                                        test_client::test_cancelled_during_tls,
                                        test_client::test_cancelled_during_handshake,
                                        test_proxy::test_cancelled_during_the_proxy_conversation,
                                        test_unix::test_cancelled_during_handshake,
                                        test_redirects::test_cancelled_during_the_chain
connect (the block)             during  test_client::test_cancelling_block_sends_1001,
                                        test_client::test_cancelling_block_waits_at_most_close_timeout
serve                           before  test_server::test_serve_cancelled_before
                                during  test_server::test_cancel_serve_during_a_handshake_drops_the_client,
                                        test_server::test_cancel_serve_during_process_request_drops_the_client,
                                        test_server::test_cancel_serve_sends_1001_within_close_timeout,
                                        test_server::test_cancel_serve_completes_closing_handshake
Server.aclose                   before  test_server::test_aclose_cancelled_before
                                during  test_server::test_aclose_cancelled_cancels_connections
Connection.send                 before  test_connection::test_send_cancelled_before,
                                        test_compress_flag::test_cancelled_before
                                during  test_connection::test_send_cancelled_while_waiting_for_another_send,
                                        test_connection::test_send_cancelled_mid_frame_aborts,
                                        test_connection::test_send_cancelled_between_fragments_fails_with_1011,
                                        test_compress_flag::test_cancelled_during
Connection.recv                 before  test_connection::test_recv_cancelled_before,
                                        test_connection::test_recv_cancelled_before_with_nothing_queued,
                                        test_connection::test_recv_cancelled_before_once_closed
                                during  test_connection::test_recv_cancelled_during
Connection.ping                 before  test_connection::test_ping_cancelled_before
                                during  test_connection::test_ping_cancelled_while_waiting_for_the_pong,
                                        test_connection::test_ping_cancelled_mid_frame_aborts
Connection.pong                 before  test_connection::test_pong_cancelled_before
                                during  test_connection::test_pong_cancelled_mid_frame_aborts
Connection.aclose               before  test_connection::test_aclose_cancelled_before
                                during  test_connection::test_aclose_cancelled_during
Connection.__aexit__            during  test_connection::test_close_on_exit_cancelled
Connection.wait_closed          before  here: test_wait_closed_cancelled_before
                                during  here: test_wait_closed_cancelled_during
Connection.__anext__            before  here: test_anext_cancelled_before
                                during  here: test_anext_cancelled_during
open_connection                 before  test_bound::test_cancelled_before
                                during  test_bound::test_cancelled_while_opening,
                                        test_bound::test_cancelling_the_nursery_closes_with_1001
reconnect (entering)            before  here: test_reconnect_entered_cancelled_connects_nothing
reconnect (iterating)           before  test_reconnect::test_cancelled_before
                                during  test_reconnect::test_cancelled_during_backoff_keeps_the_backoff,
                                        test_reconnect::test_cancelled_while_opening
reconnect (the block)           during  test_reconnect::test_leaving_the_block_closes_the_connection[cancel-1001]
serve_workers                   before  deploy/test_workers::test_cancelled_before_starting
                                during  deploy/test_workers::test_cancelled_while_serving
WorkerPool.aclose               before  deploy/test_workers::test_aclose_cancelled_before
                                during  deploy/test_workers::test_aclose_cancelled_during
Router.process_request          before  here: test_router_process_request_cancelled_before
                                during  here: test_router_process_request_cancelled_during
Router.__call__                 during  here: test_router_call_cancelled_during
basic_auth(...) (the hook)      before  here: test_basic_auth_cancelled_before
                                during  here: test_basic_auth_cancelled_during
testing.open_connection_pair    before  test_testing::test_pair_cancelled_before
                                during  test_testing::test_pair_cancelled_while_opening,
                                        test_testing::test_pair_cancelled_in_the_block_closes_1001
MemoryTransport.send_all        before  test_testing::test_transport_cancelled_write_keeps_its_prefix
                                during  (same test)
MemoryTransport.receive_some    before  test_testing::test_transport_cancelled_read_consumes_nothing
                                during  (same test)
MemoryTransport.wait_send_all_might_not_block
                                before  here: test_transport_wait_writable_cancelled_before
                                during  here: test_transport_wait_writable_cancelled_during
MemoryTransport.aclose          before  here: test_transport_aclose_cancelled_before_still_closes
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import Headers, Request, ServerConnection, State
from trio_ws.testing import memory_transport_pair

from .conftest import MemoryListener, open_connection
from .helpers import OP_TEXT


async def cancel_while_blocked(
    call: Callable[[], Awaitable[object]],
) -> trio.CancelScope:
    """Run ``call()``, cancel it once every task is blocked, return its scope."""
    scope = trio.CancelScope()

    async def run() -> None:
        with scope:
            await call()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()
    return scope


def already_cancelled() -> trio.CancelScope:
    scope = trio.CancelScope()
    scope.cancel()
    return scope


# --- Connection.wait_closed ---------------------------------------------------


async def test_wait_closed_cancelled_before(autojump_clock: object) -> None:
    async with open_connection() as (ws, peer):
        with already_cancelled() as scope:
            await ws.wait_closed()
        assert scope.cancelled_caught
        assert ws.state is State.OPEN
        # Nothing was sent: the next frame the peer sees is this message.
        await ws.send("after")
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"after")


async def test_wait_closed_cancelled_during(autojump_clock: object) -> None:
    async with open_connection() as (ws, peer):
        scope = await cancel_while_blocked(ws.wait_closed)
        assert scope.cancelled_caught
        assert trio.current_time() == 0
        assert ws.state is State.OPEN
        # Nothing changed: a later wait still sees the closing handshake end.
        await peer.send_close(1000)
        await ws.wait_closed()
        assert ws.state is State.CLOSED
        assert ws.close_code == 1000


# --- Connection.__anext__ -----------------------------------------------------


async def test_anext_cancelled_before(autojump_clock: object) -> None:
    async with open_connection() as (ws, peer):
        await peer.send_frame(OP_TEXT, b"kept")
        await trio.testing.wait_all_tasks_blocked()
        with already_cancelled() as scope:
            await anext(ws)
        assert scope.cancelled_caught
        assert await anext(ws) == "kept"


async def test_anext_cancelled_during(autojump_clock: object) -> None:
    async with open_connection() as (ws, peer):
        scope = await cancel_while_blocked(lambda: anext(ws))
        assert scope.cancelled_caught
        assert ws.state is State.OPEN
        await peer.send_frame(OP_TEXT, b"kept")
        assert await anext(ws) == "kept"
        await peer.send_close(1000)
        with pytest.raises(StopAsyncIteration):
            await anext(ws)


# --- reconnect ------------------------------------------------------------------


async def test_reconnect_entered_cancelled_connects_nothing(
    autojump_clock: object, listener: MemoryListener
) -> None:
    with already_cancelled() as scope:
        async with trio_ws.reconnect("ws://example.com/") as connections:
            await anext(connections)
    assert scope.cancelled_caught
    assert listener.addresses == []
    assert listener.accepted == []


# --- Router ---------------------------------------------------------------------


def gated_router(gate: trio.Event, seen: list[str]) -> trio_ws.Router:
    router = trio_ws.Router()

    async def check(ws: ServerConnection, request: Request) -> None:
        seen.append(request.path)
        await gate.wait()

    async def handler(ws: ServerConnection, **params: str) -> None:
        seen.append("handler")
        await gate.wait()

    router.add("/gated", handler, process_request=check)
    return router


async def test_router_process_request_cancelled_before(autojump_clock: object) -> None:
    gate, seen = trio.Event(), []
    gate.set()
    router = gated_router(gate, seen)
    async with open_connection() as (ws, _):
        with already_cancelled() as scope:
            await router.process_request(ws, Request("/gated", Headers(Host="h")))
        assert scope.cancelled_caught
        assert ws.state is State.OPEN


async def test_router_process_request_cancelled_during(autojump_clock: object) -> None:
    gate, seen = trio.Event(), []
    router = gated_router(gate, seen)
    request = Request("/gated", Headers(Host="h"))
    async with open_connection() as (ws, _):
        scope = await cancel_while_blocked(lambda: router.process_request(ws, request))
        assert scope.cancelled_caught
        assert seen == ["/gated"]
        # Nothing stuck: the same request goes through once the hook can.
        gate.set()
        assert await router.process_request(ws, request) is None
        assert seen == ["/gated", "/gated"]


async def test_router_call_cancelled_during(autojump_clock: object) -> None:
    gate, seen = trio.Event(), []
    router = trio_ws.Router()

    @router.route("/rooms/{room}")
    async def room(ws: ServerConnection, **params: str) -> None:
        seen.append(params["room"])
        await gate.wait()
        seen.append("never")  # pragma: no cover - cancelled first

    scope = trio.CancelScope()

    async def handler(ws: ServerConnection) -> None:
        with scope:
            await router(ws)

    async with trio_ws.testing.open_connection_pair(
        "/rooms/lobby", handler=handler
    ) as pair:
        await trio.testing.wait_all_tasks_blocked()
        assert seen == ["lobby"]
        scope.cancel()
        # The route's handler was cancelled; the handler returning closes
        # the connection normally, as any handler that returns.
        await pair.client.wait_closed()
    assert scope.cancelled_caught
    assert seen == ["lobby"]
    assert pair.client.close_code == 1000


# --- basic_auth -----------------------------------------------------------------


def auth_request() -> Request:
    value = "Basic " + base64.b64encode(b"alice:s3cr3t").decode()
    return Request("/", Headers(Host="h", Authorization=value))


def gated_auth(
    gate: trio.Event, asked: list[str]
) -> Callable[[ServerConnection, Request], Awaitable[object]]:
    async def check(user: str, password: str) -> bool:
        asked.append(user)
        await gate.wait()
        return password == "s3cr3t"

    return trio_ws.basic_auth(check_credentials=check)


async def test_basic_auth_cancelled_before(autojump_clock: object) -> None:
    gate, asked = trio.Event(), []
    gate.set()
    process_request = gated_auth(gate, asked)
    async with open_connection() as (ws, _):
        with already_cancelled() as scope:
            await process_request(ws, auth_request())
        assert scope.cancelled_caught
        assert ws.state is State.OPEN


async def test_basic_auth_cancelled_during(autojump_clock: object) -> None:
    gate, asked = trio.Event(), []
    process_request = gated_auth(gate, asked)
    async with open_connection() as (ws, _):
        scope = await cancel_while_blocked(lambda: process_request(ws, auth_request()))
        assert scope.cancelled_caught
        assert asked == ["alice"]
        gate.set()
        assert await process_request(ws, auth_request()) is None


# --- MemoryTransport ------------------------------------------------------------


async def test_transport_wait_writable_cancelled_before(autojump_clock: object) -> None:
    left, right = memory_transport_pair(3)
    with already_cancelled() as scope:
        await left.wait_send_all_might_not_block()
    assert scope.cancelled_caught
    await left.send_all(b"abc")
    assert await right.receive_some() == b"abc"


async def test_transport_wait_writable_cancelled_during(autojump_clock: object) -> None:
    left, right = memory_transport_pair(3)
    await left.send_all(b"abc")
    scope = await cancel_while_blocked(left.wait_send_all_might_not_block)
    assert scope.cancelled_caught
    assert trio.current_time() == 0
    # Nothing was taken from the buffer; once read, there is room again.
    assert await right.receive_some() == b"abc"
    with trio.testing.assert_checkpoints():
        await left.wait_send_all_might_not_block()


async def test_transport_aclose_cancelled_before_still_closes(
    autojump_clock: object,
) -> None:
    left, right = memory_transport_pair()
    with already_cancelled() as scope:
        await left.aclose()
    assert scope.cancelled_caught
    # Closed all the same, as trio.abc.AsyncResource.aclose requires.
    assert await right.receive_some() == b""
    with pytest.raises(trio.ClosedResourceError):
        await left.send_all(b"x")
