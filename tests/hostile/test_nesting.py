"""Deeply nested input gets an answer, never a dropped connection or a traceback (issue 10, defect 7).

A JWT whose JSON header or payload is nested 100k deep is an invalid token. Publish data nested
about as deep as the JSON parser takes is either relayed or refused with an error, also when the
worker has middleware (which re-encodes it); the connection stays usable.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from ..cluster import test_bad_input as bad


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _no_traceback(server: Any) -> None:
    assert not [line for line in server.lines if "Traceback" in line], "\n".join(server.lines[-40:])


def _answers_until(p: bad.Peer, marker: int) -> dict[int, Any]:
    """The ``error`` of each response (None if none) that arrives before the response to ``marker``."""
    answered: dict[int, Any] = {}
    while True:
        message = p.ws.recv(timeout=bad.TIMEOUT)
        if message == "" or str(message).startswith('{"event":"#publish"'):
            continue  # heartbeats, and deliveries too deep for this test's own parser
        packet = json.loads(message)
        if packet.get("rid") == marker:
            return answered
        if "rid" in packet:
            answered[packet["rid"]] = packet.get("error")


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    "token",
    [
        _b64(DEEP) + "." + _b64("{}") + ".c2ln",
        _b64('{"alg":"HS256","typ":"JWT"}') + "." + _b64(DEEP) + ".c2ln",
        _b64('{"alg":"HS256"}') + "." + _b64(DEEP) + ".c2ln",
    ],
    ids=["header", "payload-typ-jwt", "payload"],
)
def test_deeply_nested_jwt_is_a_bad_token(start_server: Callable[..., Any], token: str) -> None:
    server = start_server()
    with bad.peer(server.url) as p:
        reply = p.invoke("#handshake", {"authToken": token})
        assert reply["data"]["isAuthenticated"] is False
        assert reply["data"]["authError"]["isBadToken"] is True, reply
        assert p.recv() == {"event": "#removeAuthToken"}
        p.echo_works()
    _no_traceback(server)
    bad.assert_serves(server)


def test_deeply_nested_publish_data_is_answered(start_server: Callable[..., Any]) -> None:
    server = start_server()  # the interop test app: inbound and outbound middleware
    with bad.peer(server.url) as p:
        p.handshake()
        p.invoke("#subscribe", {"channel": "deep"})
        cids = {}
        for depth in range(940, 1000, 2):
            cids[p.request("#publish", {"channel": "deep", "data": json.loads("[" * 10 + "]" * 10)})] = 10
            cid = next(p._cids)
            deep = "[" * depth + "]" * depth
            p.ws.send(f'{{"event":"#publish","data":{{"channel":"deep","data":{deep}}},"cid":{cid}}}')
            cids[cid] = depth
        answered = _answers_until(p, p.request("echo", {"done": True}))
        for cid, error in answered.items():
            assert error is None or error["name"] == "InvalidActionError", (cids[cid], error)
        assert all(answered.get(cid, "none") is None for cid, depth in cids.items() if depth == 10)
        _answers_until(p, p.request("echo", {"still": "open"}))
    _no_traceback(server)
    bad.assert_serves(server)
