"""Floods: more connections than allowed, a burst of tiny messages, churn of subscriptions.

Past ``--max-connections`` upgrades get HTTP 503 and the sockets already open are still served;
20,000 tiny messages from one client leave the worker's memory bounded while other clients keep
receiving; 2,000 subscribe/unsubscribe cycles leave no channel or subscription behind (read from
``/metrics``), and so do 300 connections that come and go; TCP connections that never send a
request are dropped at the handshake timeout. Each test ends with a fresh client that handshakes
and receives.
"""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from ..cluster import test_bad_input as bad
from .probes import RssBound, assert_no_traceback, leaks

#: A sample with no label but the worker's.
SAMPLE = re.compile(r'^(\w+)(?:\{worker="\d+"\})? (\S+)$', re.MULTILINE)
#: What a worker with no subscription at all shows.
NOTHING_HELD = {"hubbub_channels": 0.0, "hubbub_subscriptions": 0.0, "hubbub_broker_subscriptions": 0.0}


def _gauges(server: Any) -> dict[str, float]:
    """The unlabelled samples of the worker's ``/metrics`` (needs ``--public-metrics true``)."""
    status, body, _ = bad.http_get(server, "/metrics")
    assert status == 200, body
    return {m[1]: float(m[2]) for m in SAMPLE.finditer(body.decode())}


