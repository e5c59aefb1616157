"""``send(message, compress=False)``: one message uncompressed, byte for byte.

The compressed payloads are RFC 7692's own examples (section 7.2.3): "Hello"
alone is ``f2 48 cd c9 c9 07 00``; "Hello" again with the context kept is
``f2 00 11 00 00``, a back-reference to the first one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from trio_ws import ClientConnection, Connection, ConnectionClosedError, State
from trio_ws._extensions import DeflateParams
from trio_ws.testing import open_connection_pair

from .conftest import SIDES, open_connection
from .helpers import OP_BINARY, OP_CONT, OP_TEXT

RSV1 = 0b100
HELLO = b"\xf2\x48\xcd\xc9\xc9\x07\x00"
HELLO_AGAIN = b"\xf2\x00\x11\x00\x00"


@pytest.fixture(params=SIDES, ids=["client", "server"])
def side(request: pytest.FixtureRequest) -> type[Connection]:
    return request.param  # type: ignore[no-any-return]


async def test_uncompressed_message_has_rsv1_clear(
    side: type[Connection], autojump_clock: object
) -> None:
    async with open_connection(side, extensions=[DeflateParams()]) as (ws, peer):
        await ws.send("Hello", compress=False)
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"Hello")
        await ws.send(b"Hello", compress=False)
        assert await peer.receive_frame() == (OP_BINARY, True, 0, b"Hello")


async def test_flag_covers_one_message_and_spares_the_context(
    side: type[Connection], autojump_clock: object
) -> None:
    async with open_connection(side, extensions=[DeflateParams()]) as (ws, peer):
        await ws.send("Hello")
        assert await peer.receive_frame() == (OP_TEXT, True, RSV1, HELLO)
        await ws.send("Hello", compress=False)
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"Hello")
        # Had the plain message entered the compressor, the back-reference
        # would point elsewhere.
        await ws.send("Hello")
        assert await peer.receive_frame() == (OP_TEXT, True, RSV1, HELLO_AGAIN)


async def test_fragmented_message_uncompressed_in_every_frame(
    autojump_clock: object,
) -> None:
    async def fragments() -> AsyncIterator[bytes]:
        yield b"Hel"
        await trio.sleep(1)
        yield b"lo"

    async with open_connection(extensions=[DeflateParams()]) as (ws, peer):
        await ws.send(["Hel", "lo"], compress=False)
        assert await peer.receive_frame() == (OP_TEXT, False, 0, b"Hel")
        assert await peer.receive_frame() == (OP_CONT, True, 0, b"lo")
        await ws.send(fragments(), compress=False)
        assert await peer.receive_frame() == (OP_BINARY, False, 0, b"Hel")
        assert await peer.receive_frame() == (OP_CONT, True, 0, b"lo")
        # The next message is compressed again.
        await ws.send("Hello")
        assert await peer.receive_frame() == (OP_TEXT, True, RSV1, HELLO)


async def test_compressed_fragments_still_rsv1_on_first_frame_only(
    autojump_clock: object,
) -> None:
    async with open_connection(extensions=[DeflateParams()]) as (ws, peer):
        await ws.send("x", compress=False)
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"x")
        await ws.send(["Hel", "lo"])
        opcode, fin, rsv, _ = await peer.receive_frame()
        assert (opcode, fin, rsv) == (OP_TEXT, False, RSV1)
        opcode, fin, rsv, _ = await peer.receive_frame()
        assert (opcode, fin, rsv) == (OP_CONT, True, 0)


@pytest.mark.parametrize("compress", [True, False])
async def test_no_effect_without_compression(
    side: type[Connection], compress: bool, autojump_clock: object
) -> None:
    async with open_connection(side) as (ws, peer):
        await ws.send("Hello", compress=compress)
        assert await peer.receive_frame() == (OP_TEXT, True, 0, b"Hello")
        await ws.send(["Hel", "lo"], compress=compress)
        assert await peer.receive_frame() == (OP_TEXT, False, 0, b"Hel")
        assert await peer.receive_frame() == (OP_CONT, True, 0, b"lo")


async def test_peer_reads_both_kinds(autojump_clock: object) -> None:
    async with open_connection_pair() as pair:
        assert pair.client.response is not None
        assert "permessage-deflate" in pair.client.response.headers.get(
            "Sec-WebSocket-Extensions", ""
        )
        for compress in (False, True, False):
            await pair.client.send("Hello" * 100, compress=compress)
            await pair.server.send(b"\x00" * 1000, compress=compress)
            assert await pair.server.recv() == "Hello" * 100
            assert await pair.client.recv() == b"\x00" * 1000


async def test_cancelled_before(autojump_clock: object) -> None:
    async with open_connection(ClientConnection, extensions=[DeflateParams()]) as (
        ws,
        peer,
    ):
        await ws.send("Hello")
        assert await peer.receive_frame() == (OP_TEXT, True, RSV1, HELLO)
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.send("Hello", compress=False)
        assert scope.cancelled_caught
        # Nothing was sent and the flag did not stick to the next message.
        await ws.send("Hello")
        assert await peer.receive_frame() == (OP_TEXT, True, RSV1, HELLO_AGAIN)


async def test_cancelled_during(autojump_clock: object) -> None:
    async with open_connection(extensions=[DeflateParams()]) as (ws, peer):
        peer.stall_writes(3)
        with trio.move_on_after(2):
            await ws.send(b"0123456789", compress=False)
        assert trio.current_time() == 2
        assert ws.state is State.CLOSED
        # The frame header went out uncompressed (no RSV1: 0x82), then the
        # connection was failed rather than resumed.
        assert await peer.stream.receive_some() == b"\x82\x0a0"
        await peer.receive_eof()
        with pytest.raises(ConnectionClosedError):
            await ws.send(b"x", compress=False)
