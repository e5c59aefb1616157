"""Faster frames for wsproto's frame layer: fewer copies, quicker masking.

Theory of operation
-------------------

wsproto's :class:`~wsproto.frame_protocol.FrameProtocol` is correct but
copies every payload many times: serialising a frame converts it between
``bytes`` and ``bytearray`` around each extension hook, masking and the
header (about six copies), and parsing does the same around each chunk of
payload it hands out. Its mask is applied four bytes apart with
``bytes.translate`` on strided slices, which costs more than the XOR itself
for small payloads.

:class:`FastFrameProtocol` keeps wsproto's parser and state machine (headers,
opcodes, UTF-8, close frames, extension hooks: every decision) and replaces
the places where payload bytes are moved:

* ``_serialize_frame`` runs the extensions' ``frame_outbound`` hooks as
  wsproto does, only when one of them rewrites frames (an extension that
  keeps wsproto's default ``frame_outbound``, or says
  ``transparent_outbound = True``, does not), then builds the frame in one
  allocation with :func:`build_frame`. A client's masking keys come from
  ``os.urandom`` 1 KiB at a time (one system call per 256 frames, each key
  used once, none shared with a forked child), and ``send_data`` is
  wsproto's with fewer steps.
* :class:`FastFrameDecoder` takes each chunk of payload out of wsproto's
  buffer with one copy, unmasks it with :func:`mask`, and hands ``bytes`` to
  the extension hooks without the ``bytearray`` round trips.

One path skips wsproto's parser: :meth:`FastFrameProtocol.receive_whole`
turns the whole, valid one-frame messages at the start of the input into
``str`` or ``bytes`` directly (between messages only; the caller makes sure
no extension but trio_ws's frame filter is in use), with :func:`parse_whole`
(C from ``trio_ws._speedups`` when built, else :func:`py_parse_whole`), and
compressed ones through the filter, called as wsproto's decoder calls it.
Parsing wsproto's way costs about 20 µs per small frame, in generators,
event objects and an incremental UTF-8 decoder; this costs well under 1. It
stops at the first frame that is anything else, or invalid, or not all
there, and leaves it and the rest to wsproto, which then decides (and fails
the connection) exactly as before: a message decoded in one go is valid
UTF-8 exactly when the incremental decoder accepts it.

The bytes on the wire, the frames and the messages produced are exactly
wsproto's: the tests compare both implementations frame by frame, masked and
unmasked, the protocol with and without the whole-message path, and the C
functions with the pure-Python ones.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING, Final, cast

from wsproto.extensions import Extension
from wsproto.frame_protocol import (
    CloseReason,
    Frame,
    FrameDecoder,
    FrameProtocol,
    Opcode,
    ParseFailed,
    RsvBits,
    XorMaskerSimple,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from typing_extensions import Buffer

    from ._extensions import FrameFilter

__all__ = ["FastFrameDecoder", "FastFrameProtocol", "mask", "py_mask"]

#: Up to this size, one XOR of two integers beats four strided translations.
_INT_MASK_MAX: Final = 1024

_TWO_BYTE_LENGTH: Final = struct.Struct("!BBH")
_EIGHT_BYTE_LENGTH: Final = struct.Struct("!BBQ")
_LENGTH16: Final = struct.Struct("!H")
_LENGTH64: Final = struct.Struct("!Q")

# Enum members as module constants: on Python 3.11 reading ``Opcode.TEXT``
# costs about 100 ns, several times a plain global, on every frame.
_TEXT: Final = Opcode.TEXT
_BINARY: Final = Opcode.BINARY
_CONTINUATION: Final = Opcode.CONTINUATION

#: Above any frame's length (2**63 - 1 at most, RFC 6455 5.2).
_NO_LIMIT: Final = 2**63

_RSV1: Final = RsvBits(True, False, False)
_NO_RSV: Final = RsvBits(False, False, False)

#: Masking keys not sent yet: ``os.urandom`` output drawn a block at a time,
#: one system call per 256 frames rather than one per frame (each call costs
#: about as much as building the frame). ``list.pop`` is atomic, so no key
#: goes to two frames, even from two threads.
_KEYS: list[bytes] = []
_KEY_BLOCK: Final = 1024

#: _XOR_TABLES[k] maps every byte b to b ^ k (built on first use: 64 KiB).
_XOR_TABLES: list[bytes] = []


def _xor_tables() -> list[bytes]:
    if not _XOR_TABLES:
        _XOR_TABLES.extend(bytes(b ^ k for b in range(256)) for k in range(256))
    return _XOR_TABLES


def py_mask(data: Buffer, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated (RFC 6455 section 5.3).

    Masking and unmasking are the same operation. This is the pure-Python
    version; :func:`mask` is the C one from ``trio_ws._speedups`` when that
    optional module was built, with exactly the same results.
    """
    n = len(data)  # type: ignore[arg-type]
    if n <= _INT_MASK_MAX:
        if not n:
            return b""
        # Little-endian on both sides, so byte i of data meets key[i % 4].
        pad = int.from_bytes((key * ((n >> 2) + 1))[:n], "little")
        return (int.from_bytes(data, "little") ^ pad).to_bytes(n, "little")
    tables = _xor_tables()
    out = bytearray(data)
    for i in range(4):
        out[i::4] = out[i::4].translate(tables[key[i]])
    return bytes(out)


