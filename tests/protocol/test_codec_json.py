"""JsonCodec: sc-formatter 4.0.0 (compact JSON text frames)."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubbub.protocol import JsonCodec, get_codec

DATA = Path(__file__).resolve().parent.parent / "data"
HEARTBEATS = {"", "#1", "#2"}
EXPECTED_JSON_FRAMES = 147
EXPECTED_RAW_FRAMES = ["this is not json", '{"broken": json']

codec = JsonCodec()


def _load_texts() -> list[str]:
    texts = []
    with (DATA / "transcript-json.jsonl").open(encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if record.get("kind") == "frame" and record["text"] not in HEARTBEATS:
                texts.append(record["text"])
    return texts


TEXTS = _load_texts()
JSON_TEXTS = [t for t in TEXTS if t not in EXPECTED_RAW_FRAMES]


def test_transcript_frame_count() -> None:
    assert len(JSON_TEXTS) > 100
    assert len(JSON_TEXTS) == EXPECTED_JSON_FRAMES
    assert [t for t in TEXTS if t in EXPECTED_RAW_FRAMES] == EXPECTED_RAW_FRAMES


@pytest.mark.parametrize("text", JSON_TEXTS, ids=[f"{i:03d}" for i in range(len(JSON_TEXTS))])
def test_recorded_frame_round_trip(text: str) -> None:
    decoded = codec.decode(text)
    assert isinstance(decoded, dict | list)
    assert codec.encode(decoded) == text


@pytest.mark.parametrize("text", EXPECTED_RAW_FRAMES)
def test_recorded_non_json_frames_come_back_raw(text: str) -> None:
    assert codec.decode(text) == text


def test_get_codec() -> None:
    json_codec = get_codec("json")
    assert isinstance(json_codec, JsonCodec)
    assert json_codec.binary is False
    assert json_codec.name == "json"
    with pytest.raises(ValueError, match="unknown codec"):
        get_codec("xml")


def test_compact_output_in_insertion_order() -> None:
    packet = {"event": "clientProc", "cid": 1, "data": {"b": 1, "a": [1, 2.5, None, True, "é"]}}
    assert codec.encode(packet) == '{"event":"clientProc","cid":1,"data":{"b":1,"a":[1,2.5,null,true,"é"]}}'


def test_bytes_encode_as_base64_objects() -> None:
    assert codec.encode({"ab": b"\x01\x02\x03"}) == '{"ab":{"base64":true,"data":"AQID"}}'
    assert codec.encode({"ab": bytearray(b"\x00\xff")}) == '{"ab":{"base64":true,"data":"AP8="}}'
    assert codec.encode([memoryview(b"abc")]) == '[{"base64":true,"data":"YWJj"}]'
    assert codec.encode(b"") == '{"base64":true,"data":""}'
    # ... and are not turned back into bytes by decode.
    assert codec.decode('{"ab":{"base64":true,"data":"AQID"}}') == {"ab": {"base64": True, "data": "AQID"}}


def test_jsonified_node_buffers_encode_as_base64() -> None:
    # sc-formatter rehydrates {type: 'Buffer', data: [...]} with Buffer.from(data).
    assert codec.encode({"buf": {"type": "Buffer", "data": [97, 98, 99]}}) == (
        '{"buf":{"base64":true,"data":"YWJj"}}'
    )
    # Buffer.from applies ToUint8 to each element.
    assert codec.encode({"type": "Buffer", "data": [256, -1, 1.9, "7", None, True, "x", [2], "0x10"]}) == (
        '{"base64":true,"data":"AP8BBwABAAIQ"}'
    )
    # Not a Buffer: data is not an array, or type is not exactly "Buffer", or it is only text.
    assert codec.encode({"type": "Buffer", "data": "abc"}) == '{"type":"Buffer","data":"abc"}'
    assert codec.encode({"type": "buffer", "data": [1]}) == '{"type":"buffer","data":[1]}'
    assert codec.encode({"s": '"type":"Buffer"'}) == '{"s":"\\"type\\":\\"Buffer\\""}'


def test_non_finite_numbers_encode_as_null() -> None:
    assert codec.encode({"a": math.nan, "b": [math.inf, -math.inf], "c": 1.5}) == (
        '{"a":null,"b":[null,null],"c":1.5}'
    )


def test_lone_surrogates_are_escaped() -> None:
    assert codec.encode({"s": "a\ud800b"}) == '{"s":"a\\ud800b"}'
    assert codec.encode({"\udfff": 1}) == '{"\\udfff":1}'
    # A surrogate pair split over two code points is one character, as in JavaScript.
    assert codec.encode(["\ud83d\ude00"]) == '["😀"]'
    assert codec.encode(["😀\x00\x1f\u2028"]) == '["😀\\u0000\\u001f\u2028"]'
    assert codec.encode(["a\ud800b"]).encode("utf-8")


def test_ping_and_pong_strings_pass_through() -> None:
    assert codec.encode("#1") == "#1"
    assert codec.encode("#2") == "#2"
    assert codec.encode("#3") == '"#3"'
    assert codec.decode("#1") == "#1"
    assert codec.decode("#2") == "#2"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "#1",
        "null",
        "42",
        '"str"',
        "true",
        "[NaN]",
        '{"a":Infinity}',
        '{"a":-Infinity}',
        "[1,]",
        "{} x",
    ],
)
def test_decode_returns_raw_string_unless_a_json_object_or_array(text: str) -> None:
    assert codec.decode(text) == text


def test_decode_accepts_leading_json_whitespace() -> None:
    assert codec.decode(' \t\r\n{"a":1}') == {"a": 1}
    assert codec.decode("[1] \n") == [1]
    assert codec.decode("\u00a0{}") == "\u00a0{}"


def test_decode_binary_frames_as_utf8_text() -> None:
    assert codec.decode(b'{"event":"x","data":1}') == {"event": "x", "data": 1}
    assert codec.decode(bytearray(b"[1]")) == [1]
    assert codec.decode(memoryview(b"[2]")) == [2]
    assert codec.decode(b'{"a":"\xff"}') == {"a": "\ufffd"}
    assert codec.decode(b"\xff") == "\ufffd"


def test_unserializable_values_raise_type_error() -> None:
    with pytest.raises(TypeError):
        codec.encode({"x": object()})


int53 = st.integers(min_value=-(2**53), max_value=2**53)
leaves = st.one_of(
    st.none(), st.booleans(), int53, st.floats(allow_nan=False, allow_infinity=False), st.text()
)
json_like = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
names = st.text(max_size=12)


@st.composite
def packets(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["event", "publish", "response"]))
    data = draw(st.one_of(st.just(None), json_like))
    cid = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=2**31 - 1)))
    packet: dict[str, Any]
    if kind == "event":
        packet = {"event": draw(names)}
        if data is not None:
            packet["data"] = data
    elif kind == "publish":
        packet = {"event": "#publish", "data": {"channel": draw(names), "data": data}}
    else:
        packet = {"rid": draw(st.integers(min_value=1, max_value=2**31 - 1))}
        if data is not None:
            packet["data"] = data
        return packet
    if cid is not None:
        packet["cid"] = cid
    return packet


@settings(max_examples=300)
@given(packets())
def test_packet_round_trip(packet: dict[str, Any]) -> None:
    text = codec.encode(packet)
    assert isinstance(text, str)
    assert codec.decode(text) == packet
    # Heartbeats and raw strings are never confused with packets.
    assert text[0] == "{"


@settings(max_examples=100)
@given(st.lists(packets(), min_size=1, max_size=4))
def test_batch_round_trip(batch: list[dict[str, Any]]) -> None:
    assert codec.decode(codec.encode(batch)) == batch


@settings(max_examples=200)
@given(st.binary(max_size=64))
def test_bytes_round_trip_as_base64_object(data: bytes) -> None:
    decoded = codec.decode(codec.encode({"event": "bin", "data": data}))
    assert decoded == {"event": "bin", "data": {"base64": True, "data": base64.b64encode(data).decode()}}


# -- read_publish: the client #publish fast path ---------------------------------------------


def _publish_text(channel: Any, data: Any, cid: int) -> str:
    """A #publish invoke as socketcluster-client sends it (JSON.stringify, key order event, data, cid)."""
    return codec.encode({"event": "#publish", "data": {"channel": channel, "data": data}, "cid": cid})


