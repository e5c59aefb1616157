"""Sans-I/O core of a WebSocket connection, around wsproto's frame layer.

Theory of operation
-------------------

:class:`Protocol` takes the bytes read from the network (:meth:`receive_data`,
:meth:`receive_eof`) and the application's requests (:meth:`send_message`,
:meth:`send_ping`, :meth:`send_close`, ...). It produces the messages and pongs
received (:meth:`take_messages`, :meth:`take_pongs`) and the bytes to write
(:meth:`data_to_send`). It never performs I/O; ``_connection.py`` does.

wsproto's :class:`~wsproto.frame_protocol.FrameProtocol` parses and serialises
frames and validates UTF-8 incrementally (RFC 6455 section 8.1, so invalid
text fails as soon as the bad byte arrives). trio_ws plugs one extension into
it, :class:`~trio_ws._extensions.FrameFilter`, which checks message
sequencing, reserved bits and ``max_size`` ahead of wsproto and applies
permessage-deflate with trio_ws's own bounded code; close frames are
validated here (:func:`parse_close`). ``_frames.py`` subclasses wsproto's
frame layer to move payload bytes with fewer copies and mask them faster,
and parses the common frame itself: a whole one-frame text or binary message
that breaks no rule, when no message is in progress and no extension but
the filter is in use (it would pass such a frame unchanged, or inflate it as
it would inside wsproto). Every other frame, and any frame that breaks a
rule, is left to wsproto, in order.
Every decision about the connection's state lives here, following these
rules:

1. The state goes OPEN -> CLOSING -> CLOSED. CLOSING starts when a close frame
   is sent or received; CLOSED when the transport is gone.
2. Data frames, pings and pongs are sent only while OPEN (RFC 6455 5.5.1: no
   data after a close frame). A close frame is sent at most once.
3. A close frame received while OPEN is echoed at once with the same payload
   (RFC 6455 5.5.1); parsing stops after a close frame (7.1.1).
4. A ping received while OPEN is answered with a pong carrying its payload
   (5.5.2), queued in :meth:`data_to_send` in arrival order.
5. A protocol violation *fails* the connection (7.1.7): a close frame with
   1002, 1007 or 1009 is queued (unless one was sent already), parsing stops,
   buffered fragments are dropped, and :attr:`failed` tells the I/O layer to
   close the transport once the close frame is written. Messages completed
   before the violation stay available.
6. After the closing handshake the server closes the transport first
   (7.1.1); the client waits for that EOF.
7. ``max_size`` bounds each incoming message, checked against frame headers
   before the payload is read, and against the decompressed size, inflating
   at most one byte past it. Fragments are gathered in one buffer, so a
   message takes about its size in memory however it is fragmented.
8. A received close frame may carry any code trio_ws may send (RFC 6455 7.4
   and the IANA registry); anything else is 1002, a reason that is not UTF-8
   1007.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final, cast, final

from wsproto.frame_protocol import (
    CloseReason,
    Frame,
    Opcode,
    ParseFailed,
)

from ._close import Close, is_valid_wire_code
from ._exceptions import (
    ConnectionClosed,
    PayloadTooBig,
    ProtocolError,
    WebSocketError,
    connection_closed,
)
from ._extensions import DeflateParams, FrameFilter, PerMessageDeflate
from ._frames import FastFrameProtocol

if TYPE_CHECKING:
    from typing_extensions import Buffer
    from wsproto.extensions import Extension

__all__ = ["Protocol", "State"]

#: Close frames carry at most 125 bytes: 2 for the code, 123 for the reason.
_MAX_REASON_BYTES: Final = 123


class State(enum.IntEnum):
    """The state of a WebSocket connection (RFC 6455 sections 4 and 7)."""

    #: The opening handshake is in progress.
    CONNECTING = 0
    #: Messages flow both ways.
    OPEN = 1
    #: A close frame was sent or received; the closing handshake is in progress.
    CLOSING = 2
    #: The TCP connection is closed.
    CLOSED = 3


# Enum members as module constants, for the per-message paths: on Python
# 3.11 reading ``State.OPEN`` or ``Opcode.TEXT`` costs about 100 ns, several
# times a plain global.
_OPEN: Final = State.OPEN
_TEXT: Final = Opcode.TEXT
_BINARY: Final = Opcode.BINARY
_PING: Final = Opcode.PING
_PONG: Final = Opcode.PONG


class _Frames(FastFrameProtocol):
    """wsproto's frame layer (payloads moved by ``_frames``), with trio_ws's
    validation of close frames."""

    def _process_close(self, frame: Frame) -> Frame:
        payload = frame.payload
        assert isinstance(payload, (bytes, bytearray))
        close = parse_close(bytes(payload))
        return frame._replace(payload=(close.code, close.reason))


def parse_close(payload: bytes) -> Close:
    """Read the payload of a received close frame (RFC 6455 5.5.1, 7.4).

    Raises:
        ParseFailed: The payload is 1 byte long, carries a code that may not
            be sent (1002), or a reason that is not UTF-8 (1007).
    """
    if not payload:
        return Close(1005, "")  # RFC 6455 7.1.5: no status code
    if len(payload) == 1:
        msg = "close frame with a 1-byte payload"
        raise ParseFailed(msg)
    code = int.from_bytes(payload[:2], "big")
    if not is_valid_wire_code(code):
        msg = f"close frame with invalid code {code}"
        raise ParseFailed(msg)
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError as exc:
        msg = f"close frame with invalid UTF-8 in its reason: {exc}"
        raise ParseFailed(msg, CloseReason.INVALID_FRAME_PAYLOAD_DATA) from None
    return Close(code, reason)


@final
class Protocol:
    """The state machine of one open WebSocket connection.

    Args:
        client: Whether this is the client side (it masks its frames).
        extensions: Negotiated extensions, ready for wsproto.
        max_size: The largest incoming message in bytes, or ``None``.
    """

    def __init__(
        self,
        *,
        client: bool,
        extensions: Sequence[Extension | DeflateParams] = (),
        max_size: int | None = 2**20,
    ) -> None:
        self.client = client
        self.max_size = max_size
        deflate: PerMessageDeflate | None = None
        chain: list[Extension] = []
        for extension in extensions:
            if isinstance(extension, DeflateParams):
                # The handshake's agreement; trio_ws compresses and inflates
                # with its own code, not wsproto's (see _extensions).
                deflate = PerMessageDeflate(extension, client=client)
            else:
                chain.append(extension)
        self._filter = FrameFilter(deflate, max_size)
        #: Up to which size whole one-frame messages skip wsproto's parser
        #: (``_frames.FastFrameProtocol.receive_whole``), or ``None``: only
        #: the frame filter may see inbound frames, as it passes these
        #: unchanged (and inflates compressed ones the same way).
        self._whole_limit: int | None = None
        if not chain:
            self._whole_limit = 2**63 if max_size is None else max_size
        chain.append(self._filter)
        self._frames = _Frames(client, chain)
        if self._whole_limit is not None and deflate is not None:
            self._frames.inflater = self._filter

        self.state = State.OPEN
        #: Close frame received from the peer, if any.
        self.close_rcvd: Close | None = None
        #: Close frame sent (queued) to the peer, if any.
        self.close_sent: Close | None = None
        #: Whether the close frame was received before ours was sent.
        self.close_rcvd_then_sent: bool | None = None
        #: The error that failed the connection: a protocol violation, or a
        #: transport error or EOF before the closing handshake ended.
        self.failure: BaseException | None = None
        #: Whether the connection was failed (rule 5): close the transport.
        self.failed = False

        self._parsing = True
        self._out: list[bytes | bytearray] = []
        self._messages: list[str | bytes] = []
        self._pongs: list[bytes] = []
        self._fragments: bytearray | None = None
        self._sending_fragments = False

    # --- State -------------------------------------------------------------

    @property
    def handshake_done(self) -> bool:
        """Whether close frames were both sent and received."""
        return self.close_rcvd is not None and self.close_sent is not None

    @property
    def close_code(self) -> int | None:
        """RFC 6455 7.1.5: the received code, or 1006; ``None`` until CLOSED."""
        if self.state is not State.CLOSED:
            return None
        return 1006 if self.close_rcvd is None else self.close_rcvd.code

    @property
    def close_reason(self) -> str | None:
        """RFC 6455 7.1.6: the received reason, or ``""``; ``None`` until CLOSED."""
        if self.state is not State.CLOSED:
            return None
        return "" if self.close_rcvd is None else self.close_rcvd.reason

    def closed_exception(self) -> ConnectionClosed:
        """A new exception describing the closure, chained to its cause."""
        exc = connection_closed(
            self.close_rcvd, self.close_sent, self.close_rcvd_then_sent
        )
        exc.__cause__ = self.failure
        return exc

    # --- Receiving -----------------------------------------------------------

    def receive_data(self, data: Buffer) -> None:
        """Feed bytes read from the network.

        Completed messages go to :meth:`take_messages`, pongs to
        :meth:`take_pongs`, automatic replies to :meth:`data_to_send`.
        """
        if not self._parsing:
            return  # after a close frame or a failure, input is ignored (7.1.1)
        frames = self._frames
        try:
            if self._whole_limit is not None:
                data = frames.receive_whole(data, self._whole_limit, self._messages)
                if not data:
                    return
            frames.receive_bytes(data)  # type: ignore[arg-type]
            for frame in frames.received_frames():
                opcode = frame.opcode
                payload = frame.payload
                if opcode is _TEXT or opcode is _BINARY:
                    # wsproto reports every frame (and every chunk of a
                    # frame) of a message with the message's opcode and
                    # decodes text incrementally.
                    self._receive_data(cast("str | bytes", payload), frame)
                elif opcode is _PING:
                    if self.state is _OPEN:
                        self._out.append(frames.pong(payload))  # type: ignore[arg-type]
                elif opcode is _PONG:
                    self._pongs.append(bytes(payload))  # type: ignore[arg-type]
                else:
                    # wsproto gives a close frame's payload as (code, reason).
                    code, reason = cast("tuple[int, str]", payload)
                    self._receive_close(Close(int(code), reason))
        except ParseFailed as exc:
            self._fail_parse(exc)

    def _receive_data(self, payload: str | bytes, frame: Frame) -> None:
        fragments = self._fragments
        if frame.message_finished:
            if fragments is not None:
                self._fragments = None
                if isinstance(payload, str):
                    # Validated by wsproto already, fragment by fragment.
                    fragments += payload.encode()
                    payload = fragments.decode()
                else:
                    fragments += payload
                    payload = bytes(fragments)
            self._messages.append(payload)
        elif payload:
            # One buffer, not a list of parts: memory stays close to
            # max_size however many fragments make up the message. Text
            # is kept in UTF-8, where it is most compact.
            if fragments is None:
                fragments = self._fragments = bytearray()
            fragments += payload.encode() if isinstance(payload, str) else payload

    def _receive_close(self, close: Close) -> None:
        self.close_rcvd = close
        self._parsing = False
        self._fragments = None
        if self.state is State.OPEN:
            # Echo the close frame (RFC 6455 5.5.1); a frame without a status
            # code reads as 1005 and is echoed without one.
            self.close_rcvd_then_sent = True
            self._queue_close(close)
        else:
            self.close_rcvd_then_sent = False

    def _fail_parse(self, exc: ParseFailed) -> None:
        code = int(exc.code)
        error: WebSocketError
        if code == CloseReason.MESSAGE_TOO_BIG:
            error = PayloadTooBig(
                f"message over {self.max_size} bytes "
                f"(at least {self._filter.exceeded} bytes)"
            )
            reason = f"message over {self.max_size} bytes"
        else:
            # The frame filter says what it refused; wsproto only reports
            # "error in extension".
            reason = self._filter.error or str(exc)
            error = ProtocolError(reason)
        error.__cause__ = exc
        self.fail(code, reason, cause=error)

    def receive_eof(self) -> None:
        """The peer closed the transport (EOF)."""
        if not self.handshake_done and self.failure is None:
            self.failure = EOFError("connection closed without a close frame")
        self.connection_lost()

    def connection_lost(self, exc: BaseException | None = None) -> None:
        """The transport is closed, by EOF, by an error ``exc``, or by us."""
        if exc is not None and self.failure is None and not self.handshake_done:
            self.failure = exc
        self.state = State.CLOSED
        self._parsing = False
        self._fragments = None

    def take_messages(self) -> list[str | bytes]:
        """Return and forget the messages completed since the last call."""
        messages = self._messages
        if messages:
            self._messages = []
        return messages

    def take_pongs(self) -> list[bytes]:
        """Return and forget the payloads of pongs received since the last call."""
        pongs = self._pongs
        if pongs:
            self._pongs = []
        return pongs

    # --- Sending -------------------------------------------------------------

    @property
    def has_data_to_send(self) -> bool:
        """Whether :meth:`data_to_send` has bytes to give."""
        return bool(self._out)

    def data_to_send(self) -> bytes | bytearray:
        """Return and forget the bytes to write, in order (may be empty)."""
        out = self._out
        if not out:
            return b""
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)

    def _check_open(self) -> None:
        if self.state is not _OPEN:
            raise self.closed_exception()

    def send_message(
        self, data: str | Buffer, *, fin: bool = True, compress: bool = True
    ) -> None:
        """Queue one frame of a text (``str``) or binary message.

        With ``fin=False`` the message goes on in later calls with data of the
        same type (continuation frames, RFC 6455 5.4). ``compress=False`` on
        the first frame sends the whole message uncompressed (RSV1 clear) when
        permessage-deflate was negotiated; it changes nothing otherwise.

        Raises:
            ConnectionClosed: The connection is not OPEN.
            TypeError: ``data`` does not match the message being fragmented.
        """
        if self.state is not _OPEN:  # _check_open, inlined: per message
            raise self.closed_exception()
        if not isinstance(data, (str, bytes)):
            data = bytes(data)
        if not self._sending_fragments:
            self._filter.compress = compress
        self._out.append(self._frames.send_data(data, fin))
        self._sending_fragments = not fin

    @property
    def sending_fragments(self) -> bool:
        """Whether a fragmented message is being sent."""
        return self._sending_fragments

    def send_ping(self, data: Buffer) -> None:
        """Queue a ping (at most 125 bytes of payload)."""
        self._check_open()
        self._out.append(self._frames.ping(control_payload(data)))

    def send_pong(self, data: Buffer) -> None:
        """Queue an unsolicited pong (at most 125 bytes of payload)."""
        self._check_open()
        self._out.append(self._frames.pong(control_payload(data)))

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (RFC 6455 7.1.2).

        Raises:
            ConnectionClosed: A close frame was sent already, or the
                connection is closed.
            ValueError: ``code`` may not be sent, or ``reason`` is over 123
                bytes in UTF-8.
        """
        check_close(code, reason)
        if self.close_sent is not None or self.state is State.CLOSED:
            raise self.closed_exception()
        if self.close_rcvd is not None:  # pragma: no cover - echoed on receipt
            raise self.closed_exception()
        self.close_rcvd_then_sent = None
        self._queue_close(Close(code, reason))

    def fail(self, code: int, reason: str = "", *, cause: BaseException | None) -> None:
        """Fail the connection (RFC 6455 7.1.7): close frame, then close TCP.

        Args:
            code: The close code to send, unless a close frame was sent.
            reason: The reason to send with it (truncated to 123 bytes).
            cause: The error that failed the connection, for ``__cause__``.
        """
        if self.failure is None and not self.handshake_done:
            self.failure = cause
        if self.state is State.OPEN and self.close_sent is None:
            self._queue_close(Close(code, _truncate(reason)))
        self.failed = True
        self._parsing = False
        self._fragments = None

    def _queue_close(self, close: Close) -> None:
        code: int | None = None if close.code == 1005 else close.code
        self._out.append(self._frames.close(code, close.reason or None))
        self.close_sent = close
        self.state = State.CLOSING


def check_close(code: int, reason: str) -> None:
    """Raise :exc:`ValueError` if a close frame cannot carry ``code`` and ``reason``."""
    if not is_valid_wire_code(code):
        msg = f"close code {code} may not be sent in a close frame"
        raise ValueError(msg)
    if len(reason.encode()) > _MAX_REASON_BYTES:
        msg = f"close reason is over {_MAX_REASON_BYTES} bytes in UTF-8"
        raise ValueError(msg)


def _truncate(reason: str) -> str:
    return reason.encode()[:_MAX_REASON_BYTES].decode(errors="ignore")


def control_payload(data: Buffer | Iterable[int]) -> bytes:
    """``data`` as the payload of a ping or pong.

    Raises:
        ValueError: The payload is over 125 bytes (RFC 6455 section 5.5).
    """
    payload = bytes(data)
    if len(payload) > 125:
        msg = "ping and pong payloads are at most 125 bytes"
        raise ValueError(msg)
    return payload