def _new_keys() -> bytes:
    """Refill :data:`_KEYS` from ``os.urandom``; return one more key."""
    block = os.urandom(_KEY_BLOCK)
    _KEYS.extend([block[i : i + 4] for i in range(4, len(block) - 3, 4)])
    return block[:4]


def _forget_keys() -> None:  # pragma: no cover - runs in forked children
    # A forked child must not send the keys its parent is about to send.
    _KEYS.clear()


if hasattr(os, "register_at_fork"):  # pragma: no branch - not on Windows
    os.register_at_fork(after_in_child=_forget_keys)


def py_build_frame(first: int, payload: Buffer, key: bytes | None) -> bytes:
    """A frame: its first byte ``first``, ``payload``, masked with ``key`` if any.

    This is the pure-Python version; :func:`build_frame` is the C one from
    ``trio_ws._speedups`` when that optional module was built, with exactly
    the same results.
    """
    length = len(payload)  # type: ignore[arg-type]
    mask_bit = 0x80 if key is not None else 0
    if length <= 125:
        header = bytes((first, mask_bit | length))
    elif length <= 0xFFFF:
        header = _TWO_BYTE_LENGTH.pack(first, mask_bit | 126, length)
    else:
        header = _EIGHT_BYTE_LENGTH.pack(first, mask_bit | 127, length)
    if key is not None:
        return b"".join((header, key, mask(payload, key)))
    return b"".join((header, payload))


def _payload_at(
    data: bytes, pos: int, masked: bool, limit: int
) -> tuple[bytes, int] | None:
    """The payload of the frame at ``pos``, unmasked, and where the frame stops.

    ``None`` unless the frame is all there, with the mask bit ``masked`` and
    its length in the fewest bytes (RFC 6455 5.2), at most ``limit``. A
    masked payload follows its 4-byte key.
    """
    end = len(data)
    if end - pos < 2:
        return None
    second = data[pos + 1]
    if bool(second & 0x80) is not masked:
        return None
    length = second & 0x7F
    start = pos + 2
    if length == 126:
        if end - start < 2:
            return None
        (length,) = _LENGTH16.unpack_from(data, start)
        if length <= 125:
            return None
        start += 2
    elif length == 127:
        if end - start < 8:
            return None
        (length,) = _LENGTH64.unpack_from(data, start)
        if length <= 0xFFFF or length >> 63:
            return None
        start += 8
    if length > limit:
        return None
    if masked:
        start += 4
    stop = start + length
    if stop > end:
        return None
    if masked:
        return mask(data[start:stop], data[start - 4 : start]), stop
    return data[start:stop], stop


def py_parse_whole(
    data: bytes, pos: int, masked: bool, limit: int, messages: list[str | bytes]
) -> int:
    """Append the whole one-frame messages at ``data[pos:]`` to ``messages``.

    Each complete frame with FIN set, no reserved bit, opcode text or binary,
    the mask bit ``masked``, a minimal length of at most ``limit``, and (for
    text) valid UTF-8 becomes a ``str`` or ``bytes`` message: what wsproto's
    parser makes of it, without its generators, events and incremental
    decoder. Parsing stops at the first frame that is anything else, or not
    all there.

    This is the pure-Python version; :func:`parse_whole` is the C one from
    ``trio_ws._speedups`` when that optional module was built.

    Returns:
        Where parsing stopped in ``data``.
    """
    append = messages.append
    end = len(data)
    while end - pos >= 2:
        first = data[pos]
        # 0x81 and 0x82: FIN, no reserved bit, text or binary.
        if first != 0x81 and first != 0x82:
            break
        frame = _payload_at(data, pos, masked, limit)
        if frame is None:
            break
        payload, stop = frame
        if first == 0x81:
            try:
                append(payload.decode())
            except UnicodeDecodeError:
                break  # wsproto reports where, and how
        else:
            append(payload)
        pos = stop
    return pos