def test_read_publish_gives_the_subscribers_packet_without_reencoding() -> None:
    text = '{"event":"#publish","data":{"channel":"room","data":{"n":1.50,"s":"é"}},"cid":17}'
    publish = codec.read_publish(text)
    assert publish is not None
    assert (publish.channel, publish.data, publish.cid) == ("room", {"n": 1.5, "s": "é"}, 17)
    # The client's own text of the payload (1.50 stays 1.50), wrapped as the server's #publish packet.
    assert publish.packet_text == '{"event":"#publish","data":{"channel":"room","data":{"n":1.50,"s":"é"}}}'


@settings(max_examples=300)
@given(st.one_of(st.none(), json_like), st.text(max_size=20), st.integers(min_value=1, max_value=2**40))
def test_read_publish_agrees_with_decode_and_encode(data: Any, channel: str, cid: int) -> None:
    text = _publish_text(channel, data, cid)
    publish = codec.read_publish(text)
    expected_packet = codec.encode({"event": "#publish", "data": {"channel": channel, "data": data}})
    if publish is None:  # only texts the encoder may rewrite are left to the general path
        assert "Buffer" in text or "\\u" in text
        return
    assert (publish.channel, publish.cid) == (channel, cid)
    assert publish.data == codec.decode(text)["data"]["data"]
    assert json.loads(publish.packet_text) == json.loads(expected_packet)


