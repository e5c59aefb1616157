"""The fast frame layer gives exactly wsproto's bytes and frames."""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import struct
import sys
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings, strategies as st
from wsproto.extensions import Extension, PerMessageDeflate as WsprotoDeflate
from wsproto.frame_protocol import (
    Frame,
    FrameDecoder,
    FrameProtocol,
    Opcode,
    ParseFailed,
    RsvBits,
    XorMaskerSimple,
)

from trio_ws import Close, State, _frames
from trio_ws._extensions import DeflateParams, FrameFilter, PerMessageDeflate
from trio_ws._frames import (
    FastFrameProtocol,
    _Masker,
    build_frame,
    mask,
    parse_whole,
    py_build_frame,
    py_mask,
    py_parse_whole,
)
from trio_ws._protocol import Protocol

from .helpers import (
    MASK,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    close_payload,
    frame,
    parse_frames,
)

SIZES = [0, 1, 2, 3, 4, 5, 7, 125, 126, 127, 1000, 16383, 16384, 16385, 65535, 65536]


def wsproto_mask(data: bytes, key: bytes) -> bytes:
    return bytes(XorMaskerSimple(key).process(bytearray(data)))


#: The pure-Python mask, and the C one when trio_ws._speedups was built:
#: the fallback is tested even where the C module is in use.
MASKS = [py_mask] + ([] if mask is py_mask else [mask])


