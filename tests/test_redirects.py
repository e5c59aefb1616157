"""Redirects on connect: the rules of ``_redirects``, then ``connect`` following them.

Servers are scripted over memory streams (``Network`` of ``conftest``)
or are ``serve`` itself with a ``process_request`` that redirects, so that
everything runs under ``autojump_clock`` with exact virtual times.
"""

from __future__ import annotations

import importlib.util
import pathlib
import ssl
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import InvalidRedirect, InvalidStatus, InvalidURI, Request, Response
from trio_ws._http import Headers
from trio_ws._redirects import Redirects
from trio_ws._uri import parse_uri

from .test_client import read_request, switching_protocols
from .test_server import echo, receive_all, start, tls_contexts

if TYPE_CHECKING:
    from .conftest import MemoryListener, Network


def redirect(status: int, *locations: str, body: bytes = b"") -> Response:
    headers = Headers([("Location", location) for location in locations])
    return Response(status, "Redirect", headers, body)


# --- The rules, without I/O ---------------------------------------------------


def follow(uri: str, response: Response, **options: object) -> Redirects:
    redirects = Redirects(parse_uri(uri), options.get("headers"), 10)  # type: ignore[arg-type]
    assert redirects.follow(response)
    return redirects


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_statuses(status: int) -> None:
    redirects = follow("ws://a.example/x", redirect(status, "ws://b.example:81/y?z"))
    assert str(redirects.uri) == "ws://b.example:81/y?z"


@pytest.mark.parametrize("status", [300, 304, 305, 306, 200, 404, 503])
def test_other_statuses_are_not_redirects(status: int) -> None:
    redirects = Redirects(parse_uri("ws://a/"), None, 10)
    assert not redirects.follow(redirect(status, "ws://b/"))
    assert str(redirects.uri) == "ws://a/"


def test_redirect_status_without_location_is_not_a_redirect() -> None:
    redirects = Redirects(parse_uri("ws://a/"), None, 10)
    assert not redirects.follow(redirect(302))


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/other?q=1", "ws://a.example:8080/other?q=1"),
        ("sibling", "ws://a.example:8080/dir/sibling"),
        ("../up", "ws://a.example:8080/up"),
        ("//b.example/p", "ws://b.example/p"),
        ("?only=query", "ws://a.example:8080/dir/page?only=query"),
        ("http://b.example/p", "ws://b.example/p"),
        ("HTTPS://b.example/p", "wss://b.example/p"),
        ("wss://b.example:443/p", "wss://b.example/p"),
        ("/caf\u00e9", "ws://a.example:8080/caf%C3%A9"),
    ],
)
def test_location_resolved(location: str, expected: str) -> None:
    redirects = follow("ws://a.example:8080/dir/page", redirect(302, location))
    assert str(redirects.uri) == expected


@pytest.mark.parametrize(
    ("location", "msg"),
    [
        ("ftp://b.example/", "scheme isn't ws or wss"),
        ("ws://user@b.example/", "username provided without password"),
        ("ws://b.example/#frag", "fragments aren't allowed"),
        ("ws://b.example:0/", "port 0 isn't a destination"),
    ],
)
def test_invalid_location(location: str, msg: str) -> None:
    redirects = Redirects(parse_uri("ws://a/"), None, 10)
    with pytest.raises(InvalidRedirect) as info:
        redirects.follow(redirect(307, location))
    assert info.value.msg == msg
    assert str(info.value) == f"cannot follow redirect to {location}: {msg}"
    assert isinstance(info.value.__cause__, InvalidURI)


def test_several_locations() -> None:
    redirects = Redirects(parse_uri("ws://a/"), None, 10)
    with pytest.raises(InvalidRedirect) as info:
        redirects.follow(redirect(302, "/b", "/c"))
    assert (
        str(info.value)
        == "cannot follow redirect to ws://a/b: several Location headers"
    )


