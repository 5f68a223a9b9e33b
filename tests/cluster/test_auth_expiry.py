"""A token that expires mid-session turns the socket unauthenticated (checked on every event)."""

from __future__ import annotations

import json
import time
from typing import Any

from websockets.sync.client import connect

from ..conftest import ServerFactory

TIMEOUT = 5


class Peer:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.cid = 0
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: str, data: Any = None) -> dict[str, Any]:
        self.cid += 1
        self.ws.send(json.dumps({"event": event, "data": data, "cid": self.cid}))
        while True:
            message = self.ws.recv(timeout=TIMEOUT)
            if message == "":
                self.ws.send("")
                continue
            packet = json.loads(message)
            if packet.get("rid") == self.cid:
                return dict(packet)
            self.events.append(packet)


def test_expired_token_deauthenticates_the_socket(hubbub_server: ServerFactory) -> None:
    server = hubbub_server("json", "--auth-key", "k")
    with connect(server.url, open_timeout=TIMEOUT) as ws:
        peer = Peer(ws)
        peer.invoke("#handshake", {"authToken": None})
        assert peer.invoke("loginShort", {"username": "bo"})["data"] == "logged-in-1s"
        assert peer.invoke("whoami")["data"]["username"] == "bo"
        deadline = time.monotonic() + 4  # the token lives 1 s (whole seconds: at most 2 s)
        while peer.invoke("whoami").get("data") is not None:
            assert time.monotonic() < deadline, "the token never expired"
        assert {"event": "#removeAuthToken"} in peer.events
