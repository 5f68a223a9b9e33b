"""Subscribers that stop reading: they cost the worker the frames they wait for, never a copy each,
and the one that overflows its backlog is told so with 4010 before anything else queued for it.

A real ``hubbub run`` worker, real TCP sockets that complete the upgrade, the SocketCluster
handshake and a subscription and then read nothing (a small receive buffer, so the kernel soon
holds back). The worker's memory is read from ``/proc/<pid>/status``. Every case ends with a
fresh client that handshakes and receives.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..cluster.test_bad_input import RawWs, assert_serves, peer
from ..conftest import ServerFactory

MIB = 1 << 20


def _rss(pid: int) -> int:
    """The resident memory of process ``pid``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def _kernel_send_buffer() -> int:
    """The most a TCP socket's send buffer grows to (what the kernel may hold for a stalled peer)."""
    return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])


def _stalled_subscriber(url: str, channel: str) -> RawWs:
    """A socket subscribed to ``channel`` that reads nothing more (4 KB receive buffer)."""
    sock = RawWs(url, rcvbuf=4096)
    sock.invoke("#handshake", {"authToken": None})
    assert sock.invoke("#subscribe", {"channel": channel}) == {"rid": 2}
    return sock


@contextlib.contextmanager
def _stalled_subscribers(url: str, channel: str, count: int) -> Iterator[list[RawWs]]:
    """``count`` stalled subscribers of ``channel``, closed at the end."""
    stalled: list[RawWs] = []
    try:
        for _ in range(count):
            stalled.append(_stalled_subscriber(url, channel))
        yield stalled
    finally:
        for sock in stalled:
            sock.close()


def _publish_acked(server: Any, channel: str, payloads: list[Any]) -> None:
    """Publish each payload on ``channel`` and wait for every ack (the memory broker delivers
    before it acks, so every subscriber's socket has been written to by then)."""
    with peer(server.url) as publisher:
        publisher.handshake()
        cids = [publisher.request("#publish", {"channel": channel, "data": data}) for data in payloads]
        acks = [publisher.recv(timeout=20) for _ in cids]
    assert [ack.get("rid") for ack in acks] == cids
    assert all("error" not in ack for ack in acks), acks


@pytest.mark.timeout(60)
def test_stalled_subscribers_share_each_frame(hubbub_server: ServerFactory) -> None:
    # 300 stalled subscribers and 6 publications of 900 KB: a private copy of the unsent rest
    # of a frame per socket costs ~250 MB; shared frames cost the 5.4 MB of frames.
    subscribers, publications, size = 300, 6, 900_000
    # No app: without outbound middleware every subscriber is sent the one frame of a publication.
    server = hubbub_server("json", "--max-payload", str(2 * MIB), "--outbound-limit", str(16 * MIB), app=None)
    channel = "stalled"
    with _stalled_subscribers(server.url, channel, subscribers):
        before = _rss(server.proc.pid)
        _publish_acked(server, channel, [{"seq": i, "pad": "x" * size} for i in range(publications)])
        grown = _rss(server.proc.pid) - before
        assert grown < 64 * MIB, f"the worker grew by {grown / MIB:.0f} MiB"
    assert_serves(server)


@pytest.mark.timeout(60)
def test_a_stalled_subscriber_that_resumes_gets_everything_in_order(hubbub_server: ServerFactory) -> None:
    # Thousands of small frames wait behind the kernel (more than one sendmsg takes), some of
    # them partly sent; once the subscriber reads again, every one arrives whole and in order.
    size = 2000
    count = (_kernel_send_buffer() + 4 * MIB) // size
    server = hubbub_server("json", "--outbound-limit", str(64 * MIB), app=None)
    channel = "resumed"
    slow = _stalled_subscriber(server.url, channel)
    try:
        _publish_acked(server, channel, [{"seq": i, "pad": "z" * size} for i in range(count)])
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MIB)
        seqs = []
        for _ in range(count):
            packet = slow.next_packet()
            assert packet["event"] == "#publish" and packet["data"]["data"]["pad"] == "z" * size
            seqs.append(packet["data"]["data"]["seq"])
        assert seqs == list(range(count))
    finally:
        slow.close()
    assert_serves(server)


@pytest.mark.timeout(60)
def test_overflow_sends_4010_before_the_backlog(hubbub_server: ServerFactory) -> None:
    # The limit and the flood exceed what the kernel may hold, well.
    kernel = _kernel_send_buffer()
    limit, size = 2 * kernel, 256_000
    # A long close timeout: the close frame must come first, not merely before the timeout.
    server = hubbub_server(
        "json",
        *("--max-payload", str(MIB), "--outbound-limit", str(limit), "--outbound-hard-limit", str(limit)),
        *("--close-timeout", "30"),
        app=None,
    )
    channel = "overflow"
    slow = _stalled_subscriber(server.url, channel)
    try:
        count = (kernel + limit) * 3 // 2 // size
        _publish_acked(server, channel, [{"seq": i, "pad": "y" * size} for i in range(count)])
        # Now read: a larger window so what the kernel holds drains quickly.
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MIB)
        frames, code = slow.drain_until_close(timeout=10)
    finally:
        slow.close()
    received = sum(len(frame.data) for frame in frames)
    assert code == 4010, f"no close frame after {received} bytes"
    # The backlog was dropped: only what the kernel had taken (and the rest of a frame it had
    # begun) came before the close frame, not the backlog of more than ``limit`` bytes.
    assert received < limit, f"{received} bytes came before the close frame"
    assert_serves(server)


@pytest.mark.timeout(60)
def test_with_outbound_middleware_stalled_subscribers_share_each_frame(hubbub_server: ServerFactory) -> None:
    # The test app has outbound middleware that leaves these publications as they are: each is
    # encoded once and every subscriber is sent the same frame. A private encoding per socket
    # would cost up to 100 x 6 x 900 KB = 540 MB, less what the kernel takes of it.
    subscribers, publications, size = 100, 6, 900_000
    server = hubbub_server("json", "--max-payload", str(2 * MIB), "--outbound-limit", str(16 * MIB))
    channel = "stalled"
    with _stalled_subscribers(server.url, channel, subscribers), peer(server.url) as reader:
        reader.handshake()
        assert reader.invoke("#subscribe", {"channel": channel}) == {"rid": reader.last_cid}
        before = _rss(server.proc.pid)
        _publish_acked(server, channel, [{"seq": i, "pad": "x" * size} for i in range(publications)])
        # The reader, subscribed last, got every publication through the middleware: every
        # stalled socket's deliveries passed it in the same scheduler steps.
        seqs = [reader.recv(timeout=20)["data"]["data"]["seq"] for _ in range(publications)]
        assert seqs == list(range(publications))
        reader.echo_works()
        grown = _rss(server.proc.pid) - before
        assert grown < 48 * MIB, f"the worker grew by {grown / MIB:.0f} MiB"
    assert_serves(server)
