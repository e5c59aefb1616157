"""Autobahn 12.x/13.x: permessage-deflate (RFC 7692), every parameter
combination, both roles; compressed input that would inflate past max_size.

The peer compresses and inflates with its own zlib code; inflating trio_ws's
messages it uses exactly the window trio_ws agreed to, and resets its
context when trio_ws agreed to no context takeover, so any breach of the
agreed parameters fails the test.
"""

from __future__ import annotations

import itertools
import random
import tracemalloc
import zlib

import pytest
import trio
import trio.testing  # noqa: TC002 - annotations

from trio_ws import PayloadTooBig, ProtocolError
from trio_ws._extensions import DeflateParams

from .peer import OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, ROLES, echo_connection

WINDOW_BITS = [8, 9, 15]
PARAMS = [
    DeflateParams(
        server_no_context_takeover=snct,
        client_no_context_takeover=cnct,
        server_max_window_bits=sbits,
        client_max_window_bits=cbits,
    )
    for snct, cnct, sbits, cbits in itertools.product(
        [False, True], [False, True], WINDOW_BITS, WINDOW_BITS
    )
]


def params_id(params: DeflateParams) -> str:
    parts = [f"s{params.server_max_window_bits}", f"c{params.client_max_window_bits}"]
    if params.server_no_context_takeover:
        parts.append("snct")
    if params.client_no_context_takeover:
        parts.append("cnct")
    return "-".join(parts)


def text(size: int, seed: int = 0) -> str:
    """Compressible text: random words from a small vocabulary."""
    rng = random.Random(seed)
    words = ["trio", "websocket", "deflate", "frame", "window", "context"]
    out = ""
    while len(out) < size:
        out += rng.choice(words) + " "
    return out[:size]


def local(params: DeflateParams, role: str) -> tuple[int, bool]:
    """trio_ws's own window bits and no-context-takeover flag in ``role``."""
    if role == "server":
        return params.server_max_window_bits, params.server_no_context_takeover
    return params.client_max_window_bits, params.client_no_context_takeover


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("params", PARAMS, ids=params_id)
async def test_parameter_combinations(
    autojump_clock: trio.testing.MockClock, role: str, params: DeflateParams
) -> None:
    """12.x/13.x: messages of several sizes and kinds, whole and fragmented,
    echoed compressed within the agreed parameters."""
    # A message short enough for zlib to refer back to it with a 9-bit
    # window (512 bytes less its 262-byte lookahead), so that context
    # takeover shows in the size of a repeat; then larger and binary ones.
    small = text(200)
    large = text(20_000, seed=1)
    blob = random.Random(2).randbytes(5000)
    bits, no_takeover = local(params, role)
    async with echo_connection(role, deflate=params) as (peer, echo, _):
        # The same message twice.
        first = second = None
        for _ in range(2):
            await peer.send(peer.message(small))
            message = await peer.receive_message()
            assert message.payload.decode() == small
            compressed = b"".join(f[3] for f in message.frames)
            if first is None:
                first = compressed
            else:
                second = compressed
        assert first is not None
        assert second is not None
        if no_takeover:
            assert second == first  # a fresh context for each message
        elif bits > 8:
            assert len(second) < len(first) // 2  # refers to the first one
        for data in [large, blob, "", b""]:
            await peer.send(peer.message(data))
            assert await peer.receive_data() == data
        # Fragmented by the peer, 7 bytes of compressed data per frame.
        await peer.send(peer.message(large, fragment=7))
        assert await peer.receive_data() == large
        await peer.close()
    assert echo.received == [small, small, large, blob, "", b"", large]


