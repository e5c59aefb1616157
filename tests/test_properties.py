"""Property tests: chunking, hostile input and ping floods (hypothesis).

The sans-I/O core is driven directly where that suffices; the connection
layer runs on virtual time over memory streams, inside ``trio.run``.
"""

from __future__ import annotations

import itertools
import os
import struct
import tracemalloc
import zlib

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings, strategies as st

from trio_ws import PayloadTooBig, ProtocolError, State
from trio_ws._extensions import DeflateParams
from trio_ws._protocol import Protocol

from .conformance.peer import OP_PING, OP_PONG, build_frame, echo_connection
from .helpers import MASK, OP_BINARY, OP_CONT, OP_TEXT, parse_frames

#: Modest by default; ``TRIO_WS_FUZZ_EXAMPLES=5000`` fuzzes for longer.
EXAMPLES = int(os.environ.get("TRIO_WS_FUZZ_EXAMPLES", "60"))
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

#: A message: text or binary content, and how many fragments it is sent in.
messages = st.lists(
    st.tuples(
        st.one_of(st.text(max_size=40), st.binary(max_size=40)), st.integers(1, 4)
    ),
    max_size=6,
)


def encode(
    items: list[tuple[str | bytes, int]], *, client: bool, pings: bool
) -> tuple[bytes, list[str | bytes], list[bytes]]:
    """Hand-built frames for ``items`` as a client or server sends them, with a
    ping between fragments if asked; also the expected messages and pongs."""
    key = MASK if client else None
    wire = b""
    expected_pongs = []
    for n, (data, parts) in enumerate(items):
        raw = data.encode() if isinstance(data, str) else data
        opcode = OP_TEXT if isinstance(data, str) else OP_BINARY
        # Split anywhere, even inside a UTF-8 character.
        cuts = [len(raw) * i // parts for i in range(parts + 1)]
        for i in range(parts):
            wire += build_frame(
                opcode if i == 0 else OP_CONT,
                raw[cuts[i] : cuts[i + 1]],
                fin=i == parts - 1,
                key=key,
            )
            if pings and i == 0:
                payload = b"%d" % n
                wire += build_frame(OP_PING, payload, key=key)
                expected_pongs.append(payload)
    return wire, [data for data, _ in items], expected_pongs


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@FAST
@given(
    items=messages,
    cuts=st.lists(st.integers(0, 10_000), max_size=30),
    client=st.booleans(),
    pings=st.booleans(),
)
def test_any_split_yields_the_same_messages(
    items: list[tuple[str | bytes, int]], cuts: list[int], client: bool, pings: bool
) -> None:
    """However the stream is cut into reads, the messages and the automatic
    replies are the same."""
    wire, expected, pongs = encode(items, client=client, pings=pings)
    # The receiving end plays the other role.
    p = Protocol(client=not client)
    received: list[str | bytes] = []
    out = b""
    for chunk in split(wire, cuts):
        p.receive_data(chunk)
        received += p.take_messages()
        out += bytes(p.data_to_send())
    assert received == expected
    assert [f[3] for f in parse_frames(out)] == pongs
    assert all(f[0] == OP_PONG for f in parse_frames(out))
    assert not p.failed


@FAST
@given(
    texts=st.lists(st.text(max_size=300), min_size=1, max_size=5),
    cuts=st.lists(st.integers(0, 10_000), max_size=30),
    no_takeover=st.booleans(),
    bits=st.sampled_from([8, 9, 15]),
)
def test_any_split_of_compressed_messages(
    texts: list[str], cuts: list[int], no_takeover: bool, bits: int
) -> None:
    """The same with permessage-deflate: contexts survive any split."""
    params = DeflateParams(
        client_no_context_takeover=no_takeover, client_max_window_bits=bits
    )
    sender = Protocol(client=True, extensions=[params])
    for text in texts:
        sender.send_message(text)
    wire = bytes(sender.data_to_send())
    p = Protocol(client=False, extensions=[params])
    received: list[str | bytes] = []
    for chunk in split(wire, cuts):
        p.receive_data(chunk)
        received += p.take_messages()
    assert received == texts


def check_outcome(p: Protocol, max_size: int, out: bytes) -> None:
    """Messages, or a clean failure: 1002, 1007 or 1009, nothing else.

    ``out`` is everything trio_ws wrote so far.
    """
    frames = parse_frames(out)  # whatever trio_ws wrote is well-formed
    for opcode, fin, rsv, _ in frames:
        assert fin
        assert rsv == 0
        assert opcode in (0x8, OP_PONG)
    if p.failed:
        assert frames
        assert frames[-1][0] == 0x8
        (code,) = struct.unpack("!H", frames[-1][3][:2])
        assert code in (1002, 1007, 1009)
        cause = p.failure
        assert isinstance(cause, (ProtocolError, PayloadTooBig))
        assert (code == 1009) == isinstance(cause, PayloadTooBig)
    elif p.close_rcvd is not None:
        assert p.state is State.CLOSING
    buffered = p._fragments
    assert buffered is None or len(buffered) <= max_size
    for message in p.take_messages():
        size = len(message.encode()) if isinstance(message, str) else len(message)
        assert size <= max_size


def mutate(valid: bytes, flips: list[tuple[int, int]]) -> bytes:
    data = bytearray(valid)
    for position, value in flips:
        if data:
            data[position % len(data)] = value
    return bytes(data)


hostile = st.one_of(
    st.binary(max_size=300),
    # Valid frames, masked (as from a client) or not, with a few bytes
    # changed: they reach deeper into the parser than random bytes.
    st.builds(
        mutate,
        st.builds(
            lambda items, masked: encode(items, client=masked, pings=True)[0],
            messages,
            st.booleans(),
        ),
        st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3),
    ),
)


