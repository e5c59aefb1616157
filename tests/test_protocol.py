"""The sans-I/O core: two endpoints back to back, and hand-built frames."""

from __future__ import annotations

import tracemalloc
import zlib

import pytest
from wsproto.extensions import Extension
from wsproto.frame_protocol import RsvBits

from trio_ws import (
    Close,
    ConnectionClosedError,
    ConnectionClosedOK,
    PayloadTooBig,
    ProtocolError,
    State,
)
from trio_ws._extensions import DeflateParams
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


def server(**kwargs: object) -> Protocol:
    return Protocol(client=False, **kwargs)  # type: ignore[arg-type]


def client(**kwargs: object) -> Protocol:
    return Protocol(client=True, **kwargs)  # type: ignore[arg-type]


def transfer(src: Protocol, dst: Protocol) -> None:
    dst.receive_data(bytes(src.data_to_send()))


# --- Sending: exact bytes (RFC 6455 5.2, 5.6, 5.7) ------------------------------


def test_server_text_frame_bytes() -> None:
    p = server()
    p.send_message("Hello")
    assert bytes(p.data_to_send()) == b"\x81\x05Hello"  # RFC 6455 5.7 example


def test_server_binary_lengths() -> None:
    p = server()
    for size, header in [
        (0, b"\x82\x00"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ]:
        p.send_message(b"x" * size)
        assert bytes(p.data_to_send()) == header + b"x" * size


def test_client_frames_are_masked() -> None:
    p = client()
    p.send_message("Hello")
    data = bytes(p.data_to_send())
    assert data[:2] == b"\x81\x85"  # mask bit set
    assert parse_frames(data) == [(OP_TEXT, True, 0, b"Hello")]


def test_fragmented_send() -> None:
    p = server()
    p.send_message("Hel", fin=False)
    assert p.sending_fragments
    p.send_message("lo")
    assert not p.sending_fragments
    assert bytes(p.data_to_send()) == b"\x01\x03Hel\x80\x02lo"  # RFC 6455 5.7


def test_ping_pong_bytes() -> None:
    p = server()
    p.send_ping(b"Hello")
    p.send_pong(b"Hello")
    assert bytes(p.data_to_send()) == b"\x89\x05Hello\x8a\x05Hello"


def test_control_payload_limit() -> None:
    p = server()
    p.send_ping(b"x" * 125)
    with pytest.raises(ValueError, match="125 bytes"):
        p.send_ping(b"x" * 126)
    with pytest.raises(ValueError, match="125 bytes"):
        p.send_pong(b"x" * 126)


def test_data_to_send_empty() -> None:
    p = server()
    assert not p.has_data_to_send
    assert p.data_to_send() == b""


def test_memoryview_and_bytearray() -> None:
    p = server()
    p.send_message(bytearray(b"ab"))
    p.send_message(memoryview(b"cd"))
    assert bytes(p.data_to_send()) == b"\x82\x02ab\x82\x02cd"


# --- Receiving ---------------------------------------------------------------


def test_back_to_back_messages() -> None:
    c, s = client(), server()
    c.send_message("café")
    c.send_message(b"\x00\xff")
    transfer(c, s)
    assert s.take_messages() == ["café", b"\x00\xff"]
    assert s.take_messages() == []
    s.send_message("réponse")
    transfer(s, c)
    assert c.take_messages() == ["réponse"]


def test_reassembly_of_fragments() -> None:
    s = server()
    s.receive_data(frame(OP_TEXT, b"Hel", fin=False, mask=MASK))
    assert s.take_messages() == []
    s.receive_data(frame(OP_CONT, b"l", fin=False, mask=MASK))
    s.receive_data(frame(OP_CONT, b"o", mask=MASK))
    assert s.take_messages() == ["Hello"]


def test_byte_at_a_time() -> None:
    s = server()
    data = frame(OP_BINARY, b"x" * 300, mask=MASK) + frame(OP_TEXT, b"ok", mask=MASK)
    for i in range(len(data)):
        s.receive_data(data[i : i + 1])
    assert s.take_messages() == [b"x" * 300, "ok"]


def test_ping_is_answered_in_order() -> None:
    s = server()
    s.receive_data(frame(OP_PING, b"1", mask=MASK) + frame(OP_PING, b"2", mask=MASK))
    assert bytes(s.data_to_send()) == b"\x8a\x011\x8a\x012"


def test_ping_between_fragments() -> None:
    s = server()
    s.receive_data(
        frame(OP_TEXT, b"a", fin=False, mask=MASK)
        + frame(OP_PING, b"p", mask=MASK)
        + frame(OP_CONT, b"b", mask=MASK)
    )
    assert bytes(s.data_to_send()) == b"\x8a\x01p"
    assert s.take_messages() == ["ab"]


def test_pongs_are_reported() -> None:
    c = client()
    c.receive_data(frame(OP_PONG, b"abc"))
    assert c.take_pongs() == [b"abc"]
    assert c.take_pongs() == []
    assert not c.has_data_to_send


# --- Closing handshake (RFC 6455 7) ------------------------------------------


def test_close_received_is_echoed() -> None:
    s = server()
    s.receive_data(frame(OP_CLOSE, close_payload(1000, "bye"), mask=MASK))
    assert bytes(s.data_to_send()) == b"\x88\x05\x03\xe8bye"
    assert s.state is State.CLOSING
    assert s.handshake_done
    assert s.close_rcvd == Close(1000, "bye")
    assert s.close_sent == Close(1000, "bye")
    exc = s.closed_exception()
    assert isinstance(exc, ConnectionClosedOK)
    assert str(exc) == "received 1000 (OK) bye; then sent 1000 (OK) bye"


def test_empty_close_is_echoed_empty() -> None:
    s = server()
    s.receive_data(frame(OP_CLOSE, mask=MASK))
    assert bytes(s.data_to_send()) == b"\x88\x00"
    assert s.close_rcvd == Close(1005, "")
    assert isinstance(s.closed_exception(), ConnectionClosedOK)


def test_close_started_locally() -> None:
    c, s = client(), server()
    c.send_close(1001, "bye")
    assert c.state is State.CLOSING
    assert not c.handshake_done
    transfer(c, s)
    transfer(s, c)
    assert c.handshake_done
    assert c.close_rcvd_then_sent is False
    exc = c.closed_exception()
    assert str(exc) == "sent 1001 (going away) bye; then received 1001 (going away) bye"
    assert isinstance(exc, ConnectionClosedOK)
    c.receive_eof()
    assert c.state is State.CLOSED
    assert c.close_code == 1001
    assert c.close_reason == "bye"
    assert c.closed_exception().__cause__ is None


def test_close_mid_fragmented_message_is_answered() -> None:
    s = server()
    s.receive_data(frame(OP_TEXT, b"a", fin=False, mask=MASK))
    s.receive_data(frame(OP_CLOSE, close_payload(1000), mask=MASK))
    assert bytes(s.data_to_send()) == b"\x88\x02\x03\xe8"
    assert s.take_messages() == []


def test_data_after_close_is_ignored() -> None:
    s = server()
    s.receive_data(
        frame(OP_CLOSE, close_payload(1000), mask=MASK)
        + frame(OP_TEXT, b"late", mask=MASK)
    )
    s.receive_data(frame(OP_TEXT, b"later", mask=MASK))
    assert s.take_messages() == []


def test_nothing_is_sent_after_close() -> None:
    s = server()
    s.send_close()
    for call in (lambda: s.send_message("x"), lambda: s.send_ping(b""), s.send_close):
        with pytest.raises(ConnectionClosedError):
            call()
    s.receive_data(frame(OP_PING, b"late", mask=MASK))
    assert bytes(s.data_to_send()) == b"\x88\x02\x03\xe8"  # no pong after close


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
def test_send_close_rejects_codes(code: int) -> None:
    with pytest.raises(ValueError, match="may not be sent"):
        server().send_close(code)


def test_send_close_rejects_long_reason() -> None:
    server().send_close(1000, "é" * 61)  # 122 bytes
    with pytest.raises(ValueError, match="123 bytes"):
        server().send_close(1000, "x" * 124)


def test_close_code_is_none_until_closed() -> None:
    s = server()
    assert s.close_code is None
    assert s.close_reason is None
    s.connection_lost()
    assert s.close_code == 1006
    assert s.close_reason == ""


# --- Abnormal closure ---------------------------------------------------------


def test_eof_without_close_frame() -> None:
    s = server()
    s.receive_eof()
    assert s.state is State.CLOSED
    exc = s.closed_exception()
    assert isinstance(exc, ConnectionClosedError)
    assert str(exc) == "no close frame received or sent"
    assert exc.code == 1006
    assert isinstance(exc.__cause__, EOFError)


def test_transport_error_is_the_cause() -> None:
    s = server()
    error = ConnectionResetError()
    s.connection_lost(error)
    assert s.closed_exception().__cause__ is error


def test_eof_after_handshake_has_no_cause() -> None:
    c = client()
    c.receive_data(frame(OP_CLOSE, close_payload(1000)))
    c.receive_eof()
    assert c.closed_exception().__cause__ is None


# --- Failing the connection (RFC 6455 7.1.7) ------------------------------------


def assert_failed(p: Protocol, code: int, exc_type: type[Exception]) -> None:
    frames = parse_frames(bytes(p.data_to_send()))
    assert frames[-1][0] == OP_CLOSE
    assert frames[-1][3][:2] == code.to_bytes(2, "big")
    assert p.failed
    assert p.state is State.CLOSING
    exc = p.closed_exception()
    assert isinstance(exc, ConnectionClosedError)
    assert exc.code == code
    assert isinstance(exc.__cause__, exc_type)


def test_unmasked_frame_to_server() -> None:
    s = server()
    s.receive_data(frame(OP_TEXT, b"x"))
    assert_failed(s, 1002, ProtocolError)


def test_masked_frame_to_client() -> None:
    c = client()
    c.receive_data(frame(OP_TEXT, b"x", mask=MASK))
    assert_failed(c, 1002, ProtocolError)


def test_valid_message_before_violation_is_kept() -> None:
    s = server()
    s.receive_data(
        frame(OP_TEXT, b"ok", mask=MASK) + frame(OP_TEXT, b"x", rsv=4, mask=MASK)
    )
    assert s.take_messages() == ["ok"]
    assert_failed(s, 1002, ProtocolError)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcodes(opcode: int) -> None:
    s = server()
    s.receive_data(frame(opcode, b"", mask=MASK))
    assert_failed(s, 1002, ProtocolError)


def test_continuation_without_start() -> None:
    s = server()
    s.receive_data(frame(OP_CONT, b"x", mask=MASK))
    assert_failed(s, 1002, ProtocolError)


def test_new_message_before_end() -> None:
    s = server()
    s.receive_data(
        frame(OP_TEXT, b"a", fin=False, mask=MASK) + frame(OP_TEXT, b"b", mask=MASK)
    )
    assert_failed(s, 1002, ProtocolError)


def test_fragmented_control_frame() -> None:
    s = server()
    s.receive_data(frame(OP_PING, b"a", fin=False, mask=MASK))
    assert_failed(s, 1002, ProtocolError)


def test_ping_of_126_bytes() -> None:
    s = server()
    s.receive_data(frame(OP_PING, b"x" * 126, mask=MASK))
    assert_failed(s, 1002, ProtocolError)


def test_invalid_utf8_fails_fast() -> None:
    s = server()
    # The bad byte comes in the first fragment: no need to wait for the end.
    s.receive_data(frame(OP_TEXT, b"ok\xff", fin=False, mask=MASK))
    assert_failed(s, 1007, ProtocolError)


def test_utf8_split_across_fragments() -> None:
    s = server()
    euro = "€".encode()
    s.receive_data(frame(OP_TEXT, euro[:1], fin=False, mask=MASK))
    s.receive_data(frame(OP_CONT, euro[1:], mask=MASK))
    assert s.take_messages() == ["€"]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\x03", 1002),  # 1-byte close payload
        (close_payload(999), 1002),
        (close_payload(1005), 1002),
        (close_payload(1016), 1002),
        (close_payload(1000) + b"\xff", 1007),
    ],
)
def test_invalid_close_frames(payload: bytes, code: int) -> None:
    s = server()
    s.receive_data(frame(OP_CLOSE, payload, mask=MASK))
    assert_failed(s, code, ProtocolError)


