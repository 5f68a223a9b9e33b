"""Hostile MessagePack under ``--codec minbin``: every message gets a clean close or is ignored.

Length bombs (headers announcing 2^32-1 elements or bytes over a few bytes of data), 100k nested
arrays or maps, ext types, truncated messages, non-string map keys and a batch of nils just under
``max_payload``: the worker never crashes or logs a traceback, its RSS stays bounded, the hostile
connection stays usable (or is closed with a code), and a fresh client still handshakes and receives.
"""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
import pytest
from websockets.exceptions import ConnectionClosed

from hubbub.protocol import get_codec

from ..cluster import test_bad_input as bad
from .probes import RssBound, assert_no_traceback, assert_tells_nothing

CODEC = get_codec("minbin")
U32 = b"\xff\xff\xff\xff"
#: The cid of hand-made packets: far from the cids the peers count up from 1.
FORGED_CID = 900_001


class MinBinPeer(bad.Peer):
    """A min-bin SocketCluster client that can also send any bytes as one binary message."""

    def send(self, packet: Any) -> None:
        self.ws.send(CODEC.encode(packet))

    def send_bytes(self, message: bytes) -> None:
        self.ws.send(message)

    def recv(self, timeout: float = bad.TIMEOUT, *, pong: bool = True) -> Any:
        """The next packet; the server's pings are answered and skipped."""
        while True:
            message = self.ws.recv(timeout=timeout)
            packet = CODEC.decode(message) if isinstance(message, bytes) else message
            if packet not in ("#1", ""):
                return packet
            self.pings += 1
            if pong:
                self.send("#2")

    def response(self, cid: int, timeout: float = bad.TIMEOUT) -> dict[str, Any]:
        """The response to ``cid``; publications that arrive first are skipped."""
        while True:
            packet = self.recv(timeout)
            if isinstance(packet, dict) and packet.get("rid") == cid:
                return packet
            assert isinstance(packet, dict) and packet.get("event") == "#publish", packet

    def invoke(self, event: str, data: Any = None, timeout: float = bad.TIMEOUT) -> dict[str, Any]:
        """Send a request and return its response (publications that come first are skipped)."""
        return self.response(self.request(event, data), timeout)

    def echo_works(self) -> None:
        """The connection is usable: an echo is answered with what was sent."""
        marker = uuid.uuid4().hex
        reply = self.invoke("echo", {"marker": marker})
        assert reply.get("error") is None and reply["data"] == {"marker": marker}, reply


@contextmanager
def minbin_peer(url: str) -> Iterator[MinBinPeer]:
    with bad.client(url) as ws:
        p = MinBinPeer(ws)
        assert p.invoke("#handshake", {"authToken": None}).get("error") is None
        yield p


def assert_serves_minbin(server: Any) -> None:
    """A fresh min-bin client handshakes, subscribes, publishes and receives its own publication."""
    channel = f"fresh-{uuid.uuid4().hex[:8]}"
    with minbin_peer(server.url) as p:
        assert p.invoke("#subscribe", {"channel": channel}).get("error") is None
        cid = p.request("#publish", {"channel": channel, "data": {"hello": channel}})
        seen = [p.recv(), p.recv()]  # the ack and the delivery, in either order
        assert {"event": "#publish", "data": {"channel": channel, "data": {"hello": channel}}} in seen, seen
        assert {"rid": cid, "data": None, "error": None} in seen or {"rid": cid} in seen, seen
    assert server.proc.poll() is None


@pytest.fixture
def server(start_server: Callable[..., Any]) -> Any:
    return start_server("--max-payload", str(1 << 20), codec="minbin")


def _ignored_or_closed(p: MinBinPeer, message: bytes) -> str:
    """Send ``message``, then an echo: 'ignored' (the echo's reply came next), 'answered' (a reply to
    ``message`` came first, telling nothing internal) or 'closed <code>'.
    """
    p.send_bytes(message)
    cid = p.request("echo", "after")
    try:
        packet = p.recv()
    except ConnectionClosed as closed:
        return f"closed {closed.rcvd.code}" if closed.rcvd else "dropped without a close frame"
    if isinstance(packet, dict) and packet.get("rid") == cid and packet.get("data") == "after":
        return "ignored"
    assert isinstance(packet, dict), packet
    assert_tells_nothing(packet.get("error"))
    assert p.recv() == {"rid": cid, "data": "after", "error": None}  # its own answer came first
    return "answered"