@contextlib.contextmanager
def frames_using(**functions: object) -> Iterator[None]:
    """Make the frame layer use these functions (``mask``, ``parse_whole``).

    For tests drawing them with hypothesis, where fixtures cannot vary.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name, function in functions.items():
            patch.setattr(_frames, name, function)
        yield


@pytest.fixture(params=MASKS, ids=lambda m: m.__name__)
def masker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_frames, "mask", request.param)


#: The pure-Python frame builder, and the C one when built.
BUILDERS = [py_build_frame] + ([] if build_frame is py_build_frame else [build_frame])


@pytest.fixture(params=BUILDERS, ids=lambda b: b.__name__)
def builder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_frames, "build_frame", request.param)


#: The pure-Python whole-frame parser, and the C one when built.
PARSERS = [py_parse_whole] + ([] if parse_whole is py_parse_whole else [parse_whole])


@pytest.fixture(params=PARSERS, ids=lambda p: p.__name__)
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_frames, "parse_whole", request.param)


@pytest.mark.parametrize("masker", MASKS)
@pytest.mark.parametrize("size", [*SIZES, 8, 9, 15, 17, 100_003])
def test_mask_matches_wsproto(
    masker: Callable[[bytes, bytes], bytes], size: int
) -> None:
    data = os.urandom(size)
    expected = wsproto_mask(data, MASK)
    assert masker(data, MASK) == expected
    assert masker(memoryview(data), MASK) == expected
    assert masker(bytearray(data), MASK) == expected
    assert type(masker(data, MASK)) is bytes


@pytest.mark.parametrize("masker", MASKS)
def test_mask_rfc_example(masker: Callable[[bytes, bytes], bytes]) -> None:
    # RFC 6455 5.7: "Hello" masked with 37 fa 21 3d.
    assert masker(b"Hello", MASK) == bytes.fromhex("7f9f4d5158")
    assert masker(masker(b"Hello", MASK), MASK) == b"Hello"


def test_mask_is_the_c_one_when_built() -> None:
    try:
        from trio_ws import _speedups
    except ImportError:
        assert mask is py_mask
    else:
        assert mask is _speedups.apply_mask


def test_without_the_c_module_masking_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As installed without a compiler: the import fails, py_mask is used.
    monkeypatch.setitem(sys.modules, "trio_ws._speedups", None)
    spec = importlib.util.spec_from_file_location(
        "trio_ws._frames_without_c", _frames.__file__
    )
    assert spec is not None
    assert spec.loader is not None
    fallback = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fallback)
    assert fallback.mask is fallback.py_mask
    assert fallback.mask(b"Hello", MASK) == bytes.fromhex("7f9f4d5158")


def test_speedups_arguments() -> None:
    speedups = pytest.importorskip("trio_ws._speedups")
    with pytest.raises(ValueError, match="the mask must be 4 bytes long"):
        speedups.apply_mask(b"data", b"abc")
    with pytest.raises(TypeError, match="takes exactly 2 arguments"):
        speedups.apply_mask(b"data")
    with pytest.raises(TypeError):
        speedups.apply_mask("text", MASK)
    with pytest.raises(TypeError):
        speedups.apply_mask(b"data", None)


@settings(max_examples=300)
@given(data=st.binary(max_size=200), key=st.binary(min_size=4, max_size=4))
def test_masks_agree(data: bytes, key: bytes) -> None:
    expected = wsproto_mask(data, key)
    for masker in MASKS:
        assert masker(data, key) == expected


@settings(max_examples=200)
@given(
    data=st.binary(max_size=40000),
    key=st.binary(min_size=4, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=40000), max_size=5),
)
def test_masker_rotates_like_wsproto(data: bytes, key: bytes, cuts: list[int]) -> None:
    ours, theirs = _Masker(key), XorMaskerSimple(key)
    bounds = [0, *sorted(c for c in cuts if c <= len(data)), len(data)]
    for start, end in itertools.pairwise(bounds):
        chunk = data[start:end]
        assert ours.process(chunk) == bytes(theirs.process(bytearray(chunk)))


def _pair(
    client: bool, extensions: Callable[[], list[Extension]]
) -> tuple[FrameProtocol, FastFrameProtocol]:
    return FrameProtocol(client, extensions()), FastFrameProtocol(client, extensions())


def _size_limit() -> list[Extension]:
    return [FrameFilter(None, 2**20)]


def _deflate() -> list[Extension]:
    deflate = WsprotoDeflate()
    deflate.finalize("permessage-deflate")
    return [deflate, FrameFilter(None, 2**20)]


def _trio_deflate() -> list[Extension]:
    # What trio_ws's Protocol plugs in once permessage-deflate is agreed.
    return [FrameFilter(PerMessageDeflate(DeflateParams(), client=False), 2**20)]


@pytest.fixture
def fixed_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every key MASK, for wsproto and for trio_ws's key pool alike.
    monkeypatch.setattr(os, "urandom", lambda n: MASK[:n])
    monkeypatch.setattr(_frames, "_KEYS", [])


@pytest.mark.usefixtures("fixed_key", "masker", "builder")
@pytest.mark.parametrize("client", [False, True])
@pytest.mark.parametrize("extensions", [list, _size_limit, _deflate, _trio_deflate])
def test_serialisation_matches_wsproto(
    client: bool, extensions: Callable[[], list[Extension]]
) -> None:
    theirs, ours = _pair(client, extensions)
    for size in SIZES:
        data = os.urandom(size)
        assert ours.send_data(data) == theirs.send_data(data)
        assert ours.send_data(memoryview(data)) == theirs.send_data(memoryview(data))
        text = "é" * (size // 2)
        assert ours.send_data(text, fin=False) == theirs.send_data(text, fin=False)
        assert ours.send_data(text, fin=False) == theirs.send_data(text, fin=False)
        assert ours.send_data(text, fin=True) == theirs.send_data(text, fin=True)
    for payload in (b"", b"x", b"y" * 125):
        assert ours.ping(payload) == theirs.ping(payload)
        assert ours.pong(payload) == theirs.pong(payload)
    assert ours.close(1000, "bye") == theirs.close(1000, "bye")
    assert ours.close() == theirs.close()


@pytest.mark.usefixtures("fixed_key", "masker", "builder")
def test_serialisation_fast_path_bytes() -> None:
    ours = FastFrameProtocol(True, _size_limit())
    assert bytes(ours.send_data(b"Hello")) == frame(OP_BINARY, b"Hello", mask=MASK)
    data = os.urandom(70000)
    assert bytes(ours.send_data(data, fin=False)) == frame(
        OP_BINARY, data, fin=False, mask=MASK
    )
    assert bytes(ours.send_data(b"!")) == frame(OP_CONT, b"!", mask=MASK)


@pytest.mark.parametrize(
    ("extensions", "fast"),
    [(list, True), (_size_limit, True), (_deflate, False), (_trio_deflate, False)],
)
def test_outbound_hooks_run_only_where_an_extension_rewrites_frames(
    monkeypatch: pytest.MonkeyPatch,
    extensions: Callable[[], list[Extension]],
    fast: bool,
) -> None:
    hooked: list[Opcode] = []
    original = FrameFilter.frame_outbound

    def spy(
        self: FrameFilter,
        proto: FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        data: bytes,
        fin: bool,
    ) -> tuple[RsvBits, bytes]:
        hooked.append(opcode)
        return original(self, proto, opcode, rsv, data, fin)

    def wsproto_serialiser(*args: object) -> bytearray:
        raise AssertionError  # trio_ws builds every frame itself

    monkeypatch.setattr(FrameFilter, "frame_outbound", spy)
    monkeypatch.setattr(FrameProtocol, "_serialize_frame", wsproto_serialiser)
    ours = FastFrameProtocol(True, extensions())
    ours.send_data(b"data")
    ours.ping(b"p")
    assert hooked == ([] if fast else [Opcode.BINARY, Opcode.PING])


class _Enabled(Extension):
    """An extension in use, which changes nothing unless a subclass does."""

    def enabled(self) -> bool:
        return True

    def offer(self) -> str:
        return self.name


class _Growing(_Enabled):
    """Doubles every outbound payload and sets RSV2 and RSV3."""

    name = "x-growing"

    def frame_outbound(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        data: bytes,
        fin: bool,
    ) -> tuple[RsvBits, bytes]:
        return RsvBits(rsv.rsv1, True, True), bytearray(data * 2)


@pytest.mark.usefixtures("fixed_key", "builder")
@pytest.mark.parametrize("client", [False, True])
def test_serialisation_with_any_extension_matches_wsproto(client: bool) -> None:
    # Extensions may return bytearray, set bits, and grow a control frame
    # past 125 bytes: refused after the extensions ran, as wsproto does.
    theirs, ours = _pair(client, lambda: [_Growing(), *_trio_deflate()])
    for data in (b"", b"x", os.urandom(100), os.urandom(70000), "text"):
        assert ours.send_data(data) == theirs.send_data(data)
    assert ours.ping(b"y" * 62) == theirs.ping(b"y" * 62)
    for proto in (theirs, ours):
        with pytest.raises(ValueError, match="payload too long for control frame"):
            proto.ping(b"y" * 63)


@settings(max_examples=200)
@given(
    first=st.integers(0, 255),
    size=st.one_of(
        st.sampled_from([0, 1, 4, 125, 126, 127, 65535, 65536]), st.integers(0, 300)
    ),
    key=st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
    kind=st.sampled_from([bytes, bytearray, memoryview]),
)
def test_frame_builders_agree(
    first: int, size: int, key: bytes | None, kind: Callable[[bytes], object]
) -> None:
    payload = bytes(i * 13 & 0xFF for i in range(size))
    fin, rsv, opcode = bool(first & 0x80), (first >> 4) & 7, first & 0x0F
    expected = frame(opcode, payload, fin=fin, rsv=rsv, mask=key)
    for build in BUILDERS:
        for masker in MASKS:
            with frames_using(mask=masker):
                built = build(first, kind(payload), key)  # type: ignore[arg-type]
            assert type(built) is bytes
            assert built == expected


def test_frame_builder_is_the_c_one_when_built() -> None:
    try:
        from trio_ws import _speedups
    except ImportError:
        assert build_frame is py_build_frame
    else:
        assert build_frame is _speedups.build_frame


def test_speedups_build_frame_arguments() -> None:
    speedups = pytest.importorskip("trio_ws._speedups")
    with pytest.raises(TypeError, match="takes exactly 3 arguments"):
        speedups.build_frame(0x82, b"")
    with pytest.raises(TypeError):
        speedups.build_frame("0x82", b"", None)
    with pytest.raises(ValueError, match="in range"):
        speedups.build_frame(256, b"", None)
    with pytest.raises(ValueError, match="in range"):
        speedups.build_frame(-1, b"", None)
    with pytest.raises(TypeError):
        speedups.build_frame(0x81, "text", None)
    with pytest.raises(TypeError):
        speedups.build_frame(0x81, b"", 1234)
    with pytest.raises(ValueError, match="the mask must be 4 bytes long"):
        speedups.build_frame(0x81, b"", b"abc")
    assert speedups.build_frame(0x81, b"Hello", MASK) == frame(
        OP_TEXT, b"Hello", mask=MASK
    )


def test_serialisation_errors_match_wsproto() -> None:
    theirs, ours = _pair(False, _size_limit)
    for proto in (theirs, ours):
        with pytest.raises(ValueError, match="payload too long for control frame"):
            proto.ping(b"x" * 126)
        with pytest.raises(TypeError, match="Must provide bytes or text"):
            proto.send_data(42)  # type: ignore[arg-type]
        proto.send_data("text", fin=False)
        with pytest.raises(TypeError, match="Data type mismatch inside message"):
            proto.send_data(b"bytes")
        # The refused frame changed nothing: the message goes on.
        assert proto.send_data("more") == b"\x80\x04more"
        assert proto.send_data(b"next") == b"\x82\x04next"


def test_masking_keys_come_from_urandom_in_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draws: list[int] = []
    urandom = os.urandom

    def counting(n: int) -> bytes:
        draws.append(n)
        return urandom(n)

    monkeypatch.setattr(os, "urandom", counting)
    monkeypatch.setattr(_frames, "_KEYS", [])
    ours = FastFrameProtocol(True, _size_limit())
    keys = [bytes(ours.send_data(b"x"))[2:6] for _ in range(600)]
    # One system call per 256 frames; every key drawn once only.
    assert draws == [_frames._KEY_BLOCK] * 3
    assert len(_frames._KEYS) == 3 * 256 - 600
    assert len(set(keys)) > 590  # 4 random bytes: a collision or two at most
    assert set(keys).isdisjoint(_frames._KEYS)


def _events(
    proto: FrameProtocol, chunks: list[bytes]
) -> list[tuple[Opcode, object, bool, bool] | tuple[str, int, str]]:
    seen: list[tuple[Opcode, object, bool, bool] | tuple[str, int, str]] = []
    try:
        for chunk in chunks:
            proto.receive_bytes(chunk)
            for f in proto.received_frames():
                payload = f.payload
                assert type(payload) is not bytearray
                seen.append((f.opcode, payload, f.frame_finished, f.message_finished))
    except ParseFailed as exc:
        seen.append(("failed", int(exc.code), str(exc)))
    return seen


def _stream(masked: bool) -> bytes:
    key = MASK if masked else None
    big = os.urandom(100_000)
    return b"".join(
        [
            frame(OP_TEXT, "héllo".encode(), mask=key),
            frame(OP_BINARY, b"", mask=key),
            frame(OP_BINARY, big[:70000], fin=False, mask=key),
            frame(OP_PING, b"ping", mask=key),
            frame(OP_CONT, big[70000:], mask=key),
            frame(OP_TEXT, "ü".encode()[:1], fin=False, mask=key),
            frame(OP_CONT, "ü".encode()[1:] + b"!", mask=key),
            frame(OP_BINARY, os.urandom(300), mask=key),
            frame(OP_CLOSE, struct.pack("!H", 1000) + b"bye", mask=key),
        ]
    )


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0), max_size=12),
    masked=st.booleans(),
    masker=st.sampled_from(MASKS),
)
def test_parsing_matches_wsproto(
    cuts: list[int], masked: bool, masker: Callable[[bytes, bytes], bytes]
) -> None:
    theirs, ours = _pair(not masked, _size_limit)
    chunks = _split(_stream(masked), cuts)
    expected = _events(theirs, chunks)
    assert expected[-1][0] is Opcode.CLOSE
    with frames_using(mask=masker):
        assert _events(ours, chunks) == expected


@pytest.mark.parametrize(
    "bad",
    [
        frame(OP_TEXT, b"\xff", mask=MASK),  # invalid UTF-8: 1007
        frame(OP_BINARY, b"x" * 200, mask=MASK, length=2**20 + 1),  # too big: 1009
        frame(OP_CONT, b"x", mask=MASK),  # nothing to continue: 1002
        frame(OP_BINARY, b"x"),  # unmasked from a client: 1002
        frame(OP_PING, b"x", fin=False, mask=MASK),  # fragmented control: 1002
    ],
)
@pytest.mark.parametrize("split", [1, 3, 1000])
@pytest.mark.usefixtures("masker")
def test_parse_errors_match_wsproto(bad: bytes, split: int) -> None:
    theirs, ours = _pair(False, _size_limit)
    data = frame(OP_BINARY, b"ok", mask=MASK) + bad
    chunks = [data[i : i + split] for i in range(0, len(data), split)]
    expected = _events(theirs, chunks)
    assert expected[-1][0] == "failed"
    assert _events(ours, chunks) == expected


class _Trailer(_Enabled):
    """Gives payloads back as bytearray and adds a byte at each frame's end."""

    name = "x-trailer"

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes:
        return bytearray(data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes:
        return b"!"


@pytest.mark.usefixtures("masker")
def test_parsing_with_any_extension_matches_wsproto() -> None:
    # Extensions may return bytearray, and add data at a frame's end.
    theirs, ours = _pair(False, lambda: [_Trailer(), _Trailer()])
    chunks = _split(_stream(masked=True), [5, 70_000, 70_100])
    expected = _events(theirs, chunks)
    assert (Opcode.TEXT, "héllo!!", True, True) in expected
    assert _events(ours, chunks) == expected


@pytest.mark.parametrize("receiver", [_deflate, _trio_deflate])
@pytest.mark.usefixtures("masker")
def test_parsing_with_deflate_matches_wsproto(
    receiver: Callable[[], list[Extension]],
) -> None:
    sender = FrameProtocol(True, _deflate())
    data = b"".join(
        bytes(sender.send_data(payload, fin=fin))
        for payload, fin in [
            ("compressible " * 1000, True),
            (b"\x00" * 50000, False),
            (b"tail", True),
            (os.urandom(3000), True),
        ]
    )
    for split in (1, 7, 4096, len(data)):
        chunks = [data[i : i + split] for i in range(0, len(data), split)]
        theirs, ours = _pair(False, receiver)
        expected = _events(theirs, chunks)
        assert len(expected) >= 4
        assert _events(ours, chunks) == expected


# --- Whole one-frame messages past wsproto's parser (receive_whole) -------------


def _header(first: int, length: int, *, mask: bytes | None, form: int = 0) -> bytes:
    """A frame header; ``form`` forces the length's encoding (7, 16 or 64 bits)."""
    form = form or (7 if length < 126 else 16 if length < 65536 else 64)
    mask_bit = 0x80 if mask is not None else 0
    if form == 7:
        header = bytes((first, mask_bit | length))
    elif form == 16:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    return header + (mask or b"")


def _raw_frame(
    first: int, payload: bytes, *, mask: bytes | None, form: int = 0
) -> bytes:
    body = payload if mask is None else wsproto_mask(payload, mask)
    return _header(first, len(payload), mask=mask, form=form) + body


def _protocols(client: bool, **kwargs: object) -> tuple[Protocol, Protocol]:
    """A protocol with the whole-frame path, and one parsing all with wsproto."""
    fast = Protocol(client=client, **kwargs)  # type: ignore[arg-type]
    reference = Protocol(client=client, **kwargs)  # type: ignore[arg-type]
    reference._whole_limit = None
    return fast, reference


def _observe(p: Protocol) -> tuple[object, ...]:
    """Everything the I/O layer and the application can see of ``p``."""
    failure = p.failure
    cause = None if failure is None else failure.__cause__
    return (
        p.take_messages(),
        p.take_pongs(),
        parse_frames(bytes(p.data_to_send())),
        p.state,
        p.failed,
        p.close_rcvd,
        p.close_sent,
        type(failure),
        str(failure),
        type(cause),
        str(cause),
        getattr(cause, "code", None),
    )


def _feed_both(fast: Protocol, reference: Protocol, chunks: list[bytes]) -> None:
    for chunk in chunks:
        fast.receive_data(chunk)
        reference.receive_data(chunk)
        assert _observe(fast) == _observe(reference)


def _text_payload(size: int) -> bytes:
    text = ("aé€😀" * (size // 10 + 1)).encode()
    return text[:size]  # may end inside a character: invalid then


def _broken(payload: bytes, at: int, byte: int) -> bytes:
    return payload[:at] + bytes((byte,)) + payload[at + 1 :]


_BOUNDARY_SIZES = [0, 1, 2, 3, 4, 5, 124, 125, 126, 127, 65535, 65536]


@st.composite
def _any_frame(draw: st.DrawFn, masked: bool) -> bytes:
    kind = draw(
        st.sampled_from(
            ["text", "text", "binary", "binary", "cont", "ping", "pong", "close", "op"]
        )
    )
    size = draw(
        st.one_of(st.sampled_from(_BOUNDARY_SIZES), st.integers(0, 300))
        if kind in ("text", "binary", "cont")
        else st.integers(0, 126)
    )
    if kind == "text":
        payload = _text_payload(size)
        if size and draw(st.integers(0, 4)) == 0:
            at = draw(st.integers(0, size - 1))
            payload = _broken(payload, at, draw(st.sampled_from([0x80, 0xED, 0xFF])))
        opcode = OP_TEXT
    elif kind == "close":
        payload = close_payload(1000, "bye")[: min(size, 5)]
        opcode = OP_CLOSE
    else:
        payload = bytes(i & 0xFF for i in range(size))
        opcode = {"binary": OP_BINARY, "cont": OP_CONT, "ping": OP_PING}.get(
            kind, OP_PONG
        )
        if kind == "op":
            opcode = draw(st.sampled_from([3, 4, 5, 6, 7, 0xB, 0xC, 0xF]))
    fin = draw(st.integers(0, 5)) > 0
    rsv = draw(st.sampled_from([0, 0, 0, 0, 0, 1, 2, 4, 7]))
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    # Now and then the other role's masking, or a longer length encoding
    # than needed: both are errors wsproto must report.
    key = MASK if masked != (draw(st.integers(0, 30)) == 0) else None
    minimal = 7 if size < 126 else 16 if size < 65536 else 64
    form = draw(st.sampled_from([minimal] * 10 + [16, 64]))
    return _raw_frame(first, payload, mask=key, form=max(form, minimal))


@settings(max_examples=250, deadline=None)
@given(
    data=st.data(),
    client=st.booleans(),
    max_size=st.sampled_from([None, 0, 125, 126, 65535, 65536, 2**20]),
    deflate=st.booleans(),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
    parser=st.sampled_from(PARSERS),
    masker=st.sampled_from(MASKS),
)
def test_whole_frames_parse_as_wsproto_does(
    data: st.DataObject,
    client: bool,
    max_size: int | None,
    deflate: bool,
    cuts: list[int],
    parser: Callable[[bytes, int, bool, int, list[str | bytes]], int],
    masker: Callable[[bytes, bytes], bytes],
) -> None:
    frames = data.draw(st.lists(_any_frame(masked=not client), min_size=1, max_size=8))
    extensions = [DeflateParams()] if deflate else []
    fast, reference = _protocols(client, max_size=max_size, extensions=extensions)
    with frames_using(parse_whole=parser, mask=masker):
        _feed_both(fast, reference, _split(b"".join(frames), cuts))


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    masked=st.booleans(),
    limit=st.sampled_from([-1, 0, 125, 126, 65535, 65536, 2**63, 2**70]),
    garbage=st.binary(max_size=12),
)
def test_whole_frame_parsers_agree(
    data: st.DataObject, masked: bool, limit: int, garbage: bytes
) -> None:
    frames = data.draw(st.lists(_any_frame(masked=masked), max_size=6))
    prefix = data.draw(st.sampled_from([b"", b"\x82\x00", b"\x00" * 3]))
    stream = prefix + b"".join(frames) + garbage
    cut = data.draw(st.integers(len(prefix), len(stream)))
    results = []
    for parse in PARSERS:
        for chunk in (stream, stream[:cut]):
            messages: list[str | bytes] = []
            pos = parse(chunk, len(prefix), masked, limit, messages)
            results.append((pos, messages))
    assert all(result == results[0] for result in results[::2])
    assert all(result == results[1] for result in results[1::2])
    # A cut stream gives the messages wholly before the cut, no more.
    pos, messages = results[0]
    cut_pos, cut_messages = results[1]
    assert len(prefix) <= cut_pos <= pos
    assert cut_messages == messages[: len(cut_messages)]
    assert all(type(m) in (str, bytes) for m in messages)


def test_parse_whole_is_the_c_one_when_built() -> None:
    try:
        from trio_ws import _speedups
    except ImportError:
        assert parse_whole is py_parse_whole
    else:
        assert parse_whole is _speedups.parse_whole


def test_speedups_parse_whole_arguments() -> None:
    speedups = pytest.importorskip("trio_ws._speedups")
    messages: list[str | bytes] = []
    with pytest.raises(TypeError, match="takes exactly 5 arguments"):
        speedups.parse_whole(b"", 0, True, 0)
    with pytest.raises(TypeError, match="needs bytes"):
        speedups.parse_whole(bytearray(b"\x82\x00"), 0, False, 1, messages)
    with pytest.raises(TypeError):
        speedups.parse_whole(b"\x82\x00", "0", False, 1, messages)
    for pos in (-1, 3):
        with pytest.raises(ValueError, match="position out of range"):
            speedups.parse_whole(b"\x82\x00", pos, False, 1, messages)
    with pytest.raises(TypeError, match="needs a list"):
        speedups.parse_whole(b"\x82\x00", 0, False, 1, ())
    with pytest.raises(TypeError):
        speedups.parse_whole(b"\x82\x00", 0, False, "1", messages)

    class Falsy:
        def __bool__(self) -> bool:
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        speedups.parse_whole(b"\x82\x00", 0, Falsy(), 1, messages)
    assert messages == []
    assert speedups.parse_whole(b"\x82\x00\x81\x01a", 0, 0, 1, messages) == 5
    assert messages == [b"", "a"]
    assert speedups.parse_whole(b"\x82\x00\x81\x01a", 2, 0, 1, messages) == 5
    assert speedups.parse_whole(b"\x82\x00", 2, 0, 1, messages) == 2
    assert messages == [b"", "a", "a"]


@pytest.mark.parametrize("client", [False, True])
@pytest.mark.parametrize("size", _BOUNDARY_SIZES)
@pytest.mark.usefixtures("parser")
def test_whole_frames_at_length_boundaries(client: bool, size: int) -> None:
    key = None if client else MASK
    payload = bytes(i * 7 & 0xFF for i in range(size))
    text = _text_payload(size).decode(errors="ignore")
    data = _raw_frame(0x82, payload, mask=key) + _raw_frame(
        0x81, text.encode(), mask=key
    )
    for split in (len(data), 1, 2, 3, 4, 5, 11, 127, 4096):
        fast, reference = _protocols(client, max_size=65536)
        # Cut finely around the headers, in large reads elsewhere.
        cuts = sorted(
            {*range(0, 300, split), *range(len(data) - 300, len(data), split)}
            | set(range(0, len(data), 4096))
        )
        _feed_both(fast, reference, _split(data, cuts))
        fast.receive_data(data)
        assert fast.take_messages() == [payload, text]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536])