def test_failure_after_close_sent_sends_nothing_more() -> None:
    s = server()
    s.send_close()
    s.data_to_send()
    s.receive_data(frame(OP_TEXT, b"x"))  # unmasked
    assert s.failed
    assert s.data_to_send() == b""


def test_fail_truncates_reason() -> None:
    s = server()
    s.fail(1011, "é" * 100, cause=None)
    payload = parse_frames(bytes(s.data_to_send()))[0][3]
    assert len(payload) == 124  # 2 + 122: no half character
    assert payload[2:].decode() == "é" * 61


# --- max_size ------------------------------------------------------------------


def test_max_size_checked_on_header() -> None:
    s = server(max_size=10)
    # The header announces 2**40 bytes: refused before any payload arrives.
    s.receive_data(frame(OP_BINARY, mask=MASK, length=2**40)[:14])
    assert_failed(s, 1009, PayloadTooBig)


def test_max_size_across_fragments() -> None:
    s = server(max_size=10)
    s.receive_data(frame(OP_BINARY, b"x" * 6, fin=False, mask=MASK))
    assert not s.failed
    s.receive_data(frame(OP_CONT, b"x" * 5, mask=MASK)[:6])
    assert_failed(s, 1009, PayloadTooBig)
    assert "message over 10 bytes" in str(s.closed_exception().__cause__)


