"""Encrypt connections with TLS: a ``wss://`` server and client.

For a test, trustme makes a local certificate authority and a certificate
for ``localhost``; in production the server loads its real certificate and
clients trust the system's authorities (the default when ``ssl`` is None).
"""

from __future__ import annotations

import functools
import ssl

import trio
import trustme

import trio_ws


async def echo(ws: trio_ws.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def main() -> None:
    ca = trustme.CA()
    # Server side: a certificate for localhost, signed by the local CA.
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    # Client side: trust that CA (and only it) instead of the system's.
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_context)

    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(
                trio_ws.serve, echo, 0, host="127.0.0.1", ssl=server_context
            )
        )
        uri = f"wss://localhost:{server.port}"
        async with trio_ws.connect(uri, ssl=client_context) as ws:
            await ws.send("secret")
            print("<", await ws.recv())

        # A client that does not trust the CA fails the TLS handshake.
        try:
            async with trio_ws.connect(uri):
                pass
        except ssl.SSLCertVerificationError as exc:
            print("untrusted:", exc.verify_message)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
