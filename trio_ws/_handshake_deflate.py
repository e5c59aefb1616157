"""permessage-deflate negotiation (RFC 7692 section 7), without I/O.

Role
----

Both sides of the opening handshake negotiate the one extension trio_ws
supports here: the client checks the server's answer
(:func:`_accepted_deflate`, RFC 7692 section 7.1 and RFC 6455 section 4.1,
item 5), the server picks an offer and answers it (:func:`_accept_deflate`,
RFC 6455 section 9.1). ``Sec-WebSocket-Extensions`` values are parsed
against the grammar of RFC 6455 section 9.1, parameters checked against RFC
7692 section 7.1, and the outcome is a
:class:`~trio_ws._extensions.DeflateParams` for the protocol core. wsproto's
extension class isn't used, as its parsing is lax and it refuses 8-bit
windows, which RFC 7692 allows and trio_ws supports.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ._exceptions import InvalidHeader, NegotiationError
from ._extensions import DeflateParams
from ._handshake import _OWS, _QUOTED, _TOKEN, _TOKEN_RE, InvalidRequest, _header_value

if TYPE_CHECKING:
    from ._http import Headers

__all__: list[str] = []

_DEFLATE = "permessage-deflate"
# Parameters in the order wsproto used to answer with them (RFC 7692 7.1).
_DEFLATE_PARAMS = (
    "client_no_context_takeover",
    "server_no_context_takeover",
    "client_max_window_bits",
    "server_max_window_bits",
)

# Asking for client_max_window_bits without a value tells the server that the
# client can use a smaller window if asked to (RFC 7692 section 7.1.2.2).
_DEFLATE_OFFER = f"{_DEFLATE}; client_max_window_bits"

_PARAM_RE = re.compile(
    rf"{_OWS};{_OWS}({_TOKEN})(?:{_OWS}={_OWS}({_TOKEN}|{_QUOTED}))?"
)
_EXTENSION_RE = re.compile(
    rf"({_TOKEN})((?:{_OWS};{_OWS}{_TOKEN}(?:{_OWS}={_OWS}(?:{_TOKEN}|{_QUOTED}))?)*){_OWS}"
)
_UNESCAPE_RE = re.compile(r"\\(.)")

# RFC 7692 section 7.1.2.1: window bits are 8 to 15, without leading zeros.
_WINDOW_BITS_RE = re.compile(r"[89]|1[0-5]")

_ExtensionOffer = tuple[str, list[tuple[str, str | None]]]
_DeflateConfig = dict[str, str | None]


def _parse_extensions(values: list[str]) -> list[_ExtensionOffer]:
    """Parse ``Sec-WebSocket-Extensions`` values into names and parameters.

    Quoted parameter values are unquoted; a parameter without a value has
    ``None``.

    Raises:
        ValueError: If a value doesn't follow RFC 6455 section 9.1.
    """
    extensions: list[_ExtensionOffer] = []
    for value in values:
        pos = 0
        while True:
            # Skip separators, along with any empty list elements.
            while pos < len(value) and value[pos] in " \t,":
                pos += 1
            if pos == len(value):
                break
            match = _EXTENSION_RE.match(value, pos)
            if match is None:
                raise ValueError(f"expected an extension at position {pos}")
            params: list[tuple[str, str | None]] = []
            for param in _PARAM_RE.finditer(match.group(2)):
                name, param_value = param.group(1), param.group(2)
                if param_value is not None and param_value.startswith('"'):
                    param_value = _UNESCAPE_RE.sub(r"\1", param_value[1:-1])
                    # RFC 6455 section 9.1: once unquoted, it must be a token.
                    if not _TOKEN_RE.fullmatch(param_value):
                        raise ValueError(f"quoted value of {name} isn't a token")
                params.append((name, param_value))
            extensions.append((match.group(1), params))
            pos = match.end()
            if pos < len(value) and value[pos] != ",":
                raise ValueError(f"expected a comma at position {pos}")
    return extensions


def _check_deflate(
    params: list[tuple[str, str | None]], *, offer: bool
) -> _DeflateConfig:
    """Check permessage-deflate parameters against RFC 7692 section 7.

    Args:
        params: The parameters of an offer or of an answer.
        offer: Whether they come from a client's offer (where
            ``client_max_window_bits`` may come without a value) or from a
            server's answer.

    Returns:
        The parameters by name, values unquoted.

    Raises:
        ValueError: If a parameter is unknown, repeated or has an invalid
            value.
    """
    config: _DeflateConfig = {}
    for name, value in params:
        if name in config:
            raise ValueError(f"duplicate parameter {name}")
        if name not in _DEFLATE_PARAMS:
            raise ValueError(f"unknown parameter {name}")
        if name.endswith("_no_context_takeover"):
            if value is not None:
                raise ValueError(f"{name} takes no value")
        elif value is None:
            # RFC 7692 7.1.2.2: only the client's offer may leave the client
            # window open ("any size the server asks for").
            if not (offer and name == "client_max_window_bits"):
                raise ValueError(f"{name} needs a value")
        elif not _WINDOW_BITS_RE.fullmatch(value):
            raise ValueError(f"invalid value for {name}: {value}")
        config[name] = value
    return config


def _deflate_params(config: _DeflateConfig) -> DeflateParams:
    """The parameters agreed in a server's answer (RFC 7692 section 7.1)."""
    return DeflateParams(
        server_no_context_takeover="server_no_context_takeover" in config,
        client_no_context_takeover="client_no_context_takeover" in config,
        server_max_window_bits=int(config.get("server_max_window_bits") or 15),
        client_max_window_bits=int(config.get("client_max_window_bits") or 15),
    )


