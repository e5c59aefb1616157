"""Keepalive pings: measure latency, tune or turn off the heartbeat.

Both sides answer pings automatically. Each side's heartbeat pings every
``ping_interval`` seconds and fails the connection with 1011 when no pong
comes within ``ping_timeout``; :attr:`~trio_ws.Connection.latency` holds the
last round-trip time. ``ws.ping()`` sends one ping and returns its
round-trip time.
"""

from __future__ import annotations

import functools

import trio

import trio_ws


async def idle(ws: trio_ws.ServerConnection) -> None:
    await ws.wait_closed()  # never sends anything: only pings keep it busy


async def main() -> None:
    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(trio_ws.serve, idle, 0, host="127.0.0.1")
        )
        uri = f"ws://127.0.0.1:{server.port}"

        # A short interval, for the demo; the default is 20 seconds.
        async with trio_ws.connect(uri, ping_interval=0.05, ping_timeout=5) as ws:
            print("latency before any ping:", ws.latency)
            await trio.sleep(0.2)  # a few heartbeats go by
            print("heartbeat measured latency:", ws.latency > 0)
            rtt = await ws.ping()
            print("explicit ping round trip under 1 s:", rtt < 1)

        # No heartbeat at all: an idle connection stays open as long as TCP does.
        async with trio_ws.connect(uri, ping_interval=None) as ws:
            await trio.sleep(0.1)
            print("without heartbeat:", ws.state.name, ws.latency)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
