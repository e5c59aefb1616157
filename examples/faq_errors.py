"""Produce the two errors of a connection that dies, as the FAQ quotes them.

A bare-bones server accepts the opening handshake, then either drops the TCP
connection ("drop") or goes silent without reading ("mute"). The client sees
``no close frame received or sent`` in the first case and, once a keepalive
ping goes unanswered, ``sent 1011 (internal error) keepalive ping timeout;
no close frame received`` in the second.

Run ``python examples/faq_errors.py``; add ``--traceback`` to let each error
propagate and see the traceback as Python prints it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import sys

import trio

import trio_ws

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


async def bare_server(behaviour: str, stream: trio.SocketStream) -> None:
    """Complete the opening handshake by hand, then misbehave."""
    request = b""
    while b"\r\n\r\n" not in request:
        request += await stream.receive_some()
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    await stream.send_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    if behaviour == "mute":
        await trio.sleep_forever()  # never reads, so never answers a ping
    await stream.aclose()  # "drop": TCP closes, no close frame


async def receive(
    uri: str, ping_interval: float = 20, ping_timeout: float = 20
) -> None:
    async with trio_ws.connect(
        uri, ping_interval=ping_interval, ping_timeout=ping_timeout
    ) as ws:
        await ws.recv()


async def main(*, catch: bool = True) -> None:
    async with trio.open_nursery() as nursery:
        for behaviour, keepalive in [("drop", 20.0), ("mute", 0.1)]:
            listeners = await nursery.start(
                trio.serve_tcp, functools.partial(bare_server, behaviour), 0
            )
            port = listeners[0].socket.getsockname()[1]
            if not catch:
                await receive(f"ws://localhost:{port}", keepalive, keepalive)
            try:
                await receive(f"ws://localhost:{port}", keepalive, keepalive)
            except trio_ws.ConnectionClosedError as exc:
                print(f"{behaviour}: {type(exc).__name__}: {exc}")
                print(f"{behaviour}: code {exc.code}, cause {exc.__cause__!r}")
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(functools.partial(main, catch="--traceback" not in sys.argv))