@pytest.mark.parametrize("over", [False, True])
@pytest.mark.usefixtures("parser")
def test_whole_frames_max_size_boundary(size: int, over: bool) -> None:
    message = frame(OP_BINARY, b"\x01" * (size + over), mask=MASK)
    fast, reference = _protocols(False, max_size=size)
    _feed_both(fast, reference, [frame(OP_TEXT, b"", mask=MASK) + message])
    if over:
        assert fast.failed
        assert fast.close_sent == Close(1009, f"message over {size} bytes")
    else:
        assert fast.state is State.OPEN


@pytest.mark.usefixtures("parser")
def test_invalid_utf8_at_every_position() -> None:
    payload = "aé€😀b".encode()
    for at in range(len(payload)):
        for byte in (0x80, 0xC0, 0xED, 0xF5, 0xFF):
            bad = _broken(payload, at, byte)
            data = (
                frame(OP_TEXT, b"first", mask=MASK)
                + frame(OP_TEXT, bad, mask=MASK)
                + frame(OP_BINARY, b"after", mask=MASK)
            )
            fast, reference = _protocols(False)
            _feed_both(fast, reference, [data])
            try:
                bad.decode()
            except UnicodeDecodeError:
                assert fast.close_sent is not None
                assert fast.close_sent.code == 1007
            else:  # a continuation byte for another one
                assert fast.state is State.OPEN


