"""MinBinCodec: byte-identical to sc-codec-min-bin 3.0.0 (msgpack-lite, binarraybuffer, preset false)."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubbub.protocol import CodecError, MinBinCodec, get_codec
from hubbub.protocol._minbin_codec import pack_exact

DATA = Path(__file__).resolve().parent.parent / "data"
EXPECTED_BINARY_FRAMES = 147

codec = MinBinCodec()


def _load_frames() -> list[dict[str, Any]]:
    frames = []
    with (DATA / "transcript-minbin.jsonl").open(encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if record.get("kind") == "frame" and record.get("opcode") == "binary":
                frames.append(record)
    return frames


FRAMES = _load_frames()


def _from_recorded(value: Any) -> Any:
    """The transcript writes a decoded ArrayBuffer as ``{"<ArrayBuffer hex>": "..."}``."""
    if isinstance(value, dict):
        if list(value) == ["<ArrayBuffer hex>"]:
            return bytes.fromhex(value["<ArrayBuffer hex>"])
        return {k: _from_recorded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_recorded(v) for v in value]
    return value


def test_transcript_frame_count() -> None:
    assert len(FRAMES) > 100
    assert len(FRAMES) == EXPECTED_BINARY_FRAMES


@pytest.mark.parametrize("frame", FRAMES, ids=[f"{i:03d}-{f['dir']}" for i, f in enumerate(FRAMES)])
def test_recorded_frame_round_trip(frame: dict[str, Any]) -> None:
    raw = bytes.fromhex(frame["hex"])
    decoded = codec.decode(raw)
    assert decoded == _from_recorded(frame["decoded"])
    assert codec.encode(decoded) == raw
    # The wire structure itself (already compressed) also packs to the same bytes with the exact writer.
    assert pack_exact(msgpack.unpackb(raw, raw=False)) == raw


def test_get_codec() -> None:
    minbin = get_codec("minbin")
    assert isinstance(minbin, MinBinCodec)
    assert minbin.binary is True
    assert minbin.name == "minbin"


# --- packet compression -----------------------------------------------------------------------------


def _wire(value: Any) -> Any:
    return msgpack.unpackb(codec.encode(value), raw=False, strict_map_key=False)


def test_handshake_bytes_match_transcript() -> None:
    packet = {"event": "#handshake", "data": {"authToken": None}, "cid": 1}
    assert codec.encode(packet).hex() == "81a16593aa2368616e647368616b6581a961757468546f6b656ec001"


def test_event_without_data_is_written_with_nil() -> None:
    # {"event": "#removeAuthToken"} (as packets.py builds it) -> {"e": ["#removeAuthToken", nil]}
    assert (
        codec.encode({"event": "#removeAuthToken"}) == bytes.fromhex("81a16592b0") + b"#removeAuthToken\xc0"
    )
    assert codec.decode(codec.encode({"event": "#removeAuthToken"})) == {
        "event": "#removeAuthToken",
        "data": None,
    }


def test_publish_packets() -> None:
    publish = {"event": "#publish", "data": {"channel": "room", "data": {"text": "hi"}}}
    assert _wire(publish) == {"p": ["room", {"text": "hi"}]}
    assert _wire({**publish, "cid": 4}) == {"p": ["room", {"text": "hi"}, 4]}
    assert codec.decode(codec.encode({**publish, "cid": 4})) == {**publish, "cid": 4}
    # A #publish without data is an ordinary event packet.
    assert _wire({"event": "#publish"}) == {"e": ["#publish", None]}
    # Missing channel/data members become nil.
    assert _wire({"event": "#publish", "data": {}}) == {"p": [None, None]}


def test_publish_with_offset_and_epoch_keeps_them_in_the_e_envelope() -> None:
    # A history channel's publication: the p envelope has no room for offset and epoch.
    data = {"channel": "hist/1", "data": {"i": 1}, "offset": 7, "epoch": "k3j9x0"}
    publish = {"event": "#publish", "data": data}
    assert _wire(publish) == {"e": ["#publish", data]}
    assert codec.decode(codec.encode(publish)) == publish
    assert codec.decode(codec.encode([publish, publish])) == [publish, publish]


def test_event_packets() -> None:
    assert _wire({"event": "greet", "data": "world"}) == {"e": ["greet", "world"]}
    assert _wire({"event": "echo", "data": 1, "cid": 7}) == {"e": ["echo", 1, 7]}
    assert _wire({"event": "clientProc", "cid": 1, "data": {"q": 1}}) == {"e": ["clientProc", {"q": 1}, 1]}
    assert _wire({"event": "echo", "data": "x", "cid": "abc"}) == {"e": ["echo", "x", "abc"]}
    # Other keys stay beside the envelope.
    assert _wire({"event": "x", "data": 1, "extra": True}) == {"extra": True, "e": ["x", 1]}


def test_response_packets_always_have_three_elements() -> None:
    assert codec.encode({"rid": 2}) == bytes.fromhex("81a1729302c0c0")
    assert _wire({"rid": 8, "data": {"a": 1}}) == {"r": [8, None, {"a": 1}]}
    error = {"message": "no", "name": "MyError"}
    assert _wire({"rid": 9, "error": error}) == {"r": [9, error, None]}
    assert codec.decode(codec.encode({"rid": 2})) == {"rid": 2, "error": None, "data": None}


def test_batches_compress_each_element() -> None:
    batch = [
        {"event": "greet", "data": "b1"},
        {"rid": 3, "data": "ok"},
        {"event": "echo", "data": 2, "cid": 9},
    ]
    assert _wire(batch) == [{"e": ["greet", "b1"]}, {"r": [3, None, "ok"]}, {"e": ["echo", 2, 9]}]
    assert codec.decode(codec.encode(batch)) == [
        {"event": "greet", "data": "b1"},
        {"rid": 3, "error": None, "data": "ok"},
        {"event": "echo", "data": 2, "cid": 9},
    ]


def test_batch_elements_are_cloned_like_js_for_in() -> None:
    # clonePacket copies own enumerable properties: null/numbers -> {}, strings/arrays -> index keys.
    assert _wire([None, 5, "ab", [1, 2], b"\x01"]) == [{}, {}, {"0": "a", "1": "b"}, {"0": 1, "1": 2}, {}]


def test_non_packets_are_encoded_unchanged() -> None:
    assert _wire({"a": 1}) == {"a": 1}
    assert _wire("text") == "text"
    assert _wire(5) == 5
    assert _wire({"event": None, "rid": None}) == {"event": None, "rid": None}


def test_encode_does_not_modify_the_packet() -> None:
    packet = {"event": "#publish", "data": {"channel": "c", "data": 1}, "cid": 3}
    batch = [dict(packet)]
    codec.encode(packet)
    codec.encode(batch)
    assert packet == {"event": "#publish", "data": {"channel": "c", "data": 1}, "cid": 3}
    assert batch == [packet]


def test_decompress_odd_shapes_like_js() -> None:
    # e[i] is read as JavaScript indexes: a string is indexed by character, missing items are undefined.
    assert codec.decode(msgpack.packb({"e": "abc"})) == {"event": "a", "data": "b", "cid": "c"}
    assert codec.decode(msgpack.packb({"e": ["x"]})) == {"event": "x", "data": None}
    assert codec.decode(msgpack.packb({"e": 5})) == {"event": None, "data": None}
    assert codec.decode(msgpack.packb({"p": ["ch"]})) == {
        "event": "#publish",
        "data": {"channel": "ch", "data": None},
    }
    assert codec.decode(msgpack.packb({"r": [1]})) == {"rid": 1, "error": None, "data": None}
    assert codec.decode(msgpack.packb([{"e": ["a", 1]}, 7, "s"])) == [{"event": "a", "data": 1}, 7, "s"]
    assert codec.decode(msgpack.packb({"x": 1})) == {"x": 1}
    assert codec.decode(msgpack.packb("hello")) == "hello"


# --- msgpack-lite value encoding ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "00"),
        (127, "7f"),
        (128, "cc80"),
        (255, "ccff"),
        (256, "cd0100"),
        (65535, "cdffff"),
        (65536, "ce00010000"),
        (2**31 - 1, "ce7fffffff"),
        (2**31, "cb41e0000000000000"),
        (2**32, "cb41f0000000000000"),
        (2**53 + 1, "cb4340000000000000"),
        (2**64, "cb43f0000000000000"),
        (-1, "ff"),
        (-32, "e0"),
        (-33, "d0df"),
        (-128, "d080"),
        (-129, "d1ff7f"),
        (-32768, "d18000"),
        (-32769, "d2ffff7fff"),
        (-(2**31), "d280000000"),
        (-(2**31) - 1, "cbc1e0000000200000"),
        (1.0, "01"),
        (-0.0, "00"),
        (300.0, "cd012c"),
        (2147483647.0, "ce7fffffff"),
        (2147483648.0, "cb41e0000000000000"),
        (1.5, "cb3ff8000000000000"),
        (0.1, "cb3fb999999999999a"),
        (math.inf, "cb7ff0000000000000"),
        (-math.inf, "cbfff0000000000000"),
        (math.nan, "cb7ff8000000000000"),
        (-math.nan, "cb7ff8000000000000"),
        (10**400, "cb7ff0000000000000"),
        (-(10**400), "cbfff0000000000000"),
        (True, "c3"),
        (False, "c2"),
        (None, "c0"),
    ],
)
def test_number_and_constant_encoding(value: Any, expected: str) -> None:
    assert codec.encode(value).hex() == expected
    assert codec.encode([{"event": "n", "data": [value]}]).hex().endswith(expected)
    assert pack_exact(value).hex() == expected


def test_millisecond_timestamps_are_float64() -> None:
    assert _wire({"event": "t", "data": {"ts": 1795273964123}}) == {"e": ["t", {"ts": 1795273964123.0}]}
    assert codec.encode({"ts": 1795273964123}).hex() == "81a27473cb427a1feaaba5b000"


@pytest.mark.parametrize(
    ("length", "header"),
    [
        (0, "c400"),
        (1, "c401"),
        (254, "c4fe"),
        (255, "c500ff"),
        (256, "c50100"),
        (65535, "c5ffff"),
        (65536, "c6"),
    ],
)
def test_bin_headers_follow_msgpack_lite(length: int, header: str) -> None:
    # msgpack-lite uses bin8 only below 0xFF bytes: a 255-byte ArrayBuffer gets the bin16 header.
    for value in (b"\xab" * length, bytearray(b"\xab" * length), memoryview(b"\xab" * length)):
        encoded = codec.encode(value)
        assert encoded.startswith(bytes.fromhex(header))
        assert encoded.endswith(b"\xab" * length)
        assert codec.decode(encoded) == b"\xab" * length


def test_bin_in_a_packet_and_decoding_to_bytes() -> None:
    packet = {"event": "binary", "data": {"ab": b"\x01\x02\x03", "big": b"x" * 255}}
    encoded = codec.encode(packet)
    assert b"\xa2ab\xc4\x03\x01\x02\x03" in encoded
    assert b"\xc5\x00\xff" + b"x" * 255 in encoded
    assert codec.decode(encoded) == {"event": "binary", "data": {"ab": b"\x01\x02\x03", "big": b"x" * 255}}


def test_ext_headers_follow_msgpack_lite() -> None:
    assert codec.encode(msgpack.ExtType(5, b"x" * 4))[:2].hex() == "d605"
    assert codec.encode(msgpack.ExtType(5, b"x" * 254))[:3].hex() == "c7fe05"
    assert codec.encode(msgpack.ExtType(5, b"x" * 255))[:4].hex() == "c800ff05"


def test_strings() -> None:
    assert codec.encode("a" * 31)[:1].hex() == "bf"
    assert codec.encode("a" * 32)[:2].hex() == "d920"
    assert codec.encode("a" * 256)[:3].hex() == "da0100"
    assert codec.encode("é€😀") == b"\xa9" + "é€😀".encode()
    # Node writes a lone surrogate as U+FFFD and joins a split surrogate pair.
    assert codec.encode("a\ud800b") == b"\xa5a\xef\xbf\xbdb"
    assert codec.encode("\ud83d\ude00") == b"\xa4" + "😀".encode()
    assert codec.encode({"\ud800": 1}) == b"\x81\xa3\xef\xbf\xbd\x01"


def test_false_positive_bytes_do_not_change_output() -> None:
    # Bytes that look like float64/uint32/int64 headers inside strings and number payloads.
    value = {
        "event": "x",
        "data": {"greek": "ώψ", "n": [203, 207, 211, 0xCBCB, 0x7FCECECE], "b": b"\xcb\xce\xff"},
    }
    assert codec.encode(value) == msgpack.packb({"e": ["x", value["data"]]}, use_bin_type=True)


def test_tuples_and_subclasses() -> None:
    class Code(int):
        pass

    assert _wire({"t": (1, 2.0, Code(3))}) == {"t": [1, 2, 3]}
    # A top-level tuple is a batch, like a list.
    assert _wire(({"event": "x"},)) == [{"e": ["x", None]}]
    assert _wire([{"event": "x", "data": (1.0,)}]) == [{"e": ["x", [1]]}]


def test_unsupported_types_raise_type_error() -> None:
    with pytest.raises(TypeError):
        codec.encode({"event": "x", "data": object()})
    with pytest.raises(TypeError):
        codec.encode({"event": "x", "data": [1.5, object()]})


# --- decoding -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [b"", b"\xc1", b"\x92\x01", b"\xa5ab", b"\xc0", b"\x92\x80\xc0", b"\xd9", bytearray(b"\xc1")],
)
def test_garbage_raises_codec_error(message: bytes) -> None:
    with pytest.raises(CodecError):
        codec.decode(message)


@pytest.mark.parametrize("message", ["", "#2", '{"event":"x"}', "\x81\xa1e"])
def test_text_frames_raise_codec_error(message: str) -> None:
    with pytest.raises(CodecError):
        codec.decode(message)


def test_trailing_bytes_are_ignored() -> None:
    # msgpack-lite's decode reads one value.
    assert codec.decode(codec.encode({"event": "x", "data": 1}) + b"\xc1junk") == {"event": "x", "data": 1}


def test_memoryview_and_bytearray_input() -> None:
    encoded = codec.encode({"rid": 1, "data": "ok"})
    assert codec.decode(memoryview(encoded)) == {"rid": 1, "error": None, "data": "ok"}
    assert codec.decode(bytearray(encoded)) == {"rid": 1, "error": None, "data": "ok"}


def test_invalid_utf8_is_read_leniently_like_msgpack_lite() -> None:
    # msgpack-lite's own UTF-8 reader never fails: a stray byte >= 0x80 becomes that code point,
    # an encoded surrogate stays a surrogate, an overlong form is accepted.
    assert codec.decode(b"\xa3a\xffb") == "a\xffb"
    assert codec.decode(b"\xa3\xed\xa0\x80") == "\ud800"
    assert codec.decode(b"\xa2\xc0\x80") == "\x00"
    # A truncated sequence at the end of the message reads `undefined` (0) for the missing bytes.
    assert codec.decode(b"\x81\xa2\xffx\xa2\xe2\x82") == {"\xffx": "\u2080"}
    assert codec.decode(b"\xa4\xf0\x9f\x98\x80") == "\ud83d\ude00".encode("utf-16", "surrogatepass").decode(
        "utf-16"
    )


def test_floats_and_big_ints_decode_as_python_numbers() -> None:
    assert codec.decode(bytes.fromhex("cb3ff8000000000000")) == 1.5
    assert codec.decode(bytes.fromhex("ca3fc00000")) == 1.5
    assert codec.decode(bytes.fromhex("cf0000000100000000")) == 2**32
    assert codec.decode(bytes.fromhex("d3ffffffff00000000")) == -(2**32)


# --- hypothesis ---------------------------------------------------------------------------------------

int32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    int32,
    st.floats(allow_nan=False),
    st.text(),
    st.binary(max_size=300),
)
json_like = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
names = st.text(max_size=12)
cids = st.one_of(st.none(), st.integers(min_value=1, max_value=2**31 - 1))


@st.composite
def packets(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A packet and what the codec's decode gives back for it."""
    kind = draw(st.sampled_from(["event", "publish", "response"]))
    data = draw(st.one_of(st.just(None), json_like))
    cid = draw(cids)
    if kind == "event":
        packet: dict[str, Any] = {"event": draw(names.filter(lambda n: n != "#publish"))}
        if data is not None:
            packet["data"] = data
        expected: dict[str, Any] = {"event": packet["event"], "data": data}
    elif kind == "publish":
        channel = draw(names)
        packet = {"event": "#publish", "data": {"channel": channel, "data": data}}
        expected = {"event": "#publish", "data": {"channel": channel, "data": data}}
    else:
        error = draw(st.one_of(st.none(), st.fixed_dictionaries({"message": st.text(), "name": names})))
        packet = {"rid": draw(st.integers(min_value=1, max_value=2**31 - 1))}
        if error is not None:
            packet["error"] = error
        elif data is not None:
            packet["data"] = data
        return packet, {"rid": packet["rid"], "error": error, "data": None if error is not None else data}
    if cid is not None:
        packet["cid"] = cid
        expected["cid"] = cid
    return packet, expected