def _publish(channel: str, data: bytes) -> bytes:
    """A ``#publish`` packet (compressed as min-bin sends it) whose data is the raw msgpack ``data``."""
    head = msgpack.packb({"p": ["", "", FORGED_CID]})  # {"p": [channel, data, cid]}
    prefix = head[: head.index(b"\xa0")]
    return prefix + msgpack.packb(channel) + data + msgpack.packb(FORGED_CID)


LENGTH_BOMBS = {
    "str32": b"\xdb" + U32 + b"abc",
    "bin32": b"\xc6" + U32 + b"abc",
    "array32": b"\xdd" + U32 + b"\xc0\xc0",
    "map32": b"\xdf" + U32 + b"\xa1a\xc0",
    "ext32": b"\xc9" + U32 + b"\x05abc",
    "str32-in-publish": _publish("bomb", b"\xdb" + U32 + b"abc"),
    "array32-in-publish": _publish("bomb", b"\xdd" + U32 + b"\xc0"),
    "map32-in-handshake-data": b"\x81\xa1e\x93\xaa#handshake\xdf" + U32,
}


@pytest.mark.parametrize("name", list(LENGTH_BOMBS))
def test_length_bombs_are_ignored(server: Any, name: str) -> None:
    with minbin_peer(server.url) as p, RssBound(server.proc.pid, 16):
        for _ in range(50):
            assert _ignored_or_closed(p, LENGTH_BOMBS[name]) == "ignored"
        p.echo_works()
    assert_no_traceback(server)
    assert_serves_minbin(server)


DEEP = 100_000


@pytest.mark.parametrize(
    "message",
    [
        b"\x91" * DEEP + b"\xc0",  # [[[...nil...]]]
        b"\x81\xa1a" * DEEP + b"\xc0",  # {"a": {"a": ...}}
        _publish("deep", b"\x91" * DEEP + b"\xc0"),
        b"\x81\xa1e\x93\xa4echo" + b"\x91" * DEEP + b"\xc0\x02",  # an echo of deep data
    ],
    ids=["arrays", "maps", "in-publish", "in-invoke"],
)
def test_deep_nesting_is_ignored(server: Any, message: bytes) -> None:
    with minbin_peer(server.url) as p, RssBound(server.proc.pid, 16):
        p.invoke("#subscribe", {"channel": "deep"})
        for _ in range(20):
            assert _ignored_or_closed(p, message) == "ignored"
        p.echo_works()
    assert_no_traceback(server)
    assert_serves_minbin(server)


def _next_raw(reader: MinBinPeer) -> bytes:
    """The next message ``reader`` gets, as the bytes on the wire."""
    message = reader.ws.recv(timeout=bad.TIMEOUT)
    assert isinstance(message, bytes)
    return message


def _marker_arrives(p: MinBinPeer, reader: MinBinPeer, channel: str) -> None:
    """A plain publication on ``channel`` is the next thing ``reader`` gets: nothing else came first."""
    marker = uuid.uuid4().hex
    p.request("#publish", {"channel": channel, "data": marker})
    assert reader.recv() == {"event": "#publish", "data": {"channel": channel, "data": marker}}


def test_nesting_the_decoder_takes_is_relayed_deeper_is_ignored(server: Any) -> None:
    delivery = msgpack.packb({"p": ["nest", None]})[:-1]  # {"p": [channel, data]}, data to follow
    with minbin_peer(server.url) as p, minbin_peer(server.url) as reader:
        reader.invoke("#subscribe", {"channel": "nest"})
        nested = b"\x91" * 1000 + b"\xc0"
        assert _ignored_or_closed(p, _publish("nest", nested)) == "answered"  # the publish is acked
        assert _next_raw(reader) == delivery + nested  # relayed as it came
        assert _ignored_or_closed(p, _publish("nest", b"\x91" * 1100 + b"\xc0")) == "ignored"
        _marker_arrives(p, reader, "nest")
        reader.echo_works()
    assert_no_traceback(server)
    assert_serves_minbin(server)


#: Ext values as a client sends them, and how the subscribers get them (None: the message is ignored).
EXTS = {
    "fixext1": (b"\xd4\x05a", b"\xd4\x05a"),
    "ext8": (b"\xc7\x03\x05abc", b"\xc7\x03\x05abc"),
    "ext8-255": (b"\xc7\xff\x05" + b"x" * 255, b"\xc8\x00\xff\x05" + b"x" * 255),  # msgpack-lite's ext16
    "timestamp32": (b"\xd6\xff\x00\x00\x00\x01", b"\xd6\xff\x00\x00\x00\x01"),
    "timestamp-bad-length": (b"\xc7\x03\xffabc", None),
    "reserved-type": (b"\xd4\x80a", None),
}