def test_max_size_exact_fits() -> None:
    s = server(max_size=10)
    s.receive_data(frame(OP_TEXT, b"x" * 10, mask=MASK))
    s.receive_data(frame(OP_TEXT, b"y" * 10, mask=MASK))
    assert s.take_messages() == ["x" * 10, "y" * 10]


def test_max_size_ignores_control_frames() -> None:
    s = server(max_size=3)
    s.receive_data(
        frame(OP_TEXT, b"ab", fin=False, mask=MASK) + frame(OP_PING, b"long", mask=MASK)
    )
    s.receive_data(frame(OP_CONT, b"c", mask=MASK))
    assert s.take_messages() == ["abc"]


def test_max_size_none() -> None:
    s = server(max_size=None)
    s.receive_data(frame(OP_BINARY, b"x" * 100_000, mask=MASK))
    assert s.take_messages() == [b"x" * 100_000]


def test_compressed_messages_round_trip() -> None:
    c = client(extensions=[DeflateParams()])
    s = server(extensions=[DeflateParams()])
    c.send_message("a" * 1000)
    data = bytes(c.data_to_send())
    assert len(data) < 100
    assert parse_frames(data)[0][2] == 4  # RSV1: compressed
    s.receive_data(data)
    assert s.take_messages() == ["a" * 1000]