@pytest.mark.usefixtures("parser")
@pytest.mark.parametrize(
    ("length", "form", "error"),
    [
        (0, 16, "Payload length used 2 bytes when 1 would have sufficed"),
        (125, 16, "Payload length used 2 bytes when 1 would have sufficed"),
        (125, 64, "Payload length used 8 bytes when 2 would have sufficed"),
        (65535, 64, "Payload length used 8 bytes when 2 would have sufficed"),
    ],
)
def test_non_minimal_lengths_are_left_to_wsproto(
    length: int, form: int, error: str
) -> None:
    bad = _raw_frame(0x82, b"x" * length, mask=MASK, form=form)
    fast, reference = _protocols(False)
    _feed_both(fast, reference, [frame(OP_TEXT, b"ok", mask=MASK) + bad])
    assert fast.close_sent == Close(1002, error)


@pytest.mark.usefixtures("parser")
def test_truncated_utf8_at_the_end_of_a_message() -> None:
    for cut in range(1, 4):
        data = frame(OP_TEXT, "😀".encode()[:cut], mask=MASK)
        fast, reference = _protocols(False)
        _feed_both(fast, reference, [data])
        assert fast.close_sent is not None
        assert fast.close_sent.code == 1007


def test_control_frames_between_whole_frames_keep_their_order() -> None:
    c = Protocol(client=True)
    data = b"".join(
        [
            frame(OP_TEXT, b"1"),
            frame(OP_PING, b"p1"),
            frame(OP_BINARY, b"2"),
            frame(OP_TEXT, b"3", fin=False),
            frame(OP_PING, b"p2"),
            frame(OP_CONT, b"4"),
            frame(OP_BINARY, b"5"),
            frame(OP_PONG, b"q"),
            frame(OP_CLOSE, close_payload(1000)),
            frame(OP_TEXT, b"after close"),
        ]
    )
    c.receive_data(data)
    assert c.take_messages() == ["1", b"2", "34", b"5"]
    assert c.take_pongs() == [b"q"]
    assert [f[:2] + f[3:] for f in parse_frames(bytes(c.data_to_send()))] == [
        (OP_PONG, True, b"p1"),
        (OP_PONG, True, b"p2"),
        (OP_CLOSE, True, close_payload(1000)),
    ]