@pytest.mark.parametrize("role", ROLES)
async def test_fragmented_send_is_compressed_once(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """A message sent in fragments: RSV1 on the first frame only."""

    async def send_fragments(echo: object) -> None:
        ws = echo.ws  # type: ignore[attr-defined]
        await ws.send(["frag", "ment", "ed"])
        await ws.aclose()
        echo.done.set()  # type: ignore[attr-defined]

    async with echo_connection(
        role, deflate=DeflateParams(), handler=send_fragments
    ) as (
        peer,
        _,
        _,
    ):
        message = await peer.receive_message()
        assert [f[:3] for f in message.frames] == [
            (OP_TEXT, False, 4),
            (OP_CONT, False, 0),
            (OP_CONT, True, 0),
        ]
        assert message.payload == b"fragmented"
        await peer.expect_close(1000)
        await peer.send(peer.close_frame(1000))
        if peer.client:
            await peer.expect_eof()


@pytest.mark.parametrize("role", ROLES)
async def test_ping_between_compressed_fragments(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """A ping inside a compressed fragmented message is answered at once and
    does not disturb the decompression of the rest."""
    data = text(5000)
    async with echo_connection(role, deflate=DeflateParams()) as (peer, echo, _):
        assert peer.deflate is not None
        payload = peer.deflate.compress(data.encode())
        half = len(payload) // 2
        await peer.send(peer.frame(OP_TEXT, payload[:half], fin=False, rsv=4))
        await peer.send(peer.frame(OP_PING, b"p"))
        assert await peer.receive_frame() == (OP_PONG, True, 0, b"p")
        await peer.send(peer.frame(OP_CONT, payload[half:]))
        assert await peer.receive_data() == data
        await peer.close()
    assert echo.received == [data]


@pytest.mark.parametrize("role", ROLES)
async def test_uncompressed_message_with_deflate(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """RFC 7692 6: messages without RSV1 are not compressed, even when
    permessage-deflate was agreed."""
    async with echo_connection(role, deflate=DeflateParams()) as (peer, echo, _):
        await peer.send(peer.frame(OP_TEXT, b"plain"))
        assert await peer.receive_data() == "plain"
        await peer.close()
    assert echo.received == ["plain"]


@pytest.mark.parametrize("role", ROLES)
async def test_final_block_ends_the_context(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """RFC 7692 7.2.3.3: a message may end with a final (BFINAL) block; the
    next message starts a new context."""
    async with echo_connection(role, deflate=DeflateParams()) as (peer, echo, _):
        for data in [b"first message", b"second message"]:
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            payload = compressor.compress(data) + compressor.flush(zlib.Z_FINISH)
            await peer.send(peer.frame(OP_BINARY, payload, rsv=4))
            assert await peer.receive_data() == data
        await peer.close()
    assert echo.received == [b"first message", b"second message"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("frames", "code"),
    [
        pytest.param([(OP_PING, b"", True, 4)], 1002, id="rsv1-on-ping"),
        pytest.param(
            [(OP_TEXT, b"", False, 4), (OP_CONT, b"", True, 4)],
            1002,
            id="rsv1-on-continuation",
        ),
        pytest.param([(OP_TEXT, b"", True, 2)], 1002, id="rsv2"),
        pytest.param(
            [(OP_BINARY, b"\xff\xff\xff\xff", True, 4)], 1007, id="invalid-deflate"
        ),
        pytest.param(
            [(OP_BINARY, zlib.compress(b"x")[2:-4] + b"\x00" * 50, True, 4)],
            1007,
            id="data-after-final-block",
        ),
    ],
)
async def test_compression_violations(
    autojump_clock: trio.testing.MockClock,
    role: str,
    frames: list[tuple[int, bytes, bool, int]],
    code: int,
) -> None:
    """RSV1 where RFC 7692 forbids it: 1002; data that does not inflate: 1007."""
    async with echo_connection(role, deflate=DeflateParams()) as (peer, echo, _):
        for opcode, payload, fin, rsv in frames:
            await peer.send(peer.frame(opcode, payload, fin=fin, rsv=rsv))
        await peer.expect_failure(code)
    assert echo.closed is not None
    assert isinstance(echo.closed.__cause__, ProtocolError)


def bomb(size: int) -> bytes:
    """Compressed data (without the tail) that inflates to ``size`` zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(b"\x00" * size) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("fragmented", [False, True])
async def test_decompression_bomb_refused_without_inflating(
    autojump_clock: trio.testing.MockClock, role: str, fragmented: bool
) -> None:
    """A 64 MiB message compressed to ~64 KiB, against max_size = 1 MiB:
    1009, and trio_ws never holds much more than max_size of inflated data."""
    payload = bomb(64 * 2**20)
    assert len(payload) < 70_000
    async with echo_connection(role, deflate=DeflateParams()) as (peer, echo, _):
        if fragmented:
            wire = peer.frame(OP_BINARY, payload[:1000], fin=False, rsv=4) + peer.frame(
                OP_CONT, payload[1000:]
            )
        else:
            wire = peer.frame(OP_BINARY, payload, rsv=4)
        tracemalloc.start()
        try:
            await peer.send(wire)
            await peer.expect_failure(1009)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # Inflating it all would take 64 MiB; the limit lets 1 MiB + 1 through.
    assert peak < 4 * 2**20
    assert echo.closed is not None
    assert isinstance(echo.closed.__cause__, PayloadTooBig)
    assert str(echo.closed.__cause__) == (
        f"message over {2**20} bytes (at least {2**20 + 1} bytes)"
    )


@pytest.mark.parametrize("role", ROLES)
async def test_compressed_message_of_exactly_max_size(
    autojump_clock: trio.testing.MockClock, role: str
) -> None:
    """The bound is inclusive after inflation too."""
    async with echo_connection(role, deflate=DeflateParams(), max_size=100_000) as (
        peer,
        echo,
        _,
    ):
        await peer.send(peer.frame(OP_BINARY, bomb(100_000), rsv=4))
        assert await peer.receive_data() == b"\x00" * 100_000
        await peer.send(peer.frame(OP_BINARY, bomb(100_001), rsv=4))
        await peer.expect_failure(1009)
    assert echo.received == [b"\x00" * 100_000]
