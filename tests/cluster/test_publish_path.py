"""A client's ``#publish`` on a worker with no inbound middleware: the text path.

Such a publish is read without the general decode and its payload is sent to subscribers as the
client wrote it (``JsonCodec.read_publish``); anything else takes the general path. These tests
tell the two apart by a number's spelling: the text path keeps ``1.50``, re-encoding writes ``1.5``.
Each case still checks what any path must do: the ack, the token expiry, the feature switch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
from websockets.sync.client import ClientConnection, connect

from ..conftest import RunningProcess, ServerFactory

TIMEOUT = 5.0
KEY = "a-test-key-of-thirty-two-bytes!!"


class Peer:
    """A JSON SocketCluster client on the websockets sync client, sending exactly the text given."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.cid = 0
        self.events: list[str] = []

    def send_invoke(self, text_before_cid: str) -> int:
        """Send ``text_before_cid + ',"cid":N}'`` (the official client's key order) and return N."""
        self.cid += 1
        self.ws.send(f'{text_before_cid},"cid":{self.cid}}}')
        return self.cid

    def reply(self, cid: int) -> dict[str, Any]:
        """The response to ``cid``; other packets are kept, as text, in ``events``."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self.ws.recv(timeout=max(0.0, deadline - time.monotonic()))
            assert isinstance(message, str)
            if message == "":
                self.ws.send("")
                continue
            packet = json.loads(message)
            if packet.get("rid") == cid:
                return dict(packet)
            self.events.append(message)

    def invoke(self, event: str, data: Any) -> dict[str, Any]:
        return self.reply(
            self.send_invoke(json.dumps({"event": event, "data": data}, separators=(",", ":"))[:-1])
        )

    def next_text(self) -> str:
        """The next non-heartbeat message, as text."""
        if self.events:
            return self.events.pop(0)
        while True:
            message = self.ws.recv(timeout=TIMEOUT)
            assert isinstance(message, str)
            if message:
                return message
            self.ws.send("")


@contextmanager
def peer(server: RunningProcess, token: str | None = None) -> Iterator[Peer]:
    with connect(server.url, open_timeout=TIMEOUT, compression=None) as ws:
        p = Peer(ws)
        reply = p.invoke("#handshake", {"authToken": token})
        assert reply["data"]["isAuthenticated"] is (token is not None), reply
        yield p


def publish_text(channel: str, payload_text: str) -> str:
    """A ``#publish`` invoke up to its cid, in the official client's form."""
    return f'{{"event":"#publish","data":{{"channel":"{channel}","data":{payload_text}}}'


def test_payload_reaches_subscribers_as_the_client_wrote_it(hubbub_server: ServerFactory) -> None:
    server = hubbub_server("json", app=None)
    with peer(server) as sub, peer(server) as pub:
        assert sub.invoke("#subscribe", {"channel": "c"}) == {"rid": sub.cid}
        cid = pub.send_invoke(publish_text("c", '{"n":1.50,"s":"é","l":[true,null]}'))
        assert pub.reply(cid) == {"rid": cid}
        assert (
            sub.next_text()
            == '{"event":"#publish","data":{"channel":"c","data":{"n":1.50,"s":"é","l":[true,null]}}}'
        )
        assert pub.events == []  # not subscribed: the publisher gets its ack and nothing else


def test_other_forms_are_decoded_and_encoded_again(hubbub_server: ServerFactory) -> None:
    server = hubbub_server("json", app=None)
    with peer(server) as sub, peer(server) as pub:
        assert sub.invoke("#subscribe", {"channel": "c"}) == {"rid": sub.cid}
        forms = [
            '{"event":"#publish","data":{"data":{"n":1.50},"channel":"c"}',  # another key order
            '{"event":"#publish","data":{"channel":"c","data":{"n":1.50},"extra":1}',  # another member
            '{"event":"#publish","data":{"channel":"c","data":{"n":1.50,"s":"\\u00e9"}}',  # an escape
            '{"event": "#publish", "data": {"channel": "c", "data": {"n": 1.50}}',  # spaces
        ]
        for form in forms:
            cid = pub.send_invoke(form)
            assert pub.reply(cid) == {"rid": cid}
            delivered = sub.next_text()
            assert delivered.startswith('{"event":"#publish","data":{"channel":"c","data":{"n":1.5'), (
                delivered
            )
            assert "1.50" not in delivered
        assert pub.events == []


def test_an_expired_token_is_removed_before_the_publish(hubbub_server: ServerFactory) -> None:
    server = hubbub_server("json", "--auth-key", KEY, app=None)
    token = jwt.encode({"username": "bo", "exp": int(time.time()) + 1}, KEY, algorithm="HS256")
    with peer(server, token) as pub:
        deadline = time.monotonic() + 4  # exp is in whole seconds: the token lives at most 2 s more
        while "#removeAuthToken" not in "".join(pub.events):
            assert time.monotonic() < deadline, "the token never expired"
            cid = pub.send_invoke(publish_text("nobody", "1.50"))
            assert pub.reply(cid) == {"rid": cid}
        assert pub.events == ['{"event":"#removeAuthToken"}']


def test_client_publish_switched_off(hubbub_server: ServerFactory) -> None:
    server = hubbub_server("json", "--allow-client-publish", "false", app=None)
    with peer(server) as sub, peer(server) as pub:
        assert sub.invoke("#subscribe", {"channel": "c"}) == {"rid": sub.cid}
        cid = pub.send_invoke(publish_text("c", "1.50"))
        reply = pub.reply(cid)
        assert reply["error"]["name"] == "InvalidActionError", reply
        assert sub.invoke("#subscribe", {"channel": "d"}) == {"rid": sub.cid}  # nothing arrived before it
        assert sub.events == []