#: The mask of the data path: C when the optional module was built.
mask: Callable[[Buffer, bytes], bytes]
#: The whole-frame parser and the frame builder: C when the module was built.
parse_whole: Callable[[bytes, int, bool, int, list[str | bytes]], int]
build_frame: Callable[[int, Buffer, bytes | None], bytes]
try:
    from ._speedups import apply_mask as mask, build_frame, parse_whole
except ImportError:  # installed without a C compiler, or not CPython
    mask = py_mask
    parse_whole = py_parse_whole
    build_frame = py_build_frame


class _Masker:
    """Unmask successive chunks of one frame's payload."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def process(self, data: Buffer) -> bytes:
        masked = mask(data, self._key)
        # The next chunk starts where this one stopped in the key.
        shift = len(masked) % 4
        if shift:
            self._key = self._key[shift:] + self._key[:shift]
        return masked


def _transparent(extension: Extension) -> bool:
    """Whether ``extension`` leaves outbound frames as they are."""
    if type(extension).frame_outbound is Extension.frame_outbound:
        return True
    return bool(getattr(extension, "transparent_outbound", False))


class FastFrameDecoder(FrameDecoder):
    """wsproto's frame decoder, moving payload bytes with fewer copies."""

    def parse_header(self) -> bool:
        if not super().parse_header():
            return False
        masker = self.masker
        key = getattr(masker, "_masking_key", None)
        if isinstance(masker, XorMaskerSimple) and key is not None:  # always, today
            self.masker = _Masker(bytes(key))  # type: ignore[assignment]
        return True

    def process_buffer(self) -> Frame | None:
        # The steps and checks of FrameDecoder.process_buffer, in its order.
        if not self.header and not self.parse_header():
            return None
        header = self.header
        masker = self.masker
        opcode = self.effective_opcode
        assert header is not None
        assert masker is not None
        assert opcode is not None

        if len(self.buffer) < self.payload_required:
            return None

        raw = self.buffer.buffer
        start = self.buffer.bytes_used
        size = min(header.payload_len - self.payload_consumed, len(raw) - start)
        if size <= 0 and header.payload_len > 0:
            return None
        with memoryview(raw) as view, view[start : start + size] as chunk:
            unmasked = cast(
                "bytes | bytearray | memoryview",
                masker.process(chunk),  # type: ignore[arg-type]
            )
            # XorMaskerNull returns its input, a view on the buffer.
            payload = unmasked if isinstance(unmasked, bytes) else bytes(unmasked)
        # Both views are released: the buffer may shrink.
        del raw[: start + size]
        self.buffer.bytes_used = 0

        self.payload_consumed += size
        finished = self.payload_consumed == header.payload_len

        for extension in self.extensions:
            result = extension.frame_inbound_payload_data(self, payload)
            if isinstance(result, CloseReason):
                msg = "error in extension"
                raise ParseFailed(msg, result)
            payload = result

        if finished:
            final = b""
            for extension in self.extensions:
                end = extension.frame_inbound_complete(self, header.fin)
                if isinstance(end, CloseReason):
                    msg = "error in extension"
                    raise ParseFailed(msg, end)
                if end is not None:
                    final += end
            if final:
                payload += final
        if type(payload) is not bytes:
            payload = bytes(payload)

        frame = Frame(opcode, payload, finished, header.fin)
        if finished:
            self.header = None
            self.effective_opcode = None
            self.masker = None
        else:
            self.effective_opcode = _CONTINUATION
        return frame