def _spy_on_wsproto(monkeypatch: pytest.MonkeyPatch) -> list[Frame | None]:
    """Record the frames wsproto's decoder parses."""
    parsed: list[Frame | None] = []
    original = _frames.FastFrameDecoder.process_buffer

    def spy(self: _frames.FastFrameDecoder) -> Frame | None:
        result = original(self)
        parsed.append(result)
        return result

    monkeypatch.setattr(_frames.FastFrameDecoder, "process_buffer", spy)
    return parsed


def test_whole_frames_skip_wsproto(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = _spy_on_wsproto(monkeypatch)
    s = Protocol(client=False)
    data = frame(OP_TEXT, b"hello", mask=MASK) + frame(
        OP_BINARY, b"x" * 70000, mask=MASK
    )
    # Frames cut in their header wait in wsproto's buffer for the rest,
    # then are parsed whole too: wsproto is asked but finds no frame.
    for chunk in (data[:1], data[1:5], data[5:20], data[20:]):
        s.receive_data(chunk)
    assert s.take_messages() == ["hello", b"x" * 70000]
    assert all(f is None for f in parsed)
    s.receive_data(frame(OP_PING, b"p", mask=MASK) + frame(OP_TEXT, b"t", mask=MASK))
    assert [f.opcode for f in parsed if f] == [Opcode.PING, Opcode.TEXT]
    assert s.take_messages() == ["t"]


def test_frames_in_progress_stay_with_wsproto(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = _spy_on_wsproto(monkeypatch)
    s = Protocol(client=False)
    big = frame(OP_BINARY, b"y" * 70000, mask=MASK)
    s.receive_data(big[:100])  # wsproto starts the frame: it finishes it
    s.receive_data(big[100:] + frame(OP_TEXT, b"t", mask=MASK))
    assert s.take_messages() == [b"y" * 70000, "t"]
    opcodes = [f.opcode for f in parsed if f]
    assert opcodes == [Opcode.BINARY, Opcode.CONTINUATION, Opcode.TEXT]
    s.receive_data(frame(OP_TEXT, b"u", mask=MASK))
    assert s.take_messages() == ["u"]
    assert len([f for f in parsed if f]) == 3


_DEFLATE_PARAMS = [
    DeflateParams(),
    DeflateParams(server_no_context_takeover=True, client_no_context_takeover=True),
    DeflateParams(server_max_window_bits=9, client_max_window_bits=9),
]


@st.composite
def _deflate_stream(draw: st.DrawFn, masked: bool, params: DeflateParams) -> bytes:
    """Frames from a compressing peer: whole, fragmented, uncompressed, pings,
    text that is not UTF-8, and now and then a corrupted byte."""
    sender = Protocol(client=masked, extensions=[params], max_size=None)
    out = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(
            st.sampled_from(["text", "binary", "plain", "invalid", "fragments", "ping"])
        )
        text = draw(st.text(max_size=200))
        if kind == "text":
            sender.send_message(text)
        elif kind == "binary":
            sender.send_message(text.encode() * draw(st.integers(0, 40)))
        elif kind == "plain":
            sender.send_message(text, compress=False)
        elif kind == "fragments":
            cut = draw(st.integers(0, len(text)))
            sender.send_message(text[:cut], fin=False)
            sender.send_message(text[cut:])
        elif kind == "ping":
            sender.send_ping(b"p")
        else:  # a binary frame relabelled text: invalid UTF-8 once inflated
            sender.send_message(b"ok\xff" + text.encode())
        chunk = bytearray(sender.data_to_send())
        if kind == "invalid":
            chunk[0] ^= OP_TEXT ^ OP_BINARY
        if len(chunk) > 2 and draw(st.integers(0, 9)) == 0:
            chunk[draw(st.integers(2, len(chunk) - 1))] ^= draw(st.integers(1, 255))
        out.append(bytes(chunk))
    return b"".join(out)


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    client=st.booleans(),
    params=st.sampled_from(_DEFLATE_PARAMS),
    max_size=st.sampled_from([None, 0, 10, 200, 2**20]),
    cuts=st.lists(st.integers(min_value=0), max_size=6),
    parser=st.sampled_from(PARSERS),
)
def test_whole_compressed_frames_parse_as_wsproto_does(
    data: st.DataObject,
    client: bool,
    params: DeflateParams,
    max_size: int | None,
    cuts: list[int],
    parser: Callable[[bytes, int, bool, int, list[str | bytes]], int],
) -> None:
    stream = data.draw(_deflate_stream(masked=not client, params=params))
    fast, reference = _protocols(client, max_size=max_size, extensions=[params])
    assert fast._frames.inflater is fast._filter
    with frames_using(parse_whole=parser):
        _feed_both(fast, reference, _split(stream, cuts))


@pytest.mark.parametrize(
    ("payload", "code", "reason"),
    [
        (b"\xff\xff", 1007, "invalid compressed data: Error -3 while decompressing"),
        (b"", 1002, "new message before the previous one ended"),
    ],
)
def test_whole_compressed_frame_errors(payload: bytes, code: int, reason: str) -> None:
    fast, reference = _protocols(False, extensions=[DeflateParams()])
    ok = frame(OP_TEXT, b"ok", mask=MASK)
    if payload:
        bad = frame(OP_BINARY, payload, rsv=4, mask=MASK)
    else:
        bad = frame(OP_TEXT, b"", fin=False, mask=MASK) + frame(
            OP_BINARY, b"\x00", rsv=4, mask=MASK
        )
    _feed_both(fast, reference, [ok + bad + ok])
    assert fast.failed
    assert fast.close_sent is not None
    assert fast.close_sent.code == code
    assert fast.close_sent.reason.startswith(reason)


@pytest.mark.parametrize("opcode", [OP_BINARY, OP_TEXT])
@pytest.mark.parametrize("length", [2, 4])
def test_whole_compressed_frame_ending_in_the_tail(opcode: int, length: int) -> None:
    # A stored block of `length` bytes, all of them still to come: the
    # bytes RFC 7692 appends at the end of a message supply them.
    stored = bytes((0, length, 0, length ^ 0xFF, 0xFF))
    fast, reference = _protocols(False, extensions=[DeflateParams()])
    message = frame(opcode, stored, rsv=4, mask=MASK)
    _feed_both(fast, reference, [message + frame(OP_TEXT, b"next", mask=MASK)])
    if opcode == OP_BINARY and length == 4:
        assert fast.state is State.OPEN
    else:  # 0xff is not UTF-8; a block type 3 after 2 bytes is invalid
        assert fast.close_sent is not None
        assert fast.close_sent.code == 1007


def test_inflated_messages_skip_wsproto(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = _spy_on_wsproto(monkeypatch)
    c = Protocol(client=True, extensions=[DeflateParams()])
    s = Protocol(client=False, extensions=[DeflateParams()])
    for i in range(3):
        c.send_message("hello " * i)
        c.send_message(b"\x00" * 1000 * i)
        c.send_message("plain", compress=False)
    s.receive_data(bytes(c.data_to_send()))
    assert s.take_messages() == [
        m for i in range(3) for m in ("hello " * i, b"\x00" * 1000 * i, "plain")
    ]
    assert all(f is None for f in parsed)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"extensions": [DeflateParams()]},
        {"max_size": None},
    ],
)
def test_whole_frames_with_deflate_or_no_limit(kwargs: dict[str, object]) -> None:
    c = Protocol(client=True, **kwargs)  # type: ignore[arg-type]
    s = Protocol(client=False, **kwargs)  # type: ignore[arg-type]
    for compress in (True, False, True):
        c.send_message("text " * 50, compress=compress)
        c.send_message(b"\x00" * 3000, compress=compress)
    s.receive_data(bytes(c.data_to_send()))
    assert s.take_messages() == ["text " * 50, b"\x00" * 3000] * 3


def test_other_extensions_disable_whole_frames() -> None:
    # wsproto's extensions may change any payload: all frames go through them.
    p = Protocol(client=False, extensions=[_Trailer()])
    assert p._whole_limit is None
    p.receive_data(frame(OP_TEXT, b"hi", mask=MASK))
    assert p.take_messages() == ["hi!"]


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_whole_frames_from_any_buffer(kind: Callable[[bytes], object]) -> None:
    s = Protocol(client=False)
    data = frame(OP_TEXT, b"a", mask=MASK) + frame(OP_BINARY, b"b", mask=MASK)
    s.receive_data(kind(data[:3]))  # type: ignore[arg-type]
    s.receive_data(kind(data[3:]))  # type: ignore[arg-type]
    messages = s.take_messages()
    assert messages == ["a", b"b"]
    assert type(messages[1]) is bytes


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_draws_its_own_keys() -> None:
    _frames._KEYS.clear()
    ours = FastFrameProtocol(True, _size_limit())
    ours.send_data(b"x")
    assert len(_frames._KEYS) == 255  # the parent holds unsent keys
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports by exit status
        os._exit(0 if not _frames._KEYS else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _frames._KEYS