def test_max_size_on_decompressed_size() -> None:
    s = server(extensions=[DeflateParams()], max_size=1000)
    compressor = zlib.compressobj(wbits=-15)
    bomb = compressor.compress(b"\x00" * 100_000) + compressor.flush(zlib.Z_SYNC_FLUSH)
    s.receive_data(frame(OP_BINARY, bomb[:-4], rsv=4, mask=MASK))
    assert_failed(s, 1009, PayloadTooBig)


def test_after_failure_input_is_ignored() -> None:
    s = server()
    s.receive_data(frame(OP_TEXT, b"x"))
    s.data_to_send()
    s.receive_data(frame(OP_TEXT, b"y", mask=MASK))
    assert s.take_messages() == []


def test_connection_lost_drops_fragments() -> None:
    s = server()
    s.receive_data(frame(OP_TEXT, b"a", fin=False, mask=MASK))
    s.connection_lost()
    s.receive_data(frame(OP_CONT, b"b", mask=MASK))
    assert s.take_messages() == []
    assert s.state is State.CLOSED


# --- Conformance details of the frame filter (see also tests/conformance) -------


def test_registered_close_codes_are_accepted() -> None:
    # 1012-1014 are in the IANA registry: trio_ws sends them, so it takes them.
    for code in (1012, 1013, 1014):
        s = server()
        s.receive_data(frame(OP_CLOSE, close_payload(code), mask=MASK))
        assert s.close_rcvd == Close(code, "")
        assert bytes(s.data_to_send()) == b"\x88\x02" + code.to_bytes(2, "big")


def test_surrogate_fails_on_its_second_byte() -> None:
    s = server()
    s.receive_data(frame(OP_TEXT, b"ok\xed", fin=False, mask=MASK))
    assert not s.failed
    s.receive_data(frame(OP_CONT, b"\xa0", fin=False, mask=MASK))
    assert_failed(s, 1007, ProtocolError)


def test_surrogate_lead_then_valid_byte() -> None:
    s = server()
    s.receive_data(frame(OP_TEXT, b"\xed", fin=False, mask=MASK))
    s.receive_data(frame(OP_CONT, b"\x9f", fin=False, mask=MASK))
    s.receive_data(frame(OP_CONT, b"\xbf", mask=MASK))
    assert s.take_messages() == ["\ud7ff"]


