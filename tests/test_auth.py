"""trio_ws.basic_auth: HTTP Basic authentication in process_request."""

from __future__ import annotations

import base64
import functools

import pytest
import trio

import trio_ws
from trio_ws.testing import open_connection_pair


def basic(credentials: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


async def whoami(ws: trio_ws.ServerConnection) -> None:
    await ws.send(f"hello {ws.username}")


async def expect_401(
    process_request: object, headers: object, text: bytes
) -> trio_ws.Response:
    with pytest.raises(trio_ws.InvalidStatus) as info:
        async with open_connection_pair(
            handler=whoami,
            process_request=process_request,  # type: ignore[arg-type]
            additional_headers=headers,  # type: ignore[arg-type]
        ):
            pytest.fail("the connection must not open")
    response = info.value.response
    assert response.status_code == 401
    assert response.reason_phrase == "Unauthorized"
    assert response.headers["WWW-Authenticate"] == (
        'Basic realm="trio_ws", charset="UTF-8"'
    )
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.body == text
    return response


CREDENTIALS = {"alice": "s3cr3t", "bob": "pass:word"}


@pytest.mark.parametrize(
    ("credentials", "user"),
    [(b"alice:s3cr3t", "alice"), (b"bob:pass:word", "bob")],
)
async def test_valid_credentials(
    autojump_clock: object, credentials: bytes, user: str
) -> None:
    auth = trio_ws.basic_auth(CREDENTIALS)
    async with open_connection_pair(
        handler=whoami, process_request=auth, additional_headers=basic(credentials)
    ) as pair:
        assert await pair.client.recv() == f"hello {user}"
        assert pair.server.username == user


async def test_pairs_and_non_ascii(autojump_clock: object) -> None:
    auth = trio_ws.basic_auth([("zoë", "mot de passe"), ("x", "y")])
    headers = basic("zoë:mot de passe".encode())
    async with open_connection_pair(
        handler=whoami, process_request=auth, additional_headers=headers
    ) as pair:
        assert await pair.client.recv() == "hello zoë"


async def test_missing_credentials(autojump_clock: object) -> None:
    await expect_401(trio_ws.basic_auth(CREDENTIALS), None, b"Missing credentials.\n")


@pytest.mark.parametrize(
    "value",
    [
        "Bearer abc",
        "Basic",
        "Basic !!!not-base64",
        "Basic " + base64.b64encode(b"no colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
    ],
)
async def test_unsupported_credentials(autojump_clock: object, value: str) -> None:
    await expect_401(
        trio_ws.basic_auth(CREDENTIALS),
        {"Authorization": value},
        b"Unsupported credentials.\n",
    )


async def test_two_authorization_headers(autojump_clock: object) -> None:
    value = "Basic " + base64.b64encode(b"alice:s3cr3t").decode()
    await expect_401(
        trio_ws.basic_auth(CREDENTIALS),
        [("Authorization", value), ("Authorization", value)],
        b"Unsupported credentials.\n",
    )


@pytest.mark.parametrize(
    "credentials", [b"alice:wrong", b"eve:s3cr3t", b"alice:s3cr3t2", b":"]
)
async def test_invalid_credentials(autojump_clock: object, credentials: bytes) -> None:
    await expect_401(
        trio_ws.basic_auth(CREDENTIALS), basic(credentials), b"Invalid credentials.\n"
    )


async def test_scheme_is_case_insensitive(autojump_clock: object) -> None:
    headers = {"Authorization": "bAsIc " + base64.b64encode(b"alice:s3cr3t").decode()}
    async with open_connection_pair(
        handler=whoami,
        process_request=trio_ws.basic_auth(CREDENTIALS),
        additional_headers=headers,
    ) as pair:
        assert await pair.client.recv() == "hello alice"


@pytest.mark.parametrize("is_async", [False, True])
async def test_check_credentials(autojump_clock: object, is_async: bool) -> None:
    calls: list[tuple[str, str]] = []

    def check(user: str, password: str) -> bool:
        calls.append((user, password))
        return password == user[::-1]

    async def check_async(user: str, password: str) -> bool:
        await trio.sleep(1)
        return check(user, password)

    auth = trio_ws.basic_auth(check_credentials=check_async if is_async else check)
    async with open_connection_pair(
        handler=whoami, process_request=auth, additional_headers=basic(b"abc:cba")
    ) as pair:
        assert await pair.client.recv() == "hello abc"
    await expect_401(auth, basic(b"abc:abc"), b"Invalid credentials.\n")
    assert calls == [("abc", "cba"), ("abc", "abc")]


async def test_realm_is_quoted(autojump_clock: object) -> None:
    auth = trio_ws.basic_auth(CREDENTIALS, realm='my "app" \\ here')
    with pytest.raises(trio_ws.InvalidStatus) as info:
        async with open_connection_pair(handler=whoami, process_request=auth):
            pytest.fail("the connection must not open")
    assert info.value.response.headers["WWW-Authenticate"] == (
        'Basic realm="my \\"app\\" \\\\ here", charset="UTF-8"'
    )


def test_arguments_are_checked() -> None:
    message = "basic_auth() needs credentials or check_credentials, not both"
    with pytest.raises(
        TypeError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        trio_ws.basic_auth()
    with pytest.raises(TypeError):
        trio_ws.basic_auth(CREDENTIALS, check_credentials=lambda u, p: True)
    with pytest.raises(ValueError, match="realm must not contain control characters"):
        trio_ws.basic_auth(CREDENTIALS, realm="a\r\nSet-Cookie: x")


async def test_user_info_in_the_uri_over_tcp() -> None:
    # End to end: connect() turns user info into Basic credentials.
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(
                    trio_ws.serve,
                    whoami,
                    0,
                    host="127.0.0.1",
                    process_request=trio_ws.basic_auth(CREDENTIALS),
                )
            )
            uri = f"ws://alice:s3cr3t@127.0.0.1:{server.port}/"
            async with trio_ws.connect(uri) as ws:
                assert await ws.recv() == "hello alice"
            with pytest.raises(trio_ws.InvalidStatus) as info:
                async with trio_ws.connect(f"ws://127.0.0.1:{server.port}/"):
                    pytest.fail("the connection must not open")
            assert info.value.response.status_code == 401
            await server.aclose()