def _wait_gauges(server: Any, expected: dict[str, float], timeout: float = 10) -> None:
    """Poll ``/metrics`` until every gauge in ``expected`` has its value (the worker lets go asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        gauges = _gauges(server)
        seen = {name: gauges.get(name) for name in expected}
        if seen == expected:
            return
        assert time.monotonic() < deadline, f"gauges {seen}, expected {expected}"
        time.sleep(0.05)


def _refused(server: Any) -> bytes:
    """Attempt an upgrade that must be refused with 503; the body of the answer."""
    with pytest.raises(InvalidStatus) as refused, bad.client(server.url):
        pass
    response = refused.value.response
    assert response.status_code == 503, response
    return bytes(response.body or b"")


def test_connections_past_max_connections_get_503_and_the_others_stay_served(
    start_server: Callable[..., Any],
) -> None:
    server = start_server("--max-connections", "5", "--public-metrics", "true")
    with ExitStack() as stack:
        held = [stack.enter_context(bad.peer(server.url)) for _ in range(5)]
        for p in held:
            p.handshake()
        for _ in range(20):
            body = _refused(server)
            assert body == b"Server is at capacity" and not leaks(body.decode()), body
        channel = f"c-{uuid.uuid4().hex[:8]}"
        held[0].invoke("#subscribe", {"channel": channel})
        assert held[1].invoke("#publish", {"channel": channel, "data": "through"}) == {"rid": 2}
        assert held[0].recv() == {"event": "#publish", "data": {"channel": channel, "data": "through"}}
        for p in held:
            p.echo_works()
        held.pop().ws.close()  # one leaves: one place is free again
        _wait_gauges(server, {"hubbub_connections": 4.0})
        bad.assert_serves(server)
        with bad.peer(server.url) as newcomer:
            newcomer.handshake()
            _refused(server)  # full again
    assert_no_traceback(server)
    bad.assert_serves(server)


#: Tiny messages a client may send without an answer: a pong, a transmit nobody receives, a
#: publication without cid to a channel nobody hears, junk that is no packet.
TINY = {
    "pongs": "",
    "unknown-events": json.dumps({"event": "noSuchEvent", "data": 1}),
    "unheard-publications": json.dumps({"event": "#publish", "data": {"channel": "void", "data": 1}}),
    "junk": "x",
}


@pytest.mark.timeout(40)
@pytest.mark.parametrize("kind", list(TINY))
def test_a_flood_of_tiny_messages_stays_bounded_and_others_keep_receiving(
    start_server: Callable[..., Any], kind: str
) -> None:
    server = start_server()
    channel = f"live-{uuid.uuid4().hex[:8]}"
    with (
        bad.peer(server.url) as flooder,
        bad.peer(server.url) as reader,
        bad.peer(server.url) as publisher,
        RssBound(server.proc.pid, 24),
    ):
        for p in (flooder, reader, publisher):
            p.handshake()
        reader.invoke("#subscribe", {"channel": channel})
        started = time.monotonic()
        for i in range(20_000):
            flooder.ws.send(TINY[kind])
            if i % 2000 == 0:  # while the flood goes on, the others are served
                publisher.request("#publish", {"channel": channel, "data": i})
                assert reader.recv() == {"event": "#publish", "data": {"channel": channel, "data": i}}
        flooder.echo_works()  # nothing was answered to the flood: the echo's reply comes next
        assert time.monotonic() - started < 20
    assert_no_traceback(server)
    bad.assert_serves(server)


def test_a_flood_of_unknown_invokes_is_answered_and_bounded(start_server: Callable[..., Any]) -> None:
    server = start_server()
    with bad.peer(server.url) as p, RssBound(server.proc.pid, 24):
        p.handshake()
        for _ in range(20_000):
            p.request("noSuchProcedure", 1)
        for cid in range(2, 20_002):
            reply = p.recv()
            assert reply["rid"] == cid and reply["error"]["name"] == "InvalidActionError", reply
        p.echo_works()
    assert_no_traceback(server)
    bad.assert_serves(server)


def _cycles(p: bad.Peer, names: Iterator[str]) -> None:
    """Subscribe and unsubscribe each name, all pipelined; every reply must be a success."""
    last = 0
    count = 0
    for name in names:
        p.request("#subscribe", {"channel": name})
        last = p.request("#unsubscribe", name)
        count += 2
    replies = [p.recv() for _ in range(count)]
    assert replies[-1]["rid"] == last
    assert all(set(reply) == {"rid"} for reply in replies), [r for r in replies if set(r) != {"rid"}][:3]


@pytest.mark.parametrize("distinct", [True, False], ids=["distinct-channels", "one-channel"])
def test_subscribe_unsubscribe_cycles_leave_nothing_behind(
    start_server: Callable[..., Any], distinct: bool
) -> None:
    server = start_server("--public-metrics", "true")
    tag = uuid.uuid4().hex[:8]
    with bad.peer(server.url) as p, RssBound(server.proc.pid, 16):
        p.handshake()
        _cycles(p, (f"{tag}-{i if distinct else 0}" for i in range(2000)))
        _wait_gauges(server, NOTHING_HELD)
        p.echo_works()
    bad.assert_serves(server)


def test_subscriptions_of_a_socket_that_leaves_are_released(start_server: Callable[..., Any]) -> None:
    server = start_server("--public-metrics", "true", "--socket-channel-limit", "5000")
    with bad.peer(server.url) as stays:
        stays.handshake()
        stays.invoke("#subscribe", {"channel": "kept"})
        with bad.peer(server.url) as p:
            p.handshake()
            for i in range(2000):
                p.request("#subscribe", {"channel": f"gone-{i}"})
            p.request("#subscribe", {"channel": "kept"})
            for _ in range(2001):
                assert set(p.recv()) == {"rid"}
            _wait_gauges(server, {"hubbub_channels": 2001.0, "hubbub_subscriptions": 2002.0})
        _wait_gauges(
            server, {"hubbub_channels": 1.0, "hubbub_subscriptions": 1.0, "hubbub_broker_subscriptions": 1.0}
        )
        stays.echo_works()
    _wait_gauges(server, NOTHING_HELD)
    bad.assert_serves(server)


def test_silent_connections_take_no_place_and_are_dropped_at_the_handshake_timeout(
    start_server: Callable[..., Any],
) -> None:
    server = start_server("--max-connections", "3", "--handshake-timeout", "1")
    silent = [socket.create_connection(("127.0.0.1", server.port), timeout=bad.TIMEOUT) for _ in range(3)]
    try:
        started = time.monotonic()
        bad.assert_serves(server)  # connections that never sent a request are not counted
        for sock in silent:  # each is dropped at the handshake timeout, not kept
            assert bad.read_until_eof(sock, timeout=5) == b""
        assert time.monotonic() - started < 4
    finally:
        for sock in silent:
            sock.close()
    bad.assert_serves(server)


@pytest.mark.timeout(40)
def test_connection_churn_leaves_nothing_behind(start_server: Callable[..., Any]) -> None:
    server = start_server("--public-metrics", "true")
    with RssBound(server.proc.pid, 16):
        for i in range(300):
            with bad.peer(server.url) as p:
                p.handshake()
                p.invoke("#subscribe", {"channel": f"churn-{i}"})
        _wait_gauges(server, {"hubbub_connections": 0.0, **NOTHING_HELD})
    bad.assert_serves(server)