def test_empty_fragments_take_no_memory() -> None:
    s = server()
    s.receive_data(frame(OP_BINARY, b"", fin=False, mask=MASK))
    for _ in range(1000):
        s.receive_data(frame(OP_CONT, b"", fin=False, mask=MASK))
    assert s._fragments is None
    s.receive_data(frame(OP_CONT, b"end", mask=MASK))
    assert s.take_messages() == [b"end"]


def test_continuation_after_complete_message_is_not_counted() -> None:
    # Without sequencing ahead of max_size this would read as 1009.
    s = server(max_size=3)
    s.receive_data(frame(OP_BINARY, b"abc", mask=MASK))
    s.receive_data(frame(OP_CONT, b"defg", mask=MASK))
    assert s.take_messages() == [b"abc"]
    assert_failed(s, 1002, ProtocolError)


def test_fail_after_connection_lost_keeps_the_first_cause() -> None:
    s = server()
    error = ConnectionResetError()
    s.connection_lost(error)
    s.fail(1011, "late", cause=RuntimeError())
    assert s.failure is error
    assert s.data_to_send() == b""


class _Other(Extension):
    name = "x-other"

    def __init__(self) -> None:
        self.headers: list[int] = []

    def enabled(self) -> bool:
        return True

    def offer(self) -> bool:
        return False

    def frame_inbound_header(self, proto, opcode, rsv, payload_length):  # type: ignore[no-untyped-def]
        self.headers.append(int(opcode))
        return RsvBits(False, False, False)


def test_other_extensions_are_passed_to_wsproto() -> None:
    other = _Other()
    s = server(extensions=[other])
    s.receive_data(frame(OP_TEXT, b"x", mask=MASK) + frame(OP_PING, mask=MASK))
    assert other.headers == [OP_TEXT, OP_PING]
    assert s.take_messages() == ["x"]


def test_without_deflate_rsv1_is_an_error() -> None:
    s = server()
    s.send_message("a" * 100)
    assert bytes(s.data_to_send()) == b"\x81\x64" + b"a" * 100
    s.receive_data(frame(OP_TEXT, b"x", rsv=4, mask=MASK))
    assert_failed(s, 1002, ProtocolError)


def test_server_no_context_takeover() -> None:
    params = DeflateParams(server_no_context_takeover=True, client_max_window_bits=9)
    s = server(extensions=[params])
    for _ in range(2):
        s.send_message("hello hello hello")
    first, second = parse_frames(bytes(s.data_to_send()))
    assert first == second  # a fresh context for each message
    c = client(extensions=[params])
    c.receive_data(frame(OP_TEXT, first[3], rsv=4) + frame(OP_TEXT, second[3], rsv=4))
    assert c.take_messages() == ["hello hello hello"] * 2


def test_window_of_8_bits_sends_no_back_references() -> None:
    s = server(extensions=[DeflateParams(server_max_window_bits=8)])
    s.send_message(b"abcdefgh" * 200)
    ((opcode, fin, rsv, payload),) = parse_frames(bytes(s.data_to_send()))
    assert (opcode, fin, rsv) == (OP_BINARY, True, 4)
    # zlib inflates with an 8-bit window: any reference past 256 bytes fails.
    inflated = zlib.decompressobj(-8).decompress(payload + b"\x00\x00\xff\xff")
    assert inflated == b"abcdefgh" * 200


def test_deflate_error_at_the_end_of_a_message() -> None:
    s = server(extensions=[DeflateParams()])
    # A stored block whose length check needs the 00 00 ff ff tail: it fails.
    s.receive_data(frame(OP_BINARY, b"\x00\x01\x00", rsv=4, mask=MASK))
    assert_failed(s, 1007, ProtocolError)


def test_max_size_on_the_deflate_tail() -> None:
    # The last bytes inflate only once the tail is appended.
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(b"y" * 1001) + compressor.flush(zlib.Z_SYNC_FLUSH)
    s = server(extensions=[DeflateParams()], max_size=1000)
    s.receive_data(frame(OP_BINARY, data[:-4], rsv=4, mask=MASK))
    assert_failed(s, 1009, PayloadTooBig)


