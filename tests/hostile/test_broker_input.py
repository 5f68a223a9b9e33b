"""One client's input never breaks the broker for the others, and no broker secret reaches a client.

A real worker on a real redis-server. The hostile input is what the hostile-input review found
(issue 10, defects 1 and 2): a channel name or publish data holding a lone UTF-16 surrogate (in
JSON ``"\\ud800"``, under min-bin the bytes ``ed a0 80``), and a Redis outage with a password in
the broker URL's query string. Each test ends with a fresh client that handshakes and receives.
"""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from websockets.sync.client import ClientConnection

from hubbub.protocol import get_codec

from ..cluster import test_bad_input as bad
from ..conftest import RedisProcess, free_port

pytestmark = pytest.mark.redis

LONE = "\ud800"
#: A character whose UTF-8 form has the length of a lone surrogate's (3 bytes): replaced in frames.
PLACEHOLDER = "\ue000"


def ready_status(server: Any) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=bad.TIMEOUT)
    try:
        conn.request("GET", "/ready")
        return conn.getresponse().status
    finally:
        conn.close()


def publication(p: bad.Peer, channel: str) -> Any:
    """The data of the next ``#publish`` on ``channel`` (responses and other packets are skipped)."""
    while True:
        packet = p.recv()
        if packet.get("event") == "#publish" and packet["data"]["channel"] == channel:
            return packet["data"]["data"]


def test_lone_surrogate_channel_is_relayed_and_others_keep_flowing(
    start_server: Callable[..., Any], redis_server: RedisProcess, prefix: str
) -> None:
    server = start_server("--broker", redis_server.url, "--broker-prefix", prefix)
    news = f"news-{uuid.uuid4().hex[:8]}"
    with bad.peer(server.url) as innocent, bad.peer(server.url) as hostile:
        innocent.handshake()
        assert innocent.invoke("#subscribe", {"channel": news}) == {"rid": innocent.last_cid}
        hostile.handshake()
        for _ in range(3):  # as the review did: repeat it
            reply = hostile.invoke("#subscribe", {"channel": LONE})
            assert "error" not in reply, reply
        assert ready_status(server) == 200
        # Relayed through Redis as socketcluster-server relays it: channel and data unchanged.
        hostile.request("#publish", {"channel": LONE, "data": {"text": "a\udc00" + LONE + "b"}})
        assert publication(hostile, LONE) == {"text": "a\udc00" + LONE + "b"}
        # The innocent client's channel still flows, through the same Redis session.
        hostile.request("#publish", {"channel": news, "data": "still here"})
        assert publication(innocent, news) == "still here"
        assert ready_status(server) == 200
    bad.assert_serves(server)


def test_lone_surrogate_publish_data_keeps_the_publisher_connected(
    start_server: Callable[..., Any], redis_server: RedisProcess, prefix: str
) -> None:
    server = start_server("--broker", redis_server.url, "--broker-prefix", prefix)
    channel = f"c-{uuid.uuid4().hex[:8]}"
    with bad.peer(server.url) as p:
        p.handshake()
        p.invoke("#subscribe", {"channel": channel})
        reply = p.invoke("#publish", {"channel": channel, "data": [LONE, 10**30]})
        assert "error" not in reply, reply
        # A JavaScript server holds the big integer as a float: so does the Redis envelope.
        assert publication(p, channel) == [LONE, 1e30]
        p.echo_works()
    bad.assert_serves(server)


def _minbin_frame(packet: dict[str, Any]) -> bytes:
    """``packet`` under min-bin with every PLACEHOLDER written as the bytes of a lone surrogate."""
    encoded = get_codec("minbin").encode(packet)
    assert isinstance(encoded, bytes)
    return encoded.replace(PLACEHOLDER.encode(), b"\xed\xa0\x80")


def _minbin_reply(ws: ClientConnection, cid: int) -> Any:
    codec = get_codec("minbin")
    while True:
        message = ws.recv(timeout=bad.TIMEOUT)
        if message in ("", b"") or message == b"#1":
            continue
        packet = codec.decode(message)
        if packet == "#1":
            ws.send(codec.encode("#2"))
            continue
        if isinstance(packet, dict) and packet.get("rid") == cid:
            return packet


def test_lone_surrogate_bytes_under_minbin(
    start_server: Callable[..., Any], redis_server: RedisProcess, prefix: str
) -> None:
    server = start_server("--broker", redis_server.url, "--broker-prefix", prefix, codec="minbin")
    with bad.client(server.url) as ws:
        ws.send(_minbin_frame({"event": "#handshake", "data": {"authToken": None}, "cid": 1}))
        assert _minbin_reply(ws, 1).get("error") is None
        ws.send(_minbin_frame({"event": "#subscribe", "data": {"channel": PLACEHOLDER}, "cid": 2}))
        reply = _minbin_reply(ws, 2)
        assert reply.get("error") is None, reply
        assert ready_status(server) == 200
    with bad.client(server.url) as ws:  # the worker's Redis session is intact for everyone
        codec = get_codec("minbin")
        ws.send(codec.encode({"event": "#handshake", "data": {"authToken": None}, "cid": 1}))
        assert _minbin_reply(ws, 1).get("error") is None
        ws.send(codec.encode({"event": "#subscribe", "data": {"channel": "plain"}, "cid": 2}))
        assert _minbin_reply(ws, 2).get("error") is None
    assert ready_status(server) == 200


def test_broker_errors_tell_clients_nothing_about_the_broker(
    start_server: Callable[..., Any], tmp_path: Any
) -> None:
    secret = "s3cret-" + uuid.uuid4().hex[:8]
    redis = RedisProcess(free_port(), tmp_path / "redis", extra=["--requirepass", secret])
    redis.start()
    try:
        url = f"redis://127.0.0.1:{redis.port}/0?password={secret}"
        server = start_server("--broker", url)
        channel = f"c-{uuid.uuid4().hex[:8]}"
        with bad.peer(server.url) as p:
            p.handshake()
            assert p.invoke("#subscribe", {"channel": channel}) == {"rid": p.last_cid}
            redis.kill()
            replies = [
                p.invoke("#publish", {"channel": channel, "data": 1}, timeout=10),
                p.invoke("#subscribe", {"channel": channel + "-2"}, timeout=10),
            ]
        for reply in replies:
            error = reply["error"]
            assert error["name"] == "BrokerError", reply
            assert error["message"].endswith("the broker is unavailable"), reply
            for leak in (secret, str(redis.port), "127.0.0.1", "redis", "Error"):
                assert leak not in error["message"].split(" - ", 1)[1], (leak, reply)
        # The details are in the log, with the password hidden.
        log = "\n".join(server.lines)
        assert "broker: publish on" in log
        assert secret not in log
    finally:
        redis.stop()