def test_never_from_wss_to_ws() -> None:
    redirects = Redirects(parse_uri("wss://a/x"), None, 10)
    for location in ("ws://a/x", "http://a/y"):
        with pytest.raises(InvalidRedirect) as info:
            redirects.follow(redirect(301, location))
        assert info.value.msg == "wss:// to ws:// is not allowed"
    assert str(redirects.uri) == "wss://a/x"


def test_ws_to_wss_allowed() -> None:
    assert follow("ws://a/", redirect(301, "wss://a/")).uri.secure


def test_loop() -> None:
    redirects = Redirects(parse_uri("ws://a/1"), None, 10)
    assert redirects.follow(redirect(302, "/2"))
    with pytest.raises(InvalidRedirect) as info:
        redirects.follow(redirect(302, "/1"))
    assert str(info.value) == "cannot follow redirect to ws://a/1: redirect loop"
    # To itself, at once.
    with pytest.raises(InvalidRedirect, match=r"redirect loop$"):
        Redirects(parse_uri("ws://a/"), None, 10).follow(redirect(302, "/"))


@pytest.mark.parametrize("limit", [0, 1, 10])
def test_limit(limit: int) -> None:
    redirects = Redirects(parse_uri("ws://a/0"), None, limit)
    for n in range(1, limit + 1):
        assert redirects.follow(redirect(302, f"/{n}"))
    with pytest.raises(InvalidRedirect) as info:
        redirects.follow(redirect(302, f"/{limit + 1}"))
    assert str(info.value) == (
        f"cannot follow redirect to ws://a/{limit + 1}: more than {limit} redirects"
    )
    assert info.value.response.status_code == 302


def test_credentials_kept_on_the_same_origin() -> None:
    headers = [("Authorization", "Bearer t"), ("Cookie", "c=1"), ("X-Other", "o")]
    redirects = follow("ws://u:p@a:81/x", redirect(302, "/y"), headers=headers)
    assert redirects.uri.user_info == ("u", "p")
    assert redirects.additional_headers == Headers(headers)


@pytest.mark.parametrize(
    "location", ["ws://b:81/", "ws://a:82/", "wss://a:81/", "//b:81/"]
)
def test_credentials_dropped_on_a_change_of_origin(location: str) -> None:
    headers = [
        ("authorization", "Bearer t"),
        ("Cookie", "c=1"),
        ("COOKIE", "c=2"),
        ("X-Other", "o"),
    ]
    redirects = follow("ws://u:p@a:81/x", redirect(302, location), headers=headers)
    assert redirects.uri.user_info is None
    assert list(Headers(redirects.additional_headers or ()).raw_items()) == [
        ("X-Other", "o")
    ]


def test_credentials_stay_dropped_back_on_the_first_origin() -> None:
    headers = [("Authorization", "Bearer t")]
    redirects = follow("ws://u:p@a/x", redirect(302, "ws://b/"), headers=headers)
    assert redirects.follow(redirect(302, "ws://a/again"))
    assert redirects.uri.user_info is None
    assert "Authorization" not in Headers(redirects.additional_headers or ())


def test_location_with_its_own_user_info() -> None:
    redirects = follow("ws://u:p@a/", redirect(302, "ws://v:q@b/"))
    assert redirects.uri.user_info == ("v", "q")


def test_location_with_its_own_user_info_on_the_same_origin() -> None:
    redirects = follow("ws://u:p@a/", redirect(302, "ws://v:q@a/b"))
    assert redirects.uri.user_info == ("v", "q")


def test_invalid_redirect_is_an_invalid_status() -> None:
    exc = InvalidRedirect(redirect(302, "/"), "ws://a/", "redirect loop")
    assert isinstance(exc, InvalidStatus)
    assert isinstance(exc, trio_ws.InvalidHandshake)
    assert exc.args == (exc.response, "ws://a/", "redirect loop")
    # Not retried by reconnect's default policy, unlike a 503.
    assert not trio_ws.retryable(exc)


# --- connect() following them -----------------------------------------------


