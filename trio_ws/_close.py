"""Close frames as users see them: a code, a reason and how they read.

RFC 6455 section 7.4 lists the status codes; :class:`Close` is what
:class:`~trio_ws.ConnectionClosed` carries in ``rcvd`` and ``sent``.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import final

__all__ = ["Close", "CloseCode"]


class CloseCode(enum.IntEnum):
    """Close codes defined by RFC 6455 section 7.4.1 (and the IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


_EXPLANATIONS: dict[int, str] = {
    1000: "OK",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status received [internal]",
    1006: "connection closed abnormally [internal]",
    1007: "invalid frame payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure [internal]",
}

#: Codes a close frame may carry on the wire (RFC 6455 7.4.1 and 7.4.2):
#: 1005, 1006 and 1015 are for local reporting only.
_WIRE_CODES = frozenset(_EXPLANATIONS) - {1005, 1006, 1015}

#: Codes that make a closure "normal" (:class:`~trio_ws.ConnectionClosedOK`).
OK_CODES = frozenset({1000, 1001, 1005})


def is_valid_wire_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame sent by an endpoint."""
    return code in _WIRE_CODES or 3000 <= code < 5000


def explain(code: int) -> str:
    """A short English explanation of ``code``."""
    if 3000 <= code < 4000:
        return "registered"
    if 4000 <= code < 5000:
        return "private use"
    return _EXPLANATIONS.get(code, "unknown")


@final
@dataclasses.dataclass(frozen=True)
class Close:
    """The content of a close frame: a status code and a reason.

    ``str()`` gives the code, its meaning and the reason, for example
    ``1001 (going away) bye``. A close frame without a payload reads as code
    1005 with an empty reason (RFC 6455 section 7.1.5).
    """

    code: int
    reason: str = ""

    def __str__(self) -> str:
        text = f"{self.code} ({explain(self.code)})"
        return f"{text} {self.reason}" if self.reason else text