def _accepted_deflate(headers: Headers, *, offered: bool) -> list[DeflateParams]:
    """Check the server's ``Sec-WebSocket-Extensions`` answer.

    Args:
        headers: The headers of the 101 response.
        offered: Whether the client offered permessage-deflate.

    Returns:
        The agreed parameters (at most one item).

    Raises:
        InvalidHeader: If ``Sec-WebSocket-Extensions`` is malformed.
        NegotiationError: If the server accepted an extension that wasn't
            offered, or parameters that RFC 7692 forbids.
    """
    values = headers.get_all("Sec-WebSocket-Extensions")
    try:
        accepted = _parse_extensions(values)
    except ValueError as exc:
        raise InvalidHeader(
            "Sec-WebSocket-Extensions",
            _header_value(headers, "Sec-WebSocket-Extensions"),
        ) from exc
    extensions: list[DeflateParams] = []
    for name, params in accepted:
        # RFC 6455 section 4.1, item 5: only an offered extension may
        # come back, and permessage-deflate was offered once at most.
        if name != _DEFLATE or not offered:
            raise NegotiationError(f"unexpected extension: {name}")
        if extensions:
            raise NegotiationError(f"{name} accepted twice")
        try:
            config = _check_deflate(params, offer=False)
        except ValueError as exc:
            raise NegotiationError(f"invalid {name} response: {exc}") from exc
        extensions.append(_deflate_params(config))
    return extensions


def _accept_deflate(headers: Headers) -> tuple[str | None, list[DeflateParams]]:
    """Accept the first valid permessage-deflate offer, if any.

    Returns:
        The ``Sec-WebSocket-Extensions`` answer (``None`` if nothing was
        accepted) and the agreed parameters.

    Raises:
        InvalidRequest: If ``Sec-WebSocket-Extensions`` is malformed.
    """
    try:
        offers = _parse_extensions(headers.get_all("Sec-WebSocket-Extensions"))
    except ValueError as exc:
        value = _header_value(headers, "Sec-WebSocket-Extensions")
        raise InvalidRequest(
            400, str(InvalidHeader("Sec-WebSocket-Extensions", value))
        ) from exc
    for name, params in offers:
        # Unknown extensions are ignored (RFC 6455 section 9.1).
        if name != _DEFLATE:
            continue
        try:
            config = _check_deflate(params, offer=True)
        except ValueError:
            # RFC 7692 section 7.1: decline this offer, maybe accept another.
            continue
        # The server agrees to every parameter offered. A client window left
        # open by the offer is answered with the largest one, 15 bits.
        if "client_max_window_bits" in config:
            config["client_max_window_bits"] = config["client_max_window_bits"] or "15"
        answer = [_DEFLATE]
        for param in _DEFLATE_PARAMS:
            if param in config:
                value = config[param]
                answer.append(param if value is None else f"{param}={value}")
        return "; ".join(answer), [_deflate_params(config)]
    return None, []
