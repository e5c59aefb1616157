"""The frame filter trio_ws plugs into wsproto, and permessage-deflate.

Theory of operation
-------------------

wsproto's frame decoder lets extensions see every frame header before its
payload is read, then every chunk of payload as it arrives, then the end of
each frame. :class:`FrameFilter` is the one extension trio_ws gives it. It
enforces, in this order, for every data frame:

1. Message sequencing (RFC 6455 5.4): a continuation frame needs a message in
   progress, a text or binary frame needs none. wsproto checks this too, but
   only after the payload went through the extensions, where it could be
   misread as compressed data or counted towards the previous message.
2. Reserved bits (RFC 6455 5.2, RFC 7692 6): RSV1 only on the first frame of
   a message and only when permessage-deflate was negotiated; never on
   control frames; RSV2 and RSV3 never (wsproto fails frames whose bits no
   extension claimed).
3. ``max_size``: an uncompressed frame is refused on its header, before a byte
   of payload is read; a compressed one is inflated at most one byte past the
   limit, so a small payload cannot make trio_ws allocate a huge one.

wsproto may parse a header several times while its masking key trickles in,
so :meth:`FrameFilter.frame_inbound_header` only derives state that is the
same on every pass; the message state moves at the end of a frame.

:class:`PerMessageDeflate` implements RFC 7692 with :mod:`zlib`, replacing
wsproto's class of the same name, which inflates without a bound, loses the
compression state when a control frame arrives between the fragments of a
compressed message, and cannot compress with an 8-bit window. zlib refuses
8-bit windows for raw deflate streams, so trio_ws compresses with Huffman
coding only (no back-references, valid for any window) when it must keep to
8 bits, and inflates with at least 9 bits, as the zlib manual advises for
data from zlib-based peers that asked for 8.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Final, final

from wsproto.extensions import Extension
from wsproto.frame_protocol import (
    CloseReason,
    FrameDecoder,
    FrameProtocol,
    Opcode,
    RsvBits,
)

__all__ = ["DeflateParams", "FrameFilter", "PerMessageDeflate"]

#: RFC 7692 7.2.1: a sync flush ends with this empty stored block, which the
#: sender removes from each message and the receiver appends again.
_TAIL: Final = b"\x00\x00\xff\xff"

_NO_RSV: Final = RsvBits(False, False, False)

# Enum members as module constants: on Python 3.11 reading ``Opcode.TEXT``
# costs about 100 ns, several times a plain global, on every frame.
_TEXT: Final = Opcode.TEXT
_CONTINUATION: Final = Opcode.CONTINUATION


@final
@dataclasses.dataclass(frozen=True)
class DeflateParams:
    """The agreed parameters of permessage-deflate (RFC 7692 section 7.1)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15


@final
class PerMessageDeflate:
    """The compression contexts of one endpoint (RFC 7692 section 7.2).

    Args:
        params: The agreed parameters.
        client: Whether this endpoint is the client.
    """

    def __init__(self, params: DeflateParams, *, client: bool) -> None:
        self.params = params
        if client:
            self._local_bits = params.client_max_window_bits
            self._remote_bits = params.server_max_window_bits
            self._local_reset = params.client_no_context_takeover
            self._remote_reset = params.server_no_context_takeover
        else:
            self._local_bits = params.server_max_window_bits
            self._remote_bits = params.client_max_window_bits
            self._local_reset = params.server_no_context_takeover
            self._remote_reset = params.client_no_context_takeover
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None

    def compress(self, data: bytes, *, fin: bool) -> bytes:
        """Compress one frame of a message; ``fin`` ends the message."""
        compressor = self._compressor
        if compressor is None:
            if self._local_bits == 8:
                compressor = zlib.compressobj(
                    zlib.Z_DEFAULT_COMPRESSION,
                    zlib.DEFLATED,
                    -9,
                    strategy=zlib.Z_HUFFMAN_ONLY,
                )
            else:
                compressor = zlib.compressobj(
                    zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self._local_bits
                )
            self._compressor = compressor
        out = compressor.compress(data)
        if fin:
            out += compressor.flush(zlib.Z_SYNC_FLUSH)
            out = out[: -len(_TAIL)]
            if self._local_reset:
                self._compressor = None
        return out

    def decompress(self, data: bytes, max_length: int) -> bytes:
        """Inflate a chunk of a message, at most ``max_length`` bytes (0: all).

        Raises:
            zlib.error: ``data`` is not valid deflate data.
        """
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = zlib.decompressobj(-max(self._remote_bits, 9))
            self._decompressor = decompressor
        out = decompressor.decompress(data, max_length)
        if decompressor.unused_data:
            # Data after a final block (BFINAL) inside a message.
            msg = "data after the end of the deflate stream"
            raise zlib.error(msg)
        return out

    def finish(self, max_length: int) -> bytes:
        """End an inbound message: inflate what the sender's flush left.

        Raises:
            zlib.error: The message is not valid deflate data.
        """
        decompressor = self._decompressor
        assert decompressor is not None  # decompress() ran for this message
        out = decompressor.decompress(_TAIL, max_length)
        # A message ending with a final block (RFC 7692 7.2.3.3) ends the
        # context too: the tail appended above is then left unused.
        if self._remote_reset or decompressor.eof:
            self._decompressor = None
        return out