@FAST
@given(
    data=hostile,
    cuts=st.lists(st.integers(0, 10_000), max_size=10),
    client=st.booleans(),
    deflate=st.booleans(),
)
def test_any_input_ends_in_messages_or_a_clean_close(
    data: bytes, cuts: list[int], client: bool, deflate: bool
) -> None:
    """Random or corrupted input never raises, and never fails the
    connection with anything but 1002, 1007 or 1009."""
    max_size = 64
    extensions = [DeflateParams()] if deflate else []
    p = Protocol(client=client, extensions=extensions, max_size=max_size)
    out = b""
    for chunk in split(data, cuts):
        p.receive_data(chunk)
        out += bytes(p.data_to_send())
        check_outcome(p, max_size, out)


@settings(max_examples=20, deadline=None)
@given(
    size=st.integers(2**16, 2**23),
    client=st.booleans(),
    fragments=st.integers(1, 3),
)
def test_compressed_input_is_inflated_within_bounds(
    size: int, client: bool, fragments: int
) -> None:
    """Whatever a compressed message inflates to, trio_ws inflates at most
    max_size + 1 bytes of it."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = compressor.compress(b"\x00" * size) + compressor.flush(zlib.Z_SYNC_FLUSH)
    payload = payload[:-4]
    key = None if client else MASK
    cuts = [len(payload) * i // fragments for i in range(fragments + 1)]
    wire = b"".join(
        build_frame(
            OP_BINARY if i == 0 else OP_CONT,
            payload[cuts[i] : cuts[i + 1]],
            fin=i == fragments - 1,
            rsv=4 if i == 0 else 0,
            key=key,
        )
        for i in range(fragments)
    )
    max_size = 2**15
    p = Protocol(client=client, extensions=[DeflateParams()], max_size=max_size)
    tracemalloc.start()
    try:
        p.receive_data(wire)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert p.failed
    assert isinstance(p.failure, PayloadTooBig)
    assert peak < 6 * len(wire) + 8 * max_size + 2**17


async def _flood(size: int, count: int) -> tuple[int, int]:
    async with echo_connection(
        "server", stream_pair=trio.testing.lockstep_stream_pair
    ) as (peer, echo, limiter):
        ping = peer.frame(OP_PING, b"p" * size)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.send, ping * count)
            await trio.testing.wait_all_tasks_blocked()
            received = limiter.received
            nursery.cancel_scope.cancel()
        await peer.stream.aclose()
    assert echo.closed is not None
    return received, len(ping) * count


@settings(max_examples=10, deadline=None)
@given(size=st.integers(0, 125), count=st.integers(1, 20_000))
def test_ping_flood_is_bounded(size: int, count: int) -> None:
    """A peer that sends pings and reads nothing: trio_ws reads at most one
    buffer of them, then waits for the peer to read its pongs."""

    async def main() -> tuple[int, int]:
        return await _flood(size, count)

    received, sent = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert received <= min(sent, 65536)


async def _hostile_connection(role: str, data: bytes, deflate: bool) -> None:
    params = DeflateParams() if deflate else None
    async with echo_connection(role, deflate=params, max_size=64) as (peer, echo, _):
        await peer.send(data)
        await peer.stream.aclose()  # then EOF: the connection must end
        with trio.fail_after(60):
            await echo.ws.wait_closed()
    closed = echo.closed
    assert closed is not None
    if closed.rcvd is None and closed.sent is not None:
        # trio_ws failed the connection: only for a protocol violation.
        assert closed.sent.code in (1002, 1007, 1009)
    for message in echo.received:
        size = len(message.encode()) if isinstance(message, str) else len(message)
        assert size <= 64


@settings(max_examples=max(EXAMPLES // 2, 1), deadline=None)
@given(data=hostile, role=st.sampled_from(["server", "client"]), deflate=st.booleans())
def test_any_input_to_a_connection_ends_cleanly(
    data: bytes, role: str, deflate: bool
) -> None:
    """The same against a running connection: no exception escapes, and the
    connection ends once the peer hangs up."""

    async def main() -> None:
        await _hostile_connection(role, data, deflate)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