async def test_howto_example() -> None:
    path = pathlib.Path(__file__).parent.parent / "docs/howto/examples/redirects.py"
    spec = importlib.util.spec_from_file_location("howto_redirects", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Real sockets on 127.0.0.1: a trio-clock guard, no autojump_clock.
    with trio.fail_after(10):
        assert await module.main() == "welcome to /new"


def raw_redirect(status: int, location: str) -> bytes:
    return (
        f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\n"
        "Content-Length: 5\r\n\r\nmoved"
    ).encode()


async def scripted_server(
    network: Network, answers: list[bytes | None], requests: list[bytes]
) -> None:
    """Answer each connection in turn: bytes then EOF, or ``None`` to upgrade."""
    for answer in answers:
        peer = await network.accept()
        request = await read_request(peer)
        requests.append(request)
        if answer is None:
            await peer.send_all(switching_protocols(request))
            await peer.receive_some()  # the client's close frame
        else:
            await peer.send_all(answer)
            # The client hangs up on a redirect: nothing more comes.
            assert await receive_all(peer) == b""
        await peer.aclose()


def head(request: bytes) -> list[bytes]:
    """The request line and headers, without the random key."""
    return [
        line
        for line in request.split(b"\r\n")
        if line and not line.lower().startswith(b"sec-websocket-key")
    ]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_connect_follows(
    status: int, network: Network, nursery: trio.Nursery, autojump_clock: object
) -> None:
    requests: list[bytes] = []
    answers = [raw_redirect(status, "ws://other.example:8080/new?q"), None]
    nursery.start_soon(scripted_server, network, answers, requests)
    async with trio_ws.connect("ws://example.com/old", compression=None) as ws:
        assert ws.request is not None
        assert ws.request.path == "/new?q"
        assert ws.request.headers["Host"] == "other.example:8080"
        assert ws.response is not None
        assert ws.response.status_code == 101
    assert network.addresses == [("example.com", 80), ("other.example", 8080)]
    assert head(requests[0])[:2] == [b"GET /old HTTP/1.1", b"Host: example.com"]
    assert head(requests[1])[:2] == [
        b"GET /new?q HTTP/1.1",
        b"Host: other.example:8080",
    ]
    assert trio.current_time() == 0


async def test_connect_resolves_relative_location(
    network: Network, nursery: trio.Nursery, autojump_clock: object
) -> None:
    requests: list[bytes] = []
    answers = [raw_redirect(302, "../b?x=1"), raw_redirect(307, "c"), None]
    nursery.start_soon(scripted_server, network, answers, requests)
    async with trio_ws.connect("ws://h:81/dir/a"):
        pass
    assert [head(r)[0] for r in requests] == [
        b"GET /dir/a HTTP/1.1",
        b"GET /b?x=1 HTTP/1.1",
        b"GET /c HTTP/1.1",
    ]
    assert network.addresses == [("h", 81)] * 3


async def test_connect_drops_credentials_on_a_change_of_origin(
    network: Network, nursery: trio.Nursery, autojump_clock: object
) -> None:
    requests: list[bytes] = []
    answers = [raw_redirect(302, "/same"), raw_redirect(302, "ws://b/"), None]
    nursery.start_soon(scripted_server, network, answers, requests)
    headers = {"Cookie": "session=1", "X-Trace": "t"}
    async with trio_ws.connect(
        "ws://user:pass@a/", additional_headers=headers, user_agent_header=None
    ):
        pass
    basic = b"Authorization: Basic dXNlcjpwYXNz"
    for request in requests[:2]:
        assert basic in head(request)
        assert b"Cookie: session=1" in head(request)
    assert head(requests[2]) == [
        b"GET / HTTP/1.1",
        b"Host: b",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Version: 13",
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
        b"X-Trace: t",
    ]


async def test_connect_sends_headers_given_as_an_iterator_every_time(
    network: Network, nursery: trio.Nursery, autojump_clock: object
) -> None:
    requests: list[bytes] = []
    answers = [raw_redirect(302, "/b"), None]
    nursery.start_soon(scripted_server, network, answers, requests)
    pairs = iter([("X-Trace", "t")])
    async with trio_ws.connect("ws://h/a", additional_headers=pairs):
        pass
    assert [b"X-Trace: t" in head(request) for request in requests] == [True, True]


async def test_connect_refuses_wss_to_ws(
    nursery: trio.Nursery, listener: MemoryListener, autojump_clock: object
) -> None:
    server_context, client_context = tls_contexts()

    def process_request(ws: trio_ws.ServerConnection, request: Request) -> Response:
        response = ws.respond(301, "Moved\n")
        response.headers["Location"] = "ws://localhost/plain"
        return response

    await start(
        nursery, echo, listener, ssl=server_context, process_request=process_request
    )
    with pytest.raises(InvalidRedirect) as info:
        async with trio_ws.connect("wss://localhost/", ssl=client_context):
            pytest.fail("connected")  # pragma: no cover
    assert str(info.value) == (
        "cannot follow redirect to ws://localhost/plain: wss:// to ws:// is not allowed"
    )
    assert info.value.response.status_code == 301
    assert info.value.response.body == b"Moved\n"
    assert listener.addresses == [("localhost", 443)]


async def test_connect_follows_ws_to_wss(
    nursery: trio.Nursery,
    listener: MemoryListener,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: object,
) -> None:
    server_context, client_context = tls_contexts()
    redirected: list[str] = []

    def process_request(ws: trio_ws.ServerConnection, request: Request) -> None:
        redirected.append(request.path)

    async def handler(ws: trio_ws.ServerConnection) -> None:
        await ws.send("secure")

    # The first connection is answered in clear text by a scripted peer.
    async def plain_server() -> None:
        stream = await listener.accept()
        await read_request(stream)
        await stream.send_all(raw_redirect(308, "wss://localhost:8443/s"))
        await stream.aclose()

    nursery.start_soon(plain_server)
    await trio.testing.wait_all_tasks_blocked()
    await start(
        nursery, handler, listener, ssl=server_context, process_request=process_request
    )
    # ssl= is refused for ws:// URIs, so the default context is made; trust
    # the test CA in it.
    monkeypatch.setattr(ssl, "create_default_context", lambda: client_context)
    async with trio_ws.connect("ws://localhost/") as ws:
        assert await ws.recv() == "secure"
    assert redirected == ["/s"]
    assert listener.addresses == [("localhost", 80), ("localhost", 8443)]


async def test_connect_loop(
    network: Network, nursery: trio.Nursery, autojump_clock: object
) -> None:
    requests: list[bytes] = []
    answers = [raw_redirect(302, "/b"), raw_redirect(302, "/a")]
    nursery.start_soon(scripted_server, network, answers, requests)
    with pytest.raises(InvalidRedirect) as info:
        async with trio_ws.connect("ws://h/a"):
            pytest.fail("connected")  # pragma: no cover
    assert str(info.value) == "cannot follow redirect to ws://h/a: redirect loop"
    assert info.value.response.body == b"moved"
    assert len(requests) == 2


async def test_connect_too_many(
    network: Network, nursery: trio.Nursery, autojump_clock: object
) -> None:
    requests: list[bytes] = []
    answers: list[bytes | None] = [raw_redirect(302, f"/{n + 1}") for n in range(11)]
    nursery.start_soon(scripted_server, network, answers, requests)
    with pytest.raises(InvalidRedirect) as info:
        async with trio_ws.connect("ws://h/0"):
            pytest.fail("connected")  # pragma: no cover
    assert (
        str(info.value) == "cannot follow redirect to ws://h/11: more than 10 redirects"
    )
    # The first request and ten redirects followed.
    assert len(requests) == 11
    assert head(requests[-1])[0] == b"GET /10 HTTP/1.1"


async def test_connect_max_redirects_zero(
    network: Network, nursery: trio.Nursery, autojump_clock: object
) -> None:
    requests: list[bytes] = []
    nursery.start_soon(scripted_server, network, [raw_redirect(302, "/b")], requests)
    with pytest.raises(InvalidRedirect, match=r"ws://h/b: more than 0 redirects$"):
        async with trio_ws.connect("ws://h/a", max_redirects=0):
            pytest.fail("connected")  # pragma: no cover
    assert len(requests) == 1


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 300 Multiple Choices\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n",
    ],
)
async def test_connect_non_redirect_is_invalid_status(
    answer: bytes, network: Network, nursery: trio.Nursery, autojump_clock: object
) -> None:
    requests: list[bytes] = []
    nursery.start_soon(scripted_server, network, [answer], requests)
    with pytest.raises(InvalidStatus) as info:
        async with trio_ws.connect("ws://h/a"):
            pytest.fail("connected")  # pragma: no cover
    assert type(info.value) is InvalidStatus
    assert len(requests) == 1


