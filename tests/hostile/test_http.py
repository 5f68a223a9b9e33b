"""Hostile HTTP on the public port (issue 10, defects 4, 7 and 10).

Each request gets its proper answer (400, 403, 431) and at most one log line, never a traceback;
the public port tells nobody the worker's pid, memory or counters; each test ends with a fresh
client that handshakes and receives.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest

from hubbub.cluster import HttpRequest
from hubbub.cluster._transport.upgrade import KnownUpgrades

from ..cluster import test_bad_input as bad

UPGRADE = bad._UPGRADE


def answer(server: Any, request: bytes) -> bytes:
    """Everything the worker sends back to ``request`` until it closes the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=bad.TIMEOUT) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return bad.read_until_eof(sock)


def no_traceback(server: Any) -> None:
    assert not [line for line in server.lines if "Traceback" in line], "\n".join(server.lines)


def test_request_head_over_the_limit_gets_431(start_server: Callable[..., Any]) -> None:
    server = start_server()
    big = UPGRADE + "".join(f"X-Pad-{i}: {'a' * 1000}\r\n" for i in range(17)) + "\r\n"
    assert answer(server, big.encode()).startswith(b"HTTP/1.1 431 ")
    endless = UPGRADE.encode() + b"X-Pad: " + b"a" * 40_000  # no blank line ever comes
    assert answer(server, endless).startswith(b"HTTP/1.1 431 ")
    fits = UPGRADE + "".join(f"X-Pad-{i}: {'a' * 1000}\r\n" for i in range(10)) + "\r\n"
    assert answer_head_status(server, fits) == "101"
    no_traceback(server)
    bad.assert_serves(server)


def answer_head_status(server: Any, request: str) -> str:
    return bad._answer_head(server, request).split(" ", 2)[1]


def test_request_head_limit_is_configurable(start_server: Callable[..., Any]) -> None:
    server = start_server("--max-request-head", "400")
    padded = UPGRADE + f"X-Pad: {'a' * 300}\r\n\r\n"
    assert answer(server, padded.encode()).startswith(b"HTTP/1.1 431 ")
    bad.assert_serves(server)


def test_pipelined_requests_get_400(start_server: Callable[..., Any]) -> None:
    server = start_server()
    health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    assert answer(server, health + health).startswith(b"HTTP/1.1 400 ")
    assert answer(server, (UPGRADE + "\r\n").encode() + health).startswith(b"HTTP/1.1 400 ")
    no_traceback(server)
    bad.assert_serves(server)


@pytest.mark.parametrize("origin", ["http://x:99999", "http://[::1", "http://[zz]:80"])
def test_malformed_origin_gets_403(start_server: Callable[..., Any], origin: str) -> None:
    server = start_server("--origins", "good.example:*")
    assert answer(server, (UPGRADE + f"Origin: {origin}\r\n\r\n").encode()).startswith(b"HTTP/1.1 403 ")
    no_traceback(server)
    bad.assert_serves(server)


def test_public_port_tells_nothing_about_the_process(start_server: Callable[..., Any]) -> None:
    server = start_server()
    status, body, _ = bad.http_get(server, "/health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, body, _ = bad.http_get(server, "/metrics")
    assert status == 400 and b"hubbub_" not in body
    status, body, _ = bad.http_get(server, "/ready")
    assert (status, json.loads(body)) == (200, {"ready": True})


def test_public_metrics_can_be_turned_on(start_server: Callable[..., Any]) -> None:
    server = start_server("--public-metrics", "true")
    status, body, _ = bad.http_get(server, "/metrics")
    assert status == 200 and b"hubbub_connections" in body
    assert "pid" in json.loads(bad.http_get(server, "/health")[1])


def _head(i: int, pad: int) -> bytes:
    return (
        f"GET /socketcluster/?n={i} HTTP/1.1\r\nHost: x\r\nX-Pad: {'a' * pad}\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    ).encode()


def test_known_upgrades_are_bounded_in_bytes() -> None:
    known = KnownUpgrades(limit=256, max_bytes=64_000)
    response = b"HTTP/1.1 101 x\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    for i in range(50):
        known.add(_head(i, 10_000), HttpRequest(f"/{i}", (), None), response)
    assert known.size <= 64_000
    assert 1 <= len(known) <= 4
    assert known.find(_head(49, 10_000)) is not None  # the newest stays, the oldest went
    assert known.find(_head(0, 10_000)) is None
    known.add(_head(99, 70_000), HttpRequest("/big", (), None), response)  # alone over the budget
    assert known.find(_head(99, 70_000)) is None
