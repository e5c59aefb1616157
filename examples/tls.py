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


def server_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """The server's TLS settings: its certificate chain and private key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


def client_context(cafile: str) -> ssl.SSLContext:
    """A client's TLS settings, trusting a private authority instead of the system's."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)


async def main() -> None:
    # For the demo, a local authority and a certificate for localhost, as
    # PEM files (in production: the files your authority gave you).
    ca = trustme.CA()
    certificate = ca.issue_cert("localhost")
    with (
        certificate.private_key_and_cert_chain_pem.tempfile() as pem,
        ca.cert_pem.tempfile() as ca_pem,
    ):
        server_ssl = server_context(pem, pem)
        client_ssl = client_context(ca_pem)

    async with trio.open_nursery() as nursery:
        server: trio_ws.Server = await nursery.start(
            functools.partial(trio_ws.serve, echo, 0, host="127.0.0.1", ssl=server_ssl)
        )
        uri = f"wss://localhost:{server.port}"
        async with trio_ws.connect(uri, ssl=client_ssl) as ws:
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