@pytest.mark.parametrize(
    "text",
    [
        '{"event":"#publish","data":{"channel":"a","data":1}}',  # no cid: a transmit
        '{"event":"#publish","data":{"channel":"a","data":1},"cid":"7"}',  # cid not a number
        '{"event":"#publish","data":{"channel":"a","data":1},"cid":7.5}',
        '{"event":"#publish","data":{"channel":"a","data":1},"cid":0}',
        '{"event":"#publish","data":{"channel":"a","data":1},"cid":7,"x":1}',  # another member
        '{"event":"#publish","data":{"channel":"a","data":1,"x":2},"cid":7}',  # extra payload key
        '{"event":"#publish","data":{"channel":"a"},"cid":7}',  # no data
        '{"event":"#publish","data":{"channel":"a","channel":5,"data":1},"cid":7}',  # channel not a string
        '{"event":"#publish","data":{"channel":"a","data":NaN},"cid":7}',  # JSON.parse rejects it
        '{"event":"#publish","data":{"channel":"a","data":1},"cid":7} ',  # trailing text
        '{"event":"#publish","data":{"channel":"a","data":{"type":"Buffer","data":[1]}},"cid":7}',
        '{"event":"#publish","data":{"channel":"a","data":"\\ud800"},"cid":7}',  # lone surrogate
        '{"event":"#publish","data":{"channel":"a","data":1},"cid":7',  # truncated
        '{"event":"#publish","data":{"channel":"a","data":[' * 1
        + "[" * 100_000
        + "]" * 100_000
        + ']},"cid":7}',
        '{"event":"#subscribe","data":{"channel":"a"},"cid":7}',
        '{"data":{"channel":"a","data":1},"event":"#publish","cid":7}',  # another key order
    ],
)
def test_read_publish_leaves_other_forms_to_the_general_path(text: str) -> None:
    assert codec.read_publish(text) is None
