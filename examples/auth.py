"""Authenticate clients and answer health checks in ``process_request``.

``process_request`` runs before the upgrade: returning a response answers the
HTTP request with it (401 for a missing token, 200 for a health check) and no
WebSocket connection opens; returning ``None`` goes on with the handshake.
"""

from __future__ import annotations

import functools
import hmac

import trio

import trio_ws

TOKENS = {"s3cr3t": "alice"}


def check_request(
    ws: trio_ws.ServerConnection, request: trio_ws.Request
) -> trio_ws.Response | None:
    if request.path == "/healthz":
        return ws.respond(200, "OK\n")
    authorization = request.headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    for known, user in TOKENS.items():
        # compare_digest: no timing hints about the token.
        if scheme.lower() == "bearer" and hmac.compare_digest(token, known):
            ws.logger.info("authenticated %s", user)
            return None
    response = ws.respond(401, "Missing or invalid token.\n")
    response.headers["WWW-Authenticate"] = 'Bearer realm="trio_ws example"'
    return response


async def hello(ws: trio_ws.ServerConnection) -> None:
    await ws.send("welcome")


async def health_check(port: int) -> bytes:
    """What a load balancer sees: a plain HTTP GET."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        response = b""
        while chunk := await stream.receive_some():
            response += chunk
    return response


async def main() -> None:
    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(
                trio_ws.serve, hello, 0, host="127.0.0.1", process_request=check_request
            )
        )
        uri = f"ws://127.0.0.1:{server.port}/"

        try:
            async with trio_ws.connect(uri):
                pass
        except trio_ws.InvalidStatus as exc:
            print(exc)
            print(exc.response.headers["WWW-Authenticate"])

        headers = {"Authorization": "Bearer s3cr3t"}
        async with trio_ws.connect(uri, additional_headers=headers) as ws:
            print(await ws.recv())

        print((await health_check(server.port or 0)).split(b"\r\n")[0].decode())
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