@settings(max_examples=300)
@given(packets())
def test_packet_round_trip(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    packet, expected = case
    encoded = codec.encode(packet)
    assert isinstance(encoded, bytes)
    assert codec.decode(encoded) == expected


@settings(max_examples=100)
@given(st.lists(packets(), min_size=1, max_size=4))
def test_batch_round_trip(cases: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    assert codec.decode(codec.encode([p for p, _ in cases])) == [e for _, e in cases]


any_number = st.one_of(st.integers(), st.integers(min_value=-(2**70), max_value=2**70), st.floats())
wide_leaves = st.one_of(leaves, any_number, st.floats(), st.text(alphabet=st.characters(codec="utf-8")))
wide_values = st.recursive(
    wide_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=300)
@given(wide_values)
def test_fast_path_matches_exact_writer(value: Any) -> None:
    assert codec.encode({"x": value}) == pack_exact({"x": value})


def _js_number_model(number: float) -> bytes:
    """msgpack-lite's rule written independently: ``value | 0 === value`` -> int, else float64."""
    as_float = (
        float(number)
        if not isinstance(number, int) or abs(number) < 2**1024
        else math.copysign(math.inf, number)
    )
    if as_float == as_float and as_float.is_integer() and -(2**31) <= as_float < 2**31:
        return msgpack.packb(int(as_float))
    if as_float != as_float:
        return b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"
    return b"\xcb" + struct.pack(">d", as_float)


@settings(max_examples=300)
@given(any_number)
def test_number_rule(number: float) -> None:
    assert codec.encode(number) == _js_number_model(number)
    assert codec.encode({"event": "n", "data": number}).endswith(_js_number_model(number))