async def test_connect_invalid_location(
    network: Network, nursery: trio.Nursery, autojump_clock: object
) -> None:
    requests: list[bytes] = []
    answers = [raw_redirect(302, "https://h:99999/")]
    nursery.start_soon(scripted_server, network, answers, requests)
    with pytest.raises(InvalidRedirect) as info:
        async with trio_ws.connect("ws://h/a"):
            pytest.fail("connected")  # pragma: no cover
    assert str(info.value).startswith("cannot follow redirect to https://h:99999/: ")
    assert isinstance(info.value.__cause__, InvalidURI)


async def test_open_timeout_covers_the_chain(
    network: Network, nursery: trio.Nursery, autojump_clock: object
) -> None:
    # Each TCP connection takes 2 s: the third would end at 6 s, past 5 s.
    network.delay = 2
    requests: list[bytes] = []
    answers = [raw_redirect(302, "/b"), raw_redirect(302, "/c")]
    nursery.start_soon(scripted_server, network, answers, requests)
    with pytest.raises(TimeoutError) as info:
        async with trio_ws.connect("ws://h/a", open_timeout=5):
            pytest.fail("connected")  # pragma: no cover
    assert str(info.value) == "timed out while opening the connection"
    assert trio.current_time() == 5
    assert len(requests) == 2


