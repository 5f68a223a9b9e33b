"""A socket's auth state always matches what it last told the client (issue 10, defect 6).

Authenticated, a client sends a second ``#handshake`` with a garbage or a null token: the reply
says ``isAuthenticated: false``, and from then on the socket acts unauthenticated, as
socketcluster-server v20 does (every handshake sets the auth state anew).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ..cluster import test_bad_input as bad
from ..conftest import stop_and_close


@pytest.fixture
def server(hubbub_server: Callable[..., Any]) -> Iterator[Any]:
    running = hubbub_server("json")
    yield running
    stop_and_close([running])


def call(p: bad.Peer, event: str, data: Any = None) -> dict[str, Any]:
    """Send a request and return its response, skipping the events sent before it."""
    cid = p.request(event, data)
    while True:
        packet = p.recv()
        if packet.get("rid") == cid:
            return dict(packet)


@pytest.mark.parametrize("second_token", ["not.a.jwt", None, 42], ids=["garbage", "null", "number"])
def test_second_handshake_without_a_valid_token_deauthenticates(server: Any, second_token: Any) -> None:
    with bad.peer(server.url) as p:
        p.handshake()
        call(p, "login", {"username": "alice"})
        assert call(p, "whoami")["data"]["username"] == "alice"
        reply = call(p, "#handshake", {"authToken": second_token})
        assert reply["data"]["isAuthenticated"] is False, reply
        if second_token is None:  # no token: not an error, as in socketcluster-server
            assert "authError" not in reply["data"], reply
        else:
            assert reply["data"]["authError"]["isBadToken"] is True, reply
        assert call(p, "whoami").get("data") is None  # the socket forgot alice, as it said
        p.echo_works()
    bad.assert_serves(server)
