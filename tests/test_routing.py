"""trio_ws.Router: path patterns with parameters, 404 for unknown paths."""

from __future__ import annotations

import pytest
import trio

import trio_ws
from trio_ws.testing import open_connection_pair


def make_router() -> tuple[trio_ws.Router, list[tuple[str, dict[str, str]]]]:
    router = trio_ws.Router()
    calls: list[tuple[str, dict[str, str]]] = []

    @router.route("/rooms/{room}")
    async def room(ws: trio_ws.ServerConnection, **params: str) -> None:
        calls.append(("room", params))
        await ws.send(f"room {params['room']}")

    async def files(ws: trio_ws.ServerConnection, **params: str) -> None:
        calls.append(("files", params))
        await ws.send(params["rest"])

    router.add("/files/{rest:path}", files)
    router.add("/users/{user}/posts/{post}", room)
    return router, calls


@pytest.mark.parametrize(
    ("path", "handler", "params"),
    [
        ("/rooms/lobby", "room", {"room": "lobby"}),
        ("/rooms/lobby?x=1", "room", {"room": "lobby"}),
        ("/rooms/caf%C3%A9", "room", {"room": "café"}),
        ("/rooms/a%2Fb", "room", {"room": "a/b"}),
        ("/files/a/b/c.txt", "files", {"rest": "a/b/c.txt"}),
        ("/users/7/posts/42", "room", {"user": "7", "post": "42"}),
    ],
)
def test_match(path: str, handler: str, params: dict[str, str]) -> None:
    router, _ = make_router()
    found = router.match(path)
    assert found is not None
    assert found[0].__name__ == handler
    assert found[1] == params


@pytest.mark.parametrize(
    "path",
    ["/", "/rooms", "/rooms/", "/rooms/a/b", "/rooms/lobby/", "/files/", "/x/rooms/a"],
)
def test_no_match(path: str) -> None:
    router, _ = make_router()
    assert router.match(path) is None


def test_first_route_wins() -> None:
    router = trio_ws.Router()

    async def first(ws: trio_ws.ServerConnection, **params: str) -> None: ...
    async def second(ws: trio_ws.ServerConnection) -> None: ...

    router.add("/{name}", first)
    router.add("/fixed", second)
    assert router.match("/fixed") == (first, {"name": "fixed"})


def test_literal_characters_are_not_regex() -> None:
    router = trio_ws.Router()

    async def handler(ws: trio_ws.ServerConnection) -> None: ...

    router.add("/a.b+c", handler)
    assert router.match("/a.b+c") is not None
    assert router.match("/aXbbc") is None


@pytest.mark.parametrize(
    ("pattern", "error"),
    [
        ("rooms/{room}", "a route pattern starts with '/': 'rooms/{room}'"),
        ("/rooms/{room", "invalid parameter in route pattern '/rooms/{room'"),
        ("/rooms/{1room}", "invalid parameter in route pattern '/rooms/{1room}'"),
        ("/rooms/{room:int}", "invalid parameter in route pattern '/rooms/{room:int}'"),
        ("/{a}/{a}", "parameter 'a' appears twice in route pattern '/{a}/{a}'"),
    ],
)
def test_invalid_patterns(pattern: str, error: str) -> None:
    router = trio_ws.Router()

    async def handler(ws: trio_ws.ServerConnection) -> None: ...

    with pytest.raises(ValueError, match="^" + __import__("re").escape(error) + "$"):
        router.add(pattern, handler)


async def test_serves_the_matching_handler(autojump_clock: object) -> None:
    router, calls = make_router()
    async with open_connection_pair(
        "/rooms/lobby", handler=router, process_request=router.process_request
    ) as pair:
        assert await pair.client.recv() == "room lobby"
    assert calls == [("room", {"room": "lobby"})]


async def test_unknown_path_gets_404(autojump_clock: object) -> None:
    router, calls = make_router()
    with pytest.raises(trio_ws.InvalidStatus) as info:
        async with open_connection_pair(
            "/nowhere", handler=router, process_request=router.process_request
        ):
            pytest.fail("the connection must not open")
    response = info.value.response
    assert response.status_code == 404
    assert response.reason_phrase == "Not Found"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.body == b"Not found.\n"
    assert calls == []


async def test_unknown_path_without_process_request_closes_1008(
    autojump_clock: object,
) -> None:
    router, calls = make_router()
    async with open_connection_pair("/nowhere", handler=router) as pair:
        with pytest.raises(trio_ws.ConnectionClosedError) as info:
            await pair.client.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1008
        assert info.value.rcvd.reason == "no route for this path"
    assert calls == []


@pytest.mark.parametrize("is_async", [False, True])
async def test_per_route_process_request(
    autojump_clock: object, is_async: bool
) -> None:
    router = trio_ws.Router()
    seen: list[str] = []

    def deny(
        ws: trio_ws.ServerConnection, request: trio_ws.Request
    ) -> trio_ws.Response:
        seen.append(request.path)
        return ws.respond(403, "Forbidden.\n")

    async def deny_async(
        ws: trio_ws.ServerConnection, request: trio_ws.Request
    ) -> trio_ws.Response:
        await trio.sleep(1)
        return deny(ws, request)

    async def handler(ws: trio_ws.ServerConnection) -> None:
        await ws.send("open")

    router.add("/open", handler)
    router.add("/closed", handler, process_request=deny_async if is_async else deny)
    async with open_connection_pair(
        "/open", handler=router, process_request=router.process_request
    ) as pair:
        assert await pair.client.recv() == "open"
    with pytest.raises(trio_ws.InvalidStatus) as info:
        async with open_connection_pair(
            "/closed?q", handler=router, process_request=router.process_request
        ):
            pytest.fail("the connection must not open")
    assert info.value.response.status_code == 403
    assert seen == ["/closed?q"]
    assert trio.current_time() == (1 if is_async else 0)


async def test_route_process_request_may_let_through(autojump_clock: object) -> None:
    router = trio_ws.Router()

    async def handler(ws: trio_ws.ServerConnection, room: str) -> None:
        await ws.send(room)

    router.add("/r/{room}", handler, process_request=lambda ws, request: None)
    async with open_connection_pair(
        "/r/1", handler=router, process_request=router.process_request
    ) as pair:
        assert await pair.client.recv() == "1"


async def test_handler_failure_closes_1011(autojump_clock: object) -> None:
    router = trio_ws.Router()

    @router.route("/boom")
    async def boom(ws: trio_ws.ServerConnection) -> None:
        raise RuntimeError("boom")

    async with open_connection_pair(
        "/boom", handler=router, process_request=router.process_request
    ) as pair:
        with pytest.raises(trio_ws.ConnectionClosedError) as info:
            await pair.client.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1011