async def test_open_timeout_during_the_last_handshake(
    network: Network, nursery: trio.Nursery, autojump_clock: object
) -> None:
    network.delay = 1
    requests: list[bytes] = []

    async def server() -> None:
        await scripted_server(network, [raw_redirect(302, "/b")], requests)
        peer = await network.accept()  # and never answers
        requests.append(await read_request(peer))

    nursery.start_soon(server)
    with pytest.raises(TimeoutError) as info:
        async with trio_ws.connect("ws://h/a", open_timeout=3):
            pytest.fail("connected")  # pragma: no cover
    assert str(info.value) == "timed out during the opening handshake"
    assert trio.current_time() == 3
    assert len(requests) == 2
    # Every connection of the chain was closed.
    assert await receive_all(network.peers[1]) == b""


async def test_cancelled_before(network: Network) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        async with trio_ws.connect("ws://h/a"):
            pytest.fail("connected")  # pragma: no cover
    assert scope.cancelled_caught
    assert network.peers == []


async def test_cancelled_during_the_chain(
    network: Network, nursery: trio.Nursery, autojump_clock: object
) -> None:
    requests: list[bytes] = []

    async def server() -> None:
        await scripted_server(network, [raw_redirect(302, "/b")], requests)
        peer = await network.accept()
        requests.append(await read_request(peer))

    nursery.start_soon(server)
    with trio.move_on_after(7) as scope:
        async with trio_ws.connect("ws://h/a", open_timeout=None):
            pytest.fail("connected")  # pragma: no cover
    assert scope.cancelled_caught
    assert trio.current_time() == 7
    assert len(requests) == 2
    assert await receive_all(network.peers[1]) == b""


async def test_open_connection_takes_max_redirects(
    network: Network, nursery: trio.Nursery, autojump_clock: object
) -> None:
    requests: list[bytes] = []
    nursery.start_soon(scripted_server, network, [raw_redirect(302, "/b")], requests)
    with pytest.raises(InvalidRedirect):
        await trio_ws.open_connection(nursery, "ws://h/a", max_redirects=0)
    assert len(requests) == 1
