"""Hostile WebSocket framing: floods of control frames and of tiny fragments.

What a client makes the worker hold must stay near what ``outbound_limit`` and ``max_payload``
allow, however it cuts its frames: pings from a client that never reads (each is answered with a
pong the client does not take), one message sent as hundreds of thousands of one-byte fragments.
Each test ends with a fresh client that handshakes and receives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from websockets.frames import Frame, Opcode

from ..cluster import test_bad_input as bad
from .probes import RssBound, assert_no_traceback


def _ping_until_refused(raw: bad.RawWs, count: int) -> int:
    """Send up to ``count`` pings (125-byte payloads) without reading; how many went out."""
    for sent in range(count):
        raw.proto.send_ping(b"p" * 125)
        try:
            raw.flush()
        except OSError:  # closed, or no longer read from: both bound what the worker holds
            return sent
    return count


@pytest.mark.timeout(40)
def test_pings_from_a_client_that_never_reads_are_bounded(start_server: Callable[..., Any]) -> None:
    server = start_server("--outbound-limit", str(1 << 20))
    raw = bad.RawWs(server.url, rcvbuf=4096)
    try:
        raw.invoke("#handshake", {"authToken": None})
        with RssBound(server.proc.pid, 24):
            _ping_until_refused(raw, 400_000)  # 52 MB of pings, as many bytes of pongs
    finally:
        raw.close()
    assert_no_traceback(server)
    bad.assert_serves(server)


def _fragments_then_ping(raw: bad.RawWs, count: int) -> None:
    """Start an echo message, send ``count`` one-byte fragments, then a ping; wait for its pong.

    The pong tells that the worker has read every fragment before it.
    """
    raw.proto.send_text(b'{"event":"echo","data":"', fin=False)
    for i in range(count):
        raw.proto.send_continuation(b"x", fin=False)
        if i % 10_000 == 0:
            raw.flush()
    raw.proto.send_ping(b"read-all")
    raw.flush()
    event = raw.next_event(timeout=30)
    while isinstance(event, Frame) and event.opcode is Opcode.TEXT and not event.data:  # heartbeats
        event = raw.next_event(timeout=30)
    assert isinstance(event, Frame) and event.opcode is Opcode.PONG and event.data == b"read-all", event


@pytest.mark.timeout(60)
def test_a_message_in_one_byte_fragments_costs_about_its_size(start_server: Callable[..., Any]) -> None:
    server = start_server()
    raw = bad.RawWs(server.url)
    try:
        raw.invoke("#handshake", {"authToken": None})
        with RssBound(server.proc.pid, 8):
            _fragments_then_ping(raw, 500_000)
        raw.proto.send_continuation(b'","cid":5}', fin=True)
        raw.flush()
        assert raw.next_packet(timeout=20) == {"rid": 5, "data": "x" * 500_000}
    finally:
        raw.close()
    assert_no_traceback(server)
    bad.assert_serves(server)


def test_fragments_past_max_payload_close_1009_without_holding_more(start_server: Callable[..., Any]) -> None:
    server = start_server("--max-payload", "65536")
    raw = bad.RawWs(server.url)
    try:
        raw.invoke("#handshake", {"authToken": None})
        with RssBound(server.proc.pid, 16):
            raw.proto.send_text(b'{"event":"echo","data":"', fin=False)
            for _ in range(70_000):
                raw.proto.send_continuation(b"x", fin=False)
            raw.flush_quietly()
            assert raw.drain_until_close(timeout=15)[1] == 1009
    finally:
        raw.close()
    assert_no_traceback(server)
    bad.assert_serves(server)