class FastFrameProtocol(FrameProtocol):
    """wsproto's frame protocol with :class:`FastFrameDecoder` and a faster
    serialiser for frames that no extension transforms."""

    def __init__(self, client: bool, extensions: list[Extension]) -> None:
        super().__init__(client, extensions)
        self._frame_decoder = FastFrameDecoder(self.client, self.extensions)
        # The extensions are fixed for the connection's life: decided once,
        # not per frame.
        self._plain = all(_transparent(extension) for extension in self.extensions)
        #: The frame filter, when it inflates (permessage-deflate) and is the
        #: only extension: :meth:`receive_whole` then parses whole compressed
        #: frames too, with it.
        self.inflater: FrameFilter | None = None

    def receive_whole(
        self, data: Buffer, limit: int, messages: list[str | bytes]
    ) -> Buffer:
        """Parse the whole one-frame messages at the start of ``data``.

        Between messages only (none in progress, no frame begun), the
        frames :func:`parse_whole` accepts go to ``messages``, as wsproto
        would have made them: the caller makes sure no extension but
        trio_ws's frame filter is in use, which passes such frames unchanged.
        With :attr:`inflater` set, so do whole compressed frames.

        Returns:
            The rest of ``data``, for :meth:`receive_bytes`: wsproto decides
            about it, in order. Bytes wsproto had buffered between frames (a
            header cut between two reads) are taken first.

        Raises:
            ParseFailed: A compressed frame is invalid, as wsproto would
                have found.
        """
        decoder = self._frame_decoder
        if decoder.header is not None or self._message_decoder.opcode is not None:
            return data
        pending = decoder.buffer.buffer
        if pending:
            data = b"".join((pending, data))
            del pending[:]
        elif type(data) is not bytes:
            data = bytes(data)
        masked = not self.client
        pos = parse_whole(data, 0, masked, limit, messages)
        if self.inflater is not None:
            while pos < len(data):
                after = self._inflate_whole(data, pos, messages)
                if after == pos:
                    break
                pos = parse_whole(data, after, masked, limit, messages)
        if pos == len(data):
            return b""
        return memoryview(data)[pos:] if pos else data

    def _inflate_whole(self, data: bytes, pos: int, messages: list[str | bytes]) -> int:
        """Parse the compressed one-frame message at ``pos`` if it is all there.

        The frame filter sees it as wsproto would show it (header, the whole
        payload, the end) and the text is decoded at once as wsproto does:
        same calls, same inflater state, same errors.

        Returns:
            Where the frame stops, or ``pos`` to leave it to wsproto.
        """
        first = data[pos]
        # 0xC1 and 0xC2: FIN, RSV1 (compressed), text or binary.
        if first != 0xC1 and first != 0xC2:
            return pos
        # The filter limits the inflated size, not this one.
        frame = _payload_at(data, pos, not self.client, _NO_LIMIT)
        if frame is None:
            return pos
        payload, stop = frame
        inflater = self.inflater
        assert inflater is not None
        opcode = _TEXT if first == 0xC1 else _BINARY
        claimed = inflater.frame_inbound_header(self, opcode, _RSV1, len(payload))
        if isinstance(claimed, CloseReason):  # pragma: no cover - see FrameFilter
            return pos  # refused on its header: wsproto does it again, and fails
        inflated = inflater.frame_inbound_payload_data(self, payload)
        if isinstance(inflated, CloseReason):
            msg = "error in extension"
            raise ParseFailed(msg, inflated)
        tail = inflater.frame_inbound_complete(self, True)
        if isinstance(tail, CloseReason):
            msg = "error in extension"
            raise ParseFailed(msg, tail)
        if tail:
            inflated += tail
        if first == 0xC2:
            messages.append(inflated)
            return stop
        try:
            messages.append(inflated.decode())
        except UnicodeDecodeError as exc:
            raise ParseFailed(str(exc), CloseReason.INVALID_FRAME_PAYLOAD_DATA)  # noqa: B904
        return stop

    def send_data(self, payload: object = b"", fin: bool = True) -> bytearray:
        # wsproto's send_data, with fewer steps.
        if isinstance(payload, str):
            opcode = _TEXT
            payload = payload.encode()
        elif isinstance(payload, (bytes, bytearray, memoryview)):
            opcode = _BINARY
        else:
            msg = "Must provide bytes or text"
            raise TypeError(msg)
        outbound = self._outbound_opcode
        if outbound is None:
            if not fin:
                self._outbound_opcode = opcode
        elif outbound is not opcode:
            msg = "Data type mismatch inside message"
            raise TypeError(msg)
        else:
            opcode = _CONTINUATION
            if fin:
                self._outbound_opcode = None
        return self._serialize_frame(opcode, payload, fin)

    def _serialize_frame(
        self,
        opcode: Opcode,
        payload: bytes | bytearray | memoryview = b"",
        fin: bool = True,
    ) -> bytearray:
        if not isinstance(payload, (bytes, bytearray)):
            payload = bytes(payload)
        first = 0x80 | opcode if fin else int(opcode)
        if not self._plain:
            # wsproto's steps: each extension may rewrite the frame, last
            # one first, and the control frame check comes after them.
            rsv = _NO_RSV
            for extension in reversed(self.extensions):
                rsv, payload = extension.frame_outbound(
                    self, opcode, rsv, bytes(payload), fin
                )
            first |= rsv.rsv1 << 6 | rsv.rsv2 << 5 | rsv.rsv3 << 4
        if len(payload) > 125 and opcode.iscontrol():
            msg = "payload too long for control frame"
            raise ValueError(msg)
        if self.client:
            # RFC 6455 5.3: a fresh, unpredictable key for every frame.
            try:
                key = _KEYS.pop()
            except IndexError:
                key = _new_keys()
            return build_frame(first, payload, key)  # type: ignore[return-value]
        return build_frame(first, payload, None)  # type: ignore[return-value]
