"""Connection rules: heartbeats per protocol version and role, the server's strict handshake, timers, call ids."""

from __future__ import annotations

from typing import Any

import pytest

from hubbub.protocol import (
    PING,
    PONG,
    CallIds,
    CloseCode,
    Connection,
    Invoke,
    JsonCodec,
    Liveness,
    MinBinCodec,
    ProtocolViolation,
    Raw,
    Response,
    Role,
    State,
    Transmit,
)

HANDSHAKE = '{"event":"#handshake","data":{"authToken":null},"cid":1}'


def server(codec: Any = None, version: int = 2) -> Connection:
    return Connection(Role.SERVER, codec or JsonCodec(), protocol_version=version)


def client(codec: Any = None, version: int = 2) -> Connection:
    return Connection(Role.CLIENT, codec or JsonCodec(), protocol_version=version)


# --- strict handshake (server) -----------------------------------------------------------------------


def test_server_accepts_handshake_with_numeric_cid() -> None:
    conn = server()
    assert conn.state is State.CONNECTING
    assert conn.receive(HANDSHAKE) == [Invoke("#handshake", {"authToken": None}, 1)]
    assert conn.receive('{"event":"#handshake","cid":17}') == [Invoke("#handshake", None, 17)]


@pytest.mark.parametrize(
    "message",
    [
        '{"event":"#handshake","data":{}}',
        '{"event":"#handshake","data":{"authToken":null}}',
        '{"event":"#handshake","data":{},"cid":"1"}',
        '{"event":"#handshake","data":{},"cid":true}',
        '{"event":"#handshake","cid":null}',
        '[{"event":"#handshake","data":{}}]',
    ],
)
def test_server_handshake_without_numeric_cid_is_4008(message: str) -> None:
    with pytest.raises(ProtocolViolation) as info:
        server().receive(message)
    assert info.value.code == CloseCode.HANDSHAKE_REJECTED == 4008


@pytest.mark.parametrize(
    "message",
    [
        '{"event":"echo","data":1,"cid":1}',
        '{"event":"greet","data":"x"}',
        '{"rid":1,"data":"x"}',
        '{"event":"#authenticate","data":"token","cid":1}',
        "this is not json",
        '{"broken": json',
        "[]",
        '[{"event":"echo","cid":1},{"event":"#handshake","cid":2}]',
        "#1",
        "#2",
    ],
)
def test_server_any_other_first_message_is_4009(message: str) -> None:
    with pytest.raises(ProtocolViolation) as info:
        server().receive(message)
    assert info.value.code == CloseCode.MESSAGE_BEFORE_HANDSHAKE == 4009


def test_server_pong_before_handshake_is_4009() -> None:
    with pytest.raises(ProtocolViolation) as info:
        server().receive("")
    assert info.value.code == 4009
    with pytest.raises(ProtocolViolation) as info:
        server(version=1).receive("#2")
    assert info.value.code == 4009


def test_server_batch_starting_with_handshake_is_accepted() -> None:
    packets = server().receive('[{"event":"#handshake","cid":1},{"event":"greet","data":1}]')
    assert packets == [Invoke("#handshake", None, 1), Transmit("greet", 1)]


def test_server_minbin_handshake_rules() -> None:
    codec = MinBinCodec()
    conn = server(codec)
    handshake = codec.encode({"event": "#handshake", "data": {"authToken": None}, "cid": 1})
    assert conn.receive(handshake) == [Invoke("#handshake", {"authToken": None}, 1)]
    with pytest.raises(ProtocolViolation) as info:
        server(codec).receive(codec.encode({"event": "#handshake", "data": {}}))
    assert info.value.code == 4008
    with pytest.raises(ProtocolViolation) as info:
        server(codec).receive(codec.encode({"event": "echo", "data": 1, "cid": 1}))
    assert info.value.code == 4009
    # Undecodable binary data and text frames under min-bin are raw messages: 4009 before the handshake.
    with pytest.raises(ProtocolViolation) as info:
        server(codec).receive(b"\xc1")
    assert info.value.code == 4009
    with pytest.raises(ProtocolViolation) as info:
        server(codec).receive("this is not json")
    assert info.value.code == 4009


