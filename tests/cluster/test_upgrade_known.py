"""Upgrade requests seen before are answered without parsing them again (``hubbub.cluster.upgrade``).

The table is checked on its own, then on a real worker: a request repeated byte for byte but for
its key must still get the accept value of its own key, a bad key websockets' 400, and every
per-connection check (capacity here) must still apply.
"""

from __future__ import annotations

import base64
import socket

import pytest
from websockets.utils import accept_key

from hubbub.cluster import HttpRequest
from hubbub.cluster._transport.upgrade import KnownUpgrades

from ..conftest import ServerFactory

TIMEOUT = 5.0
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3, accepted as s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
OTHER_KEY = base64.b64encode(bytes(range(16))).decode()


def upgrade_request(key: str, *, path: str = "/socketcluster/", extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def response_for(key: str) -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n"
    )


# -- the table ---------------------------------------------------------------------------------


def test_a_request_differing_only_in_its_key_is_known() -> None:
    known = KnownUpgrades()
    request = HttpRequest("/socketcluster/", (("Host", "x"),), None)
    known.add(upgrade_request(RFC_KEY), request, response_for(RFC_KEY))
    found = known.find(upgrade_request(OTHER_KEY))
    assert found is not None
    entry, key = found
    assert key == OTHER_KEY
    assert entry.request(("10.0.0.1", 5)) == HttpRequest("/socketcluster/", (("Host", "x"),), ("10.0.0.1", 5))
    assert entry.response(key) == response_for(OTHER_KEY)


@pytest.mark.parametrize(
    "head",
    [
        upgrade_request(OTHER_KEY, path="/other/"),  # other bytes
        upgrade_request(OTHER_KEY, extra="Origin: http://a.example\r\n"),
        upgrade_request("c2hvcnQ="),  # a key of 5 bytes, not 16
        upgrade_request("not base64!!"),
        upgrade_request(OTHER_KEY, extra=f"Sec-WebSocket-Key: {RFC_KEY}\r\n"),  # two keys
    ],
    ids=["path", "header", "short-key", "bad-key", "two-keys"],
)
def test_anything_else_is_unknown(head: bytes) -> None:
    known = KnownUpgrades()
    known.add(upgrade_request(RFC_KEY), HttpRequest("/socketcluster/", (), None), response_for(RFC_KEY))
    assert known.find(head) is None


def test_the_table_is_bounded() -> None:
    known = KnownUpgrades(limit=3)
    for n in range(10):
        known.add(
            upgrade_request(RFC_KEY, path=f"/p{n}/"), HttpRequest(f"/p{n}/", (), None), response_for(RFC_KEY)
        )
    assert len(known) == 3
    assert known.find(upgrade_request(OTHER_KEY, path="/p9/")) is not None
    assert known.find(upgrade_request(OTHER_KEY, path="/p0/")) is None


# -- on a real worker --------------------------------------------------------------------------


def _answer(port: int, request: bytes, *, keep: list[socket.socket] | None = None) -> bytes:
    """The worker's answer to ``request`` up to its blank line (the connection is kept if asked)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.sendall(request)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    if keep is not None:
        keep.append(sock)
    else:
        sock.close()
    return answer.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"


def test_repeated_request_gets_the_accept_value_of_its_own_key(hubbub_server: ServerFactory) -> None:
    server = hubbub_server("json")
    keys = [RFC_KEY, OTHER_KEY, base64.b64encode(b"k" * 16).decode(), RFC_KEY]
    for key in keys:
        assert _answer(server.port, upgrade_request(key)) == response_for(key)


def test_repeated_request_with_a_bad_key_gets_websockets_400(hubbub_server: ServerFactory) -> None:
    server = hubbub_server("json")
    assert _answer(server.port, upgrade_request(RFC_KEY)) == response_for(RFC_KEY)
    assert _answer(server.port, upgrade_request("c2hvcnQ=")).startswith(b"HTTP/1.1 400 ")


def test_repeated_request_is_still_checked_against_capacity(hubbub_server: ServerFactory) -> None:
    server = hubbub_server("json", "--max-connections", "1")
    held: list[socket.socket] = []
    try:
        assert _answer(server.port, upgrade_request(RFC_KEY), keep=held) == response_for(RFC_KEY)
        assert _answer(server.port, upgrade_request(OTHER_KEY)).startswith(b"HTTP/1.1 503 ")
    finally:
        for sock in held:
            sock.close()


def test_request_in_pieces_is_read_by_websockets_then_known(hubbub_server: ServerFactory) -> None:
    server = hubbub_server("json")
    request = upgrade_request(RFC_KEY)
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(request[:20])  # no blank line yet: websockets reads it as it comes
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request[20:])
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
    assert answer.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" == response_for(RFC_KEY)
    assert _answer(server.port, upgrade_request(OTHER_KEY)) == response_for(OTHER_KEY)
