"""The msgpack envelope: round trip and clear errors."""

from __future__ import annotations

import msgpack
import pytest

from hubbub.broker import Envelope, EnvelopeError
from hubbub.broker._envelope import ENVELOPE_VERSION, decode, encode


def test_round_trip_keeps_every_field() -> None:
    env = Envelope.new("room:1", {"b": b"\x00\xff", "n": [1, None, 2.5]}, publish_id=7, origin="w1")
    back = decode(encode(env))
    assert back == env
    assert back.version == ENVELOPE_VERSION == 1
    assert back.published_ms > 1_600_000_000_000


def test_wire_shape_is_a_documented_map() -> None:
    raw = msgpack.unpackb(encode(Envelope("c", b"x", 3, "w", 1234)), raw=False)
    assert raw == {"v": 1, "ch": "c", "d": b"x", "id": 3, "w": "w", "t": 1234}


def test_unknown_extra_keys_are_ignored() -> None:
    raw = msgpack.packb({"v": 1, "ch": "c", "d": 1, "id": 0, "w": "w", "t": 0, "later": True})
    assert decode(raw).payload == 1


def test_non_string_map_keys_in_payload_survive() -> None:
    env = Envelope("c", {1: "one", 2: [b"two"]}, 0, "w", 0)
    assert decode(encode(env)).payload == {1: "one", 2: [b"two"]}


_PLAIN = {"v": 1, "ch": "c", "d": 1, "id": 0, "w": "w", "t": 0}


def test_history_position_round_trips_and_is_absent_on_plain_envelopes() -> None:
    env = Envelope("c", [1], 3, "w", 9, offset=42, epoch="k3j9x0aB")
    assert decode(encode(env)) == env
    assert msgpack.unpackb(encode(env), raw=False) == {
        **_PLAIN,
        "d": [1],
        "id": 3,
        "t": 9,
        "o": 42,
        "e": "k3j9x0aB",
    }
    plain = decode(encode(Envelope("c", 1, 0, "w", 0)))
    assert plain.offset is None and plain.epoch is None


def test_the_history_scripts_way_of_adding_the_position_decodes() -> None:
    """The script bumps the fixmap header by two and appends the two pairs (see _history_script)."""
    packed = encode(Envelope("c", {"x": 1}, 3, "w", 9))
    assert packed[0] == 0x86
    stored = bytes([packed[0] + 2]) + packed[1:] + b"".join(msgpack.packb(v) for v in ("o", 7, "e", "E1"))
    back = decode(stored)
    assert (back.payload, back.offset, back.epoch) == ({"x": 1}, 7, "E1")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xc1", "not a msgpack envelope"),
        (msgpack.packb([1, "c"]), "must be a msgpack map"),
        (msgpack.packb({"ch": "c"}), "no integer format version"),
        (
            msgpack.packb({"v": 2, "ch": "c", "d": 1, "id": 0, "w": "w", "t": 0}),
            "unsupported envelope version 2",
        ),
        (msgpack.packb({"v": 1, "ch": 5, "d": 1, "id": 0, "w": "w", "t": 0}), "'ch' must be str"),
        (msgpack.packb({"v": 1, "ch": "c", "id": 0, "w": "w", "t": 0}), "no payload"),
        (encode(Envelope("c", 1, 0, "w", 0)) + b"\x00", "not a msgpack envelope"),
        (msgpack.packb({**_PLAIN, "o": "1", "e": "E"}), "'o' must be an offset"),
        (msgpack.packb({**_PLAIN, "o": 0, "e": "E"}), "'o' must be an offset"),
        (msgpack.packb({**_PLAIN, "o": True, "e": "E"}), "'o' must be an offset"),
        (msgpack.packb({**_PLAIN, "o": 1.0, "e": "E"}), "'o' must be an offset"),
        (msgpack.packb({**_PLAIN, "o": 3}), "'e' must be an epoch"),
        (msgpack.packb({**_PLAIN, "e": "E"}), "'o' must be an offset"),
        (msgpack.packb({**_PLAIN, "o": 3, "e": b"E"}, use_bin_type=True), "'e' must be an epoch"),
    ],
)
def test_bad_envelopes_raise_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        decode(data)


def test_unserialisable_payload_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        encode(Envelope("c", object(), 0, "w", 0))


def test_lone_surrogates_travel_unchanged_as_their_utf8_form() -> None:
    env = Envelope("a\ud800", {"k\udc00": ["x\ud83d", "ok"]}, 1, "w", 5)
    data = encode(env)
    assert b"a\xed\xa0\x80" in data
    assert decode(data) == env


def test_integers_msgpack_cannot_hold_travel_as_floats() -> None:
    env = Envelope("c", [2**64, -(2**63) - 1, 2**64 - 1, {"n": 10**30}, "\ud800"], 1, "w", 5)
    assert decode(encode(env)).payload == [2.0**64, -(2.0**63), 2**64 - 1, {"n": 1e30}, "\ud800"]


def test_valid_unicode_takes_the_plain_msgpack_path() -> None:
    env = Envelope("é", {"d": "\U0001f600"}, 1, "w", 5)
    plain = msgpack.packb(
        {"v": 1, "ch": "é", "d": {"d": "\U0001f600"}, "id": 1, "w": "w", "t": 5}, use_bin_type=True
    )
    assert encode(env) == plain
