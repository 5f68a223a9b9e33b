"""read_packets: how a decoded message becomes typed packets (JavaScript ``typeof`` rules)."""

from __future__ import annotations

from typing import Any

import pytest

from hubbub.protocol import (
    Invoke,
    JsonCodec,
    MinBinCodec,
    Raw,
    Response,
    Transmit,
    client_invoke_packet,
    read_packets,
    server_invoke_packet,
    transmit_packet,
)
from hubbub.protocol._packets import is_number


@pytest.mark.parametrize(
    ("decoded", "expected"),
    [
        ({"event": "greet", "data": "world"}, Transmit("greet", "world")),
        ({"event": "#removeAuthToken"}, Transmit("#removeAuthToken", None)),
        ({"event": "echo", "data": {"a": 1}, "cid": 8}, Invoke("echo", {"a": 1}, 8)),
        ({"event": "echo", "cid": 7}, Invoke("echo", None, 7)),
        ({"event": "echo", "data": 1, "cid": 2.5}, Invoke("echo", 1, 2.5)),
        # A string cid makes it a plain transmit (no reply) [wire E06].
        ({"event": "echo", "data": "str-cid", "cid": "abc"}, Transmit("echo", "str-cid")),
        # A bool is not a number in JavaScript.
        ({"event": "echo", "data": 1, "cid": True}, Transmit("echo", 1)),
        ({"event": "echo", "data": 1, "cid": None}, Transmit("echo", 1)),
        ({"rid": 8, "data": {"a": 1}}, Response(8, {"a": 1}, None)),
        ({"rid": 2}, Response(2, None, None)),
        ({"rid": 9, "error": {"message": "x"}}, Response(9, None, {"message": "x"})),
        ({"rid": 3, "error": None, "data": None}, Response(3, None, None)),
        # An event with a string name wins over rid.
        ({"event": "x", "rid": 1}, Transmit("x", None)),
        # Unknown shapes are raw.
        ({"rid": "1"}, Raw({"rid": "1"})),
        ({"rid": True}, Raw({"rid": True})),
        ({"event": 5, "data": 1}, Raw({"event": 5, "data": 1})),
        ({"event": None, "rid": None}, Raw({"event": None, "rid": None})),
        ({}, Raw({})),
        ("this is not json", Raw("this is not json")),
        (42, Raw(42)),
        (None, Raw(None)),
    ],
)
def test_read_one_packet(decoded: Any, expected: Any) -> None:
    assert read_packets(decoded) == [expected]


def test_batches_give_one_packet_per_element() -> None:
    batch = [
        {"event": "greet", "data": "batch-1"},
        {"event": "echo", "data": "batch-3", "cid": 29},
        {"rid": 30, "data": "batch-done"},
        "junk",
    ]
    assert read_packets(batch) == [
        Transmit("greet", "batch-1"),
        Invoke("echo", "batch-3", 29),
        Response(30, "batch-done", None),
        Raw("junk"),
    ]
    assert read_packets([]) == []


def test_recorded_json_frames_classify() -> None:
    codec = JsonCodec()
    assert read_packets(codec.decode('{"event":"echo","data":"str-cid","cid":"abc"}')) == [
        Transmit("echo", "str-cid")
    ]
    assert read_packets(codec.decode('{"rid":999,"data":"unsolicited response"}')) == [
        Response(999, "unsolicited response")
    ]
    assert read_packets(codec.decode('{"broken": json')) == [Raw('{"broken": json')]


def test_minbin_decoded_packets_classify_the_same() -> None:
    codec = MinBinCodec()
    assert read_packets(codec.decode(codec.encode({"event": "echo", "data": "x", "cid": "abc"}))) == [
        Transmit("echo", "x")
    ]
    assert read_packets(codec.decode(codec.encode({"rid": 4}))) == [Response(4, None, None)]
    publish = {"event": "#publish", "data": {"channel": "room", "data": 1}, "cid": 6}
    assert read_packets(codec.decode(codec.encode(publish))) == [
        Invoke("#publish", {"channel": "room", "data": 1}, 6)
    ]


def test_is_number_is_javascript_typeof_number() -> None:
    assert is_number(1)
    assert is_number(1.5)
    assert not is_number(True)
    assert not is_number(False)
    assert not is_number("1")
    assert not is_number(None)


def test_builders_key_order() -> None:
    assert list(client_invoke_packet("echo", {"a": 1}, 8)) == ["event", "data", "cid"]
    assert list(server_invoke_packet("clientProc", {"q": 1}, 1)) == ["event", "cid", "data"]
    assert client_invoke_packet("#handshake", None, 1) == {"event": "#handshake", "cid": 1}
    assert transmit_packet("#removeAuthToken") == {"event": "#removeAuthToken"}
    assert transmit_packet("greet", "world") == {"event": "greet", "data": "world"}