def test_decompression_bomb_in_one_read_is_bounded() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(b"\x00" * 2**28) + compressor.flush(zlib.Z_SYNC_FLUSH)
    s = server(extensions=[DeflateParams()], max_size=2**20)
    data = frame(OP_BINARY, bomb[:-4], rsv=4, mask=MASK)
    tracemalloc.start()
    try:
        s.receive_data(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_failed(s, 1009, PayloadTooBig)
    # A few copies of the 256 kB input and 1 MiB of output, not 256 MiB.
    assert peak < 4 * 2**20


def deflate_endpoints(**params: object) -> tuple[Protocol, Protocol]:
    p = DeflateParams(**params)  # type: ignore[arg-type]
    return client(extensions=[p]), server(extensions=[p])


@pytest.mark.parametrize("takeover", [True, False])
def test_context_takeover_both_ways(takeover: bool) -> None:
    c, s = deflate_endpoints(
        server_no_context_takeover=not takeover,
        client_no_context_takeover=not takeover,
    )
    for _ in range(3):
        c.send_message("repeat " * 20)
    data = bytes(c.data_to_send())
    sizes = [len(f[3]) for f in parse_frames(data)]
    s.receive_data(data)
    assert s.take_messages() == ["repeat " * 20] * 3
    s.send_message("back " * 20)
    s.send_message("back " * 20)
    transfer(s, c)
    assert c.take_messages() == ["back " * 20] * 2
    if takeover:
        assert sizes[1] < sizes[0]
    else:
        assert sizes[1] == sizes[0]


def test_compressed_fragments_round_trip() -> None:
    c, s = deflate_endpoints()
    c.send_message(b"abc" * 100, fin=False)
    c.send_message(b"def" * 100)
    frames = parse_frames(bytes(c.data_to_send()))
    assert [(f[0], f[1], f[2]) for f in frames] == [
        (OP_BINARY, False, 4),
        (OP_CONT, True, 0),
    ]
    for f in frames:
        s.receive_data(frame(f[0], f[3], fin=f[1], rsv=f[2], mask=MASK))
    assert s.take_messages() == [b"abc" * 100 + b"def" * 100]


def test_final_block_resets_the_context() -> None:
    s = server(extensions=[DeflateParams()])
    for data in (b"one", b"two"):
        payload = zlib.compress(data, wbits=-15)  # ends with a BFINAL block
        s.receive_data(frame(OP_BINARY, payload, rsv=4, mask=MASK))
    assert s.take_messages() == [b"one", b"two"]


def test_data_after_final_block() -> None:
    s = server(extensions=[DeflateParams()])
    payload = zlib.compress(b"one", wbits=-15) + b"\x00"
    s.receive_data(frame(OP_BINARY, payload, rsv=4, mask=MASK))
    assert_failed(s, 1007, ProtocolError)


def test_client_inflates_with_the_server_window() -> None:
    c = client(extensions=[DeflateParams(server_max_window_bits=9)])
    compressor = zlib.compressobj(6, zlib.DEFLATED, -9)
    data = compressor.compress(b"xyz" * 100) + compressor.flush(zlib.Z_SYNC_FLUSH)
    c.receive_data(frame(OP_BINARY, data[:-4], rsv=4))
    assert c.take_messages() == [b"xyz" * 100]


@pytest.mark.parametrize(
    ("data", "code", "reason"),
    [
        (frame(OP_CONT, b"x", mask=MASK), 1002, "unexpected continuation frame"),
        (
            frame(OP_TEXT, b"a", fin=False, mask=MASK)
            + frame(OP_BINARY, b"b", mask=MASK),
            1002,
            "new message before the previous one ended",
        ),
        (
            frame(OP_TEXT, b"\xed\xa0", fin=False, mask=MASK),
            1007,
            "invalid UTF-8: surrogate",
        ),
    ],
)
def test_frame_filter_close_reasons(data: bytes, code: int, reason: str) -> None:
    s = server()
    s.receive_data(data)
    payload = parse_frames(bytes(s.data_to_send()))[-1][3]
    assert payload == code.to_bytes(2, "big") + reason.encode()
    assert str(s.failure) == reason


def test_invalid_compressed_data_reason() -> None:
    s = server(extensions=[DeflateParams()])
    s.receive_data(frame(OP_BINARY, b"\xff\xff", rsv=4, mask=MASK))
    assert str(s.failure).startswith("invalid compressed data: ")
    assert_failed(s, 1007, ProtocolError)
