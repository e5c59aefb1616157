"""Autobahn 12.x/13.x through the real opening handshake: permessage-deflate
negotiated by trio_ws (RFC 7692 section 7.1), then compressed messages both
ways with exactly what the handshake agreed to.
"""

from __future__ import annotations

import functools
import itertools
import math

import pytest
import trio
import trio.testing
from wsproto.utilities import generate_accept_token

import trio_ws
from trio_ws._client import _handshake as client_handshake
from trio_ws._extensions import DeflateParams
from trio_ws._handshake_client import ClientHandshake
from trio_ws._uri import parse_uri
from trio_ws.testing._pair import _OneShotListener

from .peer import RawPeer, echo_connection

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 1.3
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def parse_agreement(value: str) -> DeflateParams:
    """The parameters of a ``Sec-WebSocket-Extensions`` answer."""
    name, *params = (p.strip() for p in value.split(";"))
    assert name == "permessage-deflate"
    fields: dict[str, object] = {}
    for param in params:
        key, _, bits = param.partition("=")
        fields[key] = int(bits) if bits else True
    return DeflateParams(**fields)  # type: ignore[arg-type]


async def echo(ws: trio_ws.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def read_head(stream: trio.abc.Stream) -> tuple[list[str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some()
        assert chunk
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode().split("\r\n"), rest


def header(lines: list[str], name: str) -> str | None:
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


OFFERS = [
    "; ".join(
        ["permessage-deflate"]
        + (["server_no_context_takeover"] if snct else [])
        + (["client_no_context_takeover"] if cnct else [])
        + ([] if sbits is None else [f"server_max_window_bits={sbits}"])
        + ([] if cbits is None else ["client_max_window_bits" + cbits])
    )
    for snct, cnct, sbits, cbits in itertools.product(
        [False, True], [False, True], [None, 8, 9, 15], [None, "", "=8", "=15"]
    )
]


@pytest.mark.parametrize("offer", OFFERS)
async def test_server_negotiation(
    autojump_clock: trio.testing.MockClock, offer: str
) -> None:
    """A trio_ws server accepts each offer within its limits (RFC 7692 7.1)
    and compresses and inflates with exactly what it answered."""
    ws_end, peer_end = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            functools.partial(
                trio_ws.serve,
                echo,
                listeners=[_OneShotListener(ws_end)],
                ping_interval=None,
            )
        )
        request = (
            "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {offer}\r\n\r\n"
        )
        await peer_end.send_all(request.encode())
        lines, rest = await read_head(peer_end)
        assert rest == b""
        assert lines[0] == "HTTP/1.1 101 Switching Protocols"
        assert header(lines, "Sec-WebSocket-Accept") == ACCEPT
        answer = header(lines, "Sec-WebSocket-Extensions")
        assert answer is not None
        agreed = parse_agreement(answer)
        offered = parse_agreement(offer)
        # RFC 7692 7.1.1.1, 7.1.2.1: what the client asked the server to
        # do is in the answer; window sizes no larger than offered.
        if offered.server_no_context_takeover:
            assert agreed.server_no_context_takeover
        if "server_max_window_bits" in offer:
            assert agreed.server_max_window_bits <= offered.server_max_window_bits
        if "client_max_window_bits" not in offer:
            assert "client_max_window_bits" not in answer
        peer = RawPeer(peer_end, client=True, deflate=agreed)
        for data in ["hello " * 50, "hello " * 50, b"\x00" * 3000]:
            await peer.send(peer.message(data))
            assert await peer.receive_data() == data
        await peer.close()
        await server.aclose()


ANSWERS = [
    "; ".join(
        ["permessage-deflate"]
        + (["server_no_context_takeover"] if snct else [])
        + (["client_no_context_takeover"] if cnct else [])
        + ([] if sbits is None else [f"server_max_window_bits={sbits}"])
        + ([] if cbits is None else [f"client_max_window_bits={cbits}"])
    )
    for snct, cnct, sbits, cbits in itertools.product(
        [False, True], [False, True], [None, 8, 9, 15], [None, 8, 9, 15]
    )
]


@pytest.mark.parametrize("answer", ANSWERS)
async def test_client_negotiation(
    autojump_clock: trio.testing.MockClock, answer: str
) -> None:
    """A trio_ws client takes every answer RFC 7692 allows to its offer and
    compresses and inflates with exactly that."""
    ws_end, peer_end = trio.testing.memory_stream_pair()
    handshake = ClientHandshake(parse_uri("ws://example.com/chat"))
    result = None

    async def run_client() -> None:
        nonlocal result
        result = await client_handshake(ws_end, handshake, math.inf)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_client)
        lines, _ = await read_head(peer_end)
        offer = header(lines, "Sec-WebSocket-Extensions")
        assert offer == "permessage-deflate; client_max_window_bits"
        key = header(lines, "Sec-WebSocket-Key")
        assert key is not None
        response = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {generate_accept_token(key.encode()).decode()}\r\n"
            f"Sec-WebSocket-Extensions: {answer}\r\n\r\n"
        )
        await peer_end.send_all(response.encode())
    assert result is not None
    agreed = parse_agreement(answer)
    assert result.extensions == [agreed]
    async with echo_connection(
        "client", deflate=agreed, stream_pair=lambda: (ws_end, peer_end)
    ) as (peer, echo_, _):
        for data in ["hello " * 50, "hello " * 50, b"\x00" * 3000]:
            await peer.send(peer.message(data))
            assert await peer.receive_data() == data
        await peer.close()
    assert len(echo_.received) == 3