def test_server_after_handshake_accepts_everything() -> None:
    conn = server()
    conn.receive(HANDSHAKE)
    conn.handshake_complete()
    assert conn.state is State.OPEN
    assert conn.receive("") == [PONG]
    assert conn.receive('{"event":"greet","data":"x"}') == [Transmit("greet", "x")]
    assert conn.receive('{"rid":999,"data":"unsolicited"}') == [Response(999, "unsolicited")]
    assert conn.receive("this is not json") == [Raw("this is not json")]
    assert conn.receive('{"event":"#handshake","data":{}}') == [Transmit("#handshake", {})]


def test_client_has_no_strict_handshake() -> None:
    conn = client()
    assert conn.receive('{"event":"#setAuthToken","data":{"token":"t"}}') == [
        Transmit("#setAuthToken", {"token": "t"})
    ]
    assert conn.receive('{"rid":1,"data":{"id":"x","pingTimeout":5000,"isAuthenticated":false}}') == [
        Response(1, {"id": "x", "pingTimeout": 5000, "isAuthenticated": False})
    ]


def test_closed_connection_ignores_messages() -> None:
    conn = server()
    conn.close()
    assert conn.state is State.CLOSED
    assert conn.receive('{"event":"echo","cid":1}') == []
    assert conn.receive("") == []


# --- heartbeats ----------------------------------------------------------------------------------------


def _open(conn: Connection) -> Connection:
    conn.handshake_complete()
    return conn


def test_protocol_v2_heartbeats_are_empty_strings() -> None:
    srv = _open(server())
    cli = _open(client())
    assert srv.ping_message == "" and srv.pong_message == ""
    assert cli.ping_message == "" and cli.pong_message == ""
    assert srv.receive("") == [PONG]
    assert cli.receive("") == [PING]
    # v1 strings are not heartbeats in v2: they are raw messages.
    assert srv.receive("#2") == [Raw("#2")]
    assert cli.receive("#1") == [Raw("#1")]


def test_protocol_v1_heartbeats() -> None:
    srv = _open(server(version=1))
    cli = _open(client(version=1))
    assert (srv.ping_message, srv.pong_message) == ("#1", "#2")
    assert (cli.ping_message, cli.pong_message) == ("#1", "#2")
    assert srv.receive("#2") == [PONG]
    assert cli.receive("#1") == [PING]
    # Each role only recognises the other side's heartbeat.
    assert srv.receive("#1") == [Raw("#1")]
    assert cli.receive("#2") == [Raw("#2")]
    assert srv.receive("") == [Raw("")]
    assert cli.receive("") == [Raw("")]


def test_heartbeats_bypass_the_minbin_codec() -> None:
    srv = _open(server(MinBinCodec()))
    cli = _open(client(MinBinCodec()))
    assert srv.receive("") == [PONG]
    assert cli.receive("") == [PING]
    assert _open(server(MinBinCodec(), version=1)).receive("#2") == [PONG]
    assert _open(client(MinBinCodec(), version=1)).receive("#1") == [PING]


def test_heartbeat_objects() -> None:
    assert PING.is_ping is True
    assert PONG.is_ping is False


def test_unsupported_protocol_version() -> None:
    with pytest.raises(ValueError, match="protocol version"):
        Connection(Role.SERVER, JsonCodec(), protocol_version=3)


def test_encode_uses_the_codec() -> None:
    assert server().encode({"rid": 1}) == '{"rid":1}'
    assert server(MinBinCodec()).encode({"rid": 2}) == bytes.fromhex("81a1729302c0c0")


# --- liveness and call ids -------------------------------------------------------------------------------


def test_liveness_expires_timeout_after_the_last_data() -> None:
    live = Liveness(timeout=30.0, now=100.0)
    assert not live.expired(130.0)
    assert live.expired(130.001)
    live.on_data(125.0)
    assert not live.expired(155.0)
    assert live.expired(155.5)


def test_call_ids_count_up_from_one() -> None:
    ids = CallIds()
    assert [ids.next() for _ in range(5)] == [1, 2, 3, 4, 5]
    other = CallIds()
    assert other.next() == 1
    assert ids.next() == 6
