"""HTTP Basic authentication for ``process_request``: :func:`basic_auth`.

RFC 7617: the client sends ``Authorization: Basic <base64(user:password)>``;
a server that wants credentials answers ``401 Unauthorized`` with
``WWW-Authenticate: Basic realm="...", charset="UTF-8"``. Browsers cannot set
headers on WebSocket requests, but they send ``ws://user:pass@host/`` user info
this way, and so does :func:`trio_ws.connect`.

Comparisons take the same time whichever user or password is tried: both
sides are hashed with SHA-256 (so lengths do not show) and compared with
:func:`hmac.compare_digest`, against every known pair without stopping early.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Final, TypeAlias

if TYPE_CHECKING:
    from ._http import Request, Response
    from ._server import ServerConnection

__all__ = ["basic_auth"]

CheckCredentials: TypeAlias = "Callable[[str, str], bool | Awaitable[bool]]"
AuthProcessRequest: TypeAlias = (
    "Callable[[ServerConnection, Request], Awaitable[Response | None]]"
)

_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _parse_authorization(value: str) -> tuple[str, str] | None:
    """``(user, password)`` from a Basic ``Authorization`` value, or ``None``."""
    scheme, _, token = value.strip().partition(" ")
    # RFC 7617 section 2: the scheme is case-insensitive.
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    # The user-id cannot contain a colon; the password can.
    user, colon, password = decoded.partition(":")
    if not colon:
        return None
    return user, password


def basic_auth(
    credentials: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    *,
    check_credentials: CheckCredentials | None = None,
    realm: str = "trio_ws",
) -> AuthProcessRequest:
    """Build a ``process_request`` that requires HTTP Basic authentication.

    ::

        await trio_ws.serve(
            handler, 8765, process_request=trio_ws.basic_auth({"alice": "s3cr3t"})
        )

    A request without valid credentials gets ``401 Unauthorized`` with the
    header ``WWW-Authenticate: Basic realm="<realm>", charset="UTF-8"`` and a
    plain-text body (``Missing credentials.``, ``Unsupported credentials.`` or
    ``Invalid credentials.``), and no connection opens. On success, the user
    name is stored in :attr:`ServerConnection.username
    <trio_ws.ServerConnection.username>` and the handshake goes on. Known
    credentials are compared in constant time.

    Args:
        credentials: The accepted ``(user, password)`` pairs, or a mapping
            of user names to passwords.
        check_credentials: Instead of ``credentials``, a function (plain or
            async) called as ``check_credentials(user, password)`` that
            returns whether they are valid; it should compare in constant
            time itself.
        realm: The protection space named in ``WWW-Authenticate``.

    Returns:
        An async ``process_request(ws, request)`` for :func:`~trio_ws.serve`
        or for one route of a :class:`~trio_ws.Router`.

    Raises:
        TypeError: Neither or both of ``credentials`` and
            ``check_credentials`` were given.
        ValueError: ``realm`` contains control characters.
    """
    if (credentials is None) == (check_credentials is None):
        msg = "basic_auth() needs credentials or check_credentials, not both"
        raise TypeError(msg)
    if _CONTROL_RE.search(realm):
        msg = "realm must not contain control characters"
        raise ValueError(msg)
    quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
    challenge = f'Basic realm="{quoted}", charset="UTF-8"'
    if credentials is not None:
        pairs = credentials.items() if isinstance(credentials, Mapping) else credentials
        known = [(_digest(user), _digest(password)) for user, password in pairs]

        def check_known(user: str, password: str) -> bool:
            user_digest, password_digest = _digest(user), _digest(password)
            valid = False
            # Every pair is compared, so the time taken tells nothing.
            for known_user, known_password in known:
                same_user = hmac.compare_digest(user_digest, known_user)
                same_password = hmac.compare_digest(password_digest, known_password)
                valid |= same_user & same_password
            return valid

        check: CheckCredentials = check_known
    else:
        assert check_credentials is not None
        check = check_credentials

    async def process_request(
        ws: ServerConnection, request: Request
    ) -> Response | None:
        values = request.headers.get_all("Authorization")
        if not values:
            return _unauthorized(ws, challenge, "Missing credentials.\n")
        parsed = _parse_authorization(values[0]) if len(values) == 1 else None
        if parsed is None:
            return _unauthorized(ws, challenge, "Unsupported credentials.\n")
        user, password = parsed
        valid = check(user, password)
        if inspect.isawaitable(valid):
            valid = await valid
        if not valid:
            return _unauthorized(ws, challenge, "Invalid credentials.\n")
        ws.username = user
        return None

    return process_request


def _unauthorized(ws: ServerConnection, challenge: str, text: str) -> Response:
    response = ws.respond(401, text)
    response.headers["WWW-Authenticate"] = challenge
    return response