@pytest.mark.parametrize("name", list(EXTS))
def test_ext_types_are_relayed_or_ignored(server: Any, name: str) -> None:
    sent, relayed = EXTS[name]
    delivery = msgpack.packb({"p": ["ext", None]})[:-1]
    with minbin_peer(server.url) as p, minbin_peer(server.url) as reader:
        reader.invoke("#subscribe", {"channel": "ext"})
        assert _ignored_or_closed(p, sent) == "ignored"  # a bare ext value is no packet
        if relayed is None:
            assert _ignored_or_closed(p, _publish("ext", sent)) == "ignored"
        else:
            assert _ignored_or_closed(p, _publish("ext", sent)) == "answered"
            assert _next_raw(reader) == delivery + relayed
        _marker_arrives(p, reader, "ext")
    assert_no_traceback(server)
    assert_serves_minbin(server)


def test_truncated_messages_are_ignored(server: Any) -> None:
    packet = {"event": "#publish", "data": {"channel": "t", "data": {"k": "v" * 100}}, "cid": FORGED_CID}
    whole = CODEC.encode(packet)
    with minbin_peer(server.url) as p, minbin_peer(server.url) as reader:
        reader.invoke("#subscribe", {"channel": "t"})
        for cut in (1, 2, 5, len(whole) // 2, len(whole) - 1):
            assert _ignored_or_closed(p, whole[:cut]) == "ignored", cut
        _marker_arrives(p, reader, "t")
    assert_no_traceback(server)
    assert_serves_minbin(server)


#: Maps whose keys are not strings (None: the message is ignored; "answered": an error or an ack).
ODD_KEYS = {
    "int-key-packet": (msgpack.packb({1: "x"}), "ignored"),
    "bin-key-packet": (msgpack.packb({b"e": ["echo", 1, FORGED_CID]}), "ignored"),
    "array-key-packet": (b"\x81\x91\x01\x02", "ignored"),
    "map-key-packet": (b"\x81\x81\x01\x02\x03", "ignored"),
    "event-int": (msgpack.packb({"e": [5, 1, FORGED_CID]}), "ignored"),
    "cid-map": (msgpack.packb({"e": ["echo", 1, {1: 2}]}), "ignored"),
    "rid-map": (msgpack.packb({"r": [{1: 2}, None, 1]}), "ignored"),
    "channel-map": (msgpack.packb({"p": [{1: 2}, 1, FORGED_CID]}), "answered"),
    "array-key-in-data": (_publish("t", b"\x81\x91\x01\x02"), "ignored"),
    "map-key-in-data": (_publish("t", b"\x81\x81\x01\x02\x03"), "ignored"),
}


@pytest.mark.parametrize("name", list(ODD_KEYS))
def test_non_string_map_keys(server: Any, name: str) -> None:
    message, outcome = ODD_KEYS[name]
    with minbin_peer(server.url) as p, minbin_peer(server.url) as reader:
        reader.invoke("#subscribe", {"channel": "t"})
        assert _ignored_or_closed(p, message) == outcome
        _marker_arrives(p, reader, "t")
    assert_no_traceback(server)
    assert_serves_minbin(server)


def test_scalar_map_keys_in_publish_data_are_relayed(server: Any) -> None:
    data = msgpack.packb({1: 2, None: 3, 1.5: 5})
    delivery = msgpack.packb({"p": ["t", None]})[:-1]
    with minbin_peer(server.url) as p, minbin_peer(server.url) as reader:
        reader.invoke("#subscribe", {"channel": "t"})
        assert _ignored_or_closed(p, _publish("t", data)) == "answered"
        assert _next_raw(reader) == delivery + b"\x83\x01\x02\xc0\x03\xcb?\xf8\x00\x00\x00\x00\x00\x00\x05"
        _marker_arrives(p, reader, "t")
    assert_no_traceback(server)
    assert_serves_minbin(server)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("item", [b"\xc0", b"\x80", b"\x90"], ids=["nils", "empty-maps", "empty-arrays"])
def test_a_batch_just_under_max_payload_is_ignored(server: Any, item: bytes) -> None:
    count = (1 << 20) - 5  # with its 5-byte array32 header: max_payload exactly
    started = time.monotonic()
    with RssBound(server.proc.pid, 64), minbin_peer(server.url) as p, minbin_peer(server.url) as other:
        other.invoke("#subscribe", {"channel": "b"})
        assert _ignored_or_closed(p, b"\xdd" + struct.pack(">I", count) + item * count) == "ignored"
        _marker_arrives(p, other, "b")
    assert time.monotonic() - started < 10
    assert_no_traceback(server)
    assert_serves_minbin(server)
