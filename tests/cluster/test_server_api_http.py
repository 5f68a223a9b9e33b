"""The HTTP exchanges of the server API on a raw socket: keep-alive, pipelining, 100-continue, limits,
malformed requests, idle connections; and the reserved channels clients may not use."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
import trio

from hubbub.client import RemoteError, connect

from .api_helpers import KEY
from .conftest import Cluster, ClusterFactory

pytestmark = pytest.mark.trio


def _post(path: str, body: bytes, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: x", f"X-API-Key: {KEY}", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(bytes(buffer))
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(rest)
        rest += chunk
    buffer[:] = rest[length:]
    return status, headers, rest[:length]


def _connect(cluster: Cluster) -> socket.socket:
    parts = urlsplit(cluster.http)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def _exchanges(cluster: Cluster) -> None:
    publish = json.dumps({"channel": "c", "data": 1}).encode()
    with _connect(cluster) as sock:
        buffer = bytearray()
        # Keep-alive: three requests on one connection, two of them pipelined.
        sock.sendall(_post("/api/publish", publish))
        status, headers, body = _read_response(sock, buffer)
        assert (status, headers["connection"], json.loads(body)) == (200, "keep-alive", {"result": {}})
        sock.sendall(_post("/api/info", b"{}") + _post("/api/publish", publish))
        assert json.loads(_read_response(sock, buffer)[2])["result"]["nodes"]
        assert json.loads(_read_response(sock, buffer)[2]) == {"result": {}}
        # Expect: 100-continue gets its interim answer before the body is sent.
        sock.sendall(
            _post("/api/publish", b"", "Expect: 100-continue").replace(
                b"Length: 0", b"Length: %d" % len(publish)
            )
        )
        assert _read_response(sock, buffer)[0] == 100
        sock.sendall(publish)
        assert _read_response(sock, buffer)[0] == 200
        # Connection: close is honoured.
        sock.sendall(_post("/api/publish", publish, "Connection: close"))
        status, headers, _ = _read_response(sock, buffer)
        assert (status, headers["connection"]) == (200, "close")
        assert sock.recv(10) == b""

    refusals = [
        (_post("/api/publish", b"", "Transfer-Encoding: chunked"), 411),
        (_post("/api/publish", b"{}").replace(b"Content-Length: 2", b"Content-Length: 2x"), 400),
        (_post("/api/publish", b"", "X-Huge: " + "h" * 20000), 431),
        (_post("/api/publish", b"", "bad header line"), 400),
        (_post("/api/publish", b"{}").replace(b"Content-Length: 2", b"Content-Length: 99999999"), 413),
    ]
    for request, expected in refusals:
        with _connect(cluster) as sock:
            sock.sendall(request)
            status, headers, _ = _read_response(sock, bytearray())
            assert (status, headers["connection"]) == (expected, "close"), request[:80]

    # HTTP/1.0 closes after the answer unless it asks for keep-alive.
    with _connect(cluster) as sock:
        sock.sendall(_post("/api/publish", publish).replace(b"HTTP/1.1", b"HTTP/1.0"))
        status, headers, _ = _read_response(sock, bytearray())
        assert (status, headers["connection"]) == (200, "close")


async def test_http_exchanges(hubbub_cluster: ClusterFactory) -> None:
    cluster = hubbub_cluster("--api-key", KEY, "--handshake-timeout", "1", workers=1)
    await trio.to_thread.run_sync(_exchanges, cluster)

    def idle_then_closed() -> bytes:
        with _connect(cluster) as sock:
            sock.sendall(b"POST /api/publish HTTP/1.1\r\nContent-Length: 10\r\n\r\n{")
            status, _, _ = _read_response(sock, bytearray())  # a request cut short, past the timeout
            assert status == 408
            return sock.recv(10)

    assert await trio.to_thread.run_sync(idle_then_closed) == b""


async def test_clients_cannot_use_the_reserved_channels(hubbub_cluster: ClusterFactory) -> None:
    cluster = hubbub_cluster("--api-key", KEY, workers=1)
    async with connect(cluster.url) as client:
        for channel in ("\x00hubbub:control", "\x00anything"):
            with pytest.raises(RemoteError) as caught:
                await client.publish(channel, "x")
            assert caught.value.name == "InvalidActionError"
            assert "reserved" in caught.value.message
            subscription = client.subscribe(channel)
            with pytest.raises(Exception, match="reserved"):
                await subscription.wait_subscribed(5)