@final
class FrameFilter(Extension):
    """Sequencing, reserved bits, ``max_size`` and compression of frames.

    Args:
        deflate: permessage-deflate, if negotiated.
        max_size: The largest incoming message in bytes, or ``None``.
    """

    name = "trio_ws-frame-filter"

    def __init__(self, deflate: PerMessageDeflate | None, max_size: int | None) -> None:
        self.deflate = deflate
        self.max_size = max_size
        # RSV1 may be set on a message's first frame only with deflate.
        self._first_rsv = RsvBits(deflate is not None, False, False)
        #: Size reached when ``max_size`` was exceeded (at least).
        self.exceeded = 0
        #: Why the last frame was refused (1002 or 1007), for the close reason.
        self.error = ""
        self._in_message = False  # a message has frames still to come
        self._compressed = False  # the current message is compressed
        self._control = False  # the current frame is a control frame
        self._size = 0  # bytes of the current message so far, inflated
        self._text = False  # the current message is text
        self._last = b""  # the last byte of the current message so far
        #: Whether the next outgoing message is compressed (set by the
        #: protocol per message: ``send(..., compress=False)``).
        self.compress = True
        self._compressing = False  # the outgoing message is compressed

    def enabled(self) -> bool:
        return True

    def offer(self) -> bool:  # pragma: no cover - never negotiated
        return False

    def _over(self, size: int) -> bool:
        if self.max_size is not None and size > self.max_size:
            self.exceeded = size
            return True
        return False

    def _refuse(self, error: str, *, invalid: bool = False) -> CloseReason:
        """Refuse the current frame: 1007 if its data is ``invalid``, else 1002."""
        self.error = error
        if invalid:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        return CloseReason.PROTOCOL_ERROR

    def _budget(self) -> int:
        """How much to inflate at most: one byte past ``max_size`` (0: no limit)."""
        return 0 if self.max_size is None else self.max_size - self._size + 1

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        self._control = opcode.iscontrol()
        if self._control:
            return _NO_RSV  # RFC 7692 6.1: no RSV1 on control frames
        if opcode is _CONTINUATION:
            if not self._in_message:
                return self._refuse("unexpected continuation frame")
            claimed = _NO_RSV  # RFC 7692 6.1: RSV1 on the first frame only
        else:
            if self._in_message:
                return self._refuse("new message before the previous one ended")
            self._size = 0
            self._text = opcode is _TEXT
            self._last = b""
            self._compressed = rsv.rsv1 and self.deflate is not None
            claimed = self._first_rsv
        # An uncompressed frame announces its size: refuse it before reading
        # a byte of payload.
        if not self._compressed and self._over(self._size + payload_length):
            return CloseReason.MESSAGE_TOO_BIG
        return claimed

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if self._control:
            return data
        if self._compressed:
            assert self.deflate is not None
            try:
                data = self.deflate.decompress(data, self._budget())
            except zlib.error as exc:
                return self._refuse(f"invalid compressed data: {exc}", invalid=True)
        if self._text and data and self._surrogate(data):
            return self._refuse("invalid UTF-8: surrogate", invalid=True)
        return self._count(data)

    def _surrogate(self, data: bytes) -> bool:
        """Whether the text so far ends with the first two bytes of a surrogate.

        wsproto decodes text with Python's incremental UTF-8 decoder, which
        fails fast on every ill-formed byte but the second of a surrogate
        (``ED A0``-``ED BF``): it waits for the third. RFC 6455 8.1 asks for
        failure as soon as the text cannot be valid, so that case is caught
        here. ``ED`` is always a lead byte, so two bytes decide.
        """
        tail = self._last + data[-2:]
        self._last = tail[-1:]
        return len(tail) >= 2 and tail[-2] == 0xED and 0xA0 <= tail[-1] <= 0xBF

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if self._control:
            return None
        self._in_message = not fin
        if not fin or not self._compressed:
            return None
        assert self.deflate is not None
        try:
            data = self.deflate.finish(self._budget())
        except zlib.error as exc:
            return self._refuse(f"invalid compressed data: {exc}", invalid=True)
        return self._count(data)

    def _count(self, data: bytes) -> bytes | CloseReason:
        self._size += len(data)
        if self._over(self._size):
            return CloseReason.MESSAGE_TOO_BIG
        return data

    @property
    def transparent_outbound(self) -> bool:
        """Whether outbound frames pass unchanged (no permessage-deflate).

        ``_frames.FastFrameProtocol`` then builds them itself, without
        calling :meth:`frame_outbound`.
        """
        return self.deflate is None

    def frame_outbound(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        data: bytes,
        fin: bool,
    ) -> tuple[RsvBits, bytes]:
        if self.deflate is None or opcode.iscontrol():
            return rsv, data
        if opcode is not _CONTINUATION:
            # Decided once per message: its frames are all compressed or
            # none is. An uncompressed message leaves the compressor's
            # context alone, as RFC 7692 7.2.1 applies it to compressed ones.
            self._compressing = self.compress
            if self._compressing:
                rsv = RsvBits(True, rsv.rsv2, rsv.rsv3)  # RFC 7692 6: first frame
        if not self._compressing:
            return rsv, data
        return rsv, self.deflate.compress(data, fin=fin)
