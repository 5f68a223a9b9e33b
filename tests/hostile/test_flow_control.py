"""A burst slows its sender instead of dropping a subscriber that keeps reading (issue 10, flow control).

One client floods fire-and-forget publications of 16 KB at a channel with one stalled and one
reading (but slower) subscriber, on a real worker. The reading one gets every publication in
order; the stalled one is closed with 4010 once it has made no progress for
``slow_consumer_timeout``; the worker's memory stays bounded. Both paths of a client publish are
covered: the inline fast path (no app) and the general path (the interop test app's middleware).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from ..cluster import test_bad_input as bad
from ..conftest import ServerFactory, raw_peer, wait_until
from .test_stalled_subscribers import MIB, _rss

COUNT, SIZE = 1500, 16_000
FLOW_OPTIONS = ("--outbound-limit", "262144", "--log-level", "INFO")
OVERFLOW_LINE = "outbound buffer overflow, closing with 4010"


def _flood(url: str, channel: str, done: threading.Event) -> None:
    with bad.peer(url) as publisher:
        publisher.handshake()
        pad = "x" * SIZE
        for i in range(COUNT):
            publisher.send({"event": "#publish", "data": {"channel": channel, "data": {"i": i, "pad": pad}}})
        # answered after everything sent before it was read by the worker
        assert publisher.invoke("#subscribe", {"channel": "after-the-flood"}) == {"rid": publisher.last_cid}
    done.set()


def _read_all(p: bad.Peer, channel: str) -> list[int]:
    """The publication numbers ``p`` receives, reading slower than the publisher sends."""
    seen: list[int] = []
    while len(seen) < COUNT:
        packet = p.recv(timeout=30)
        assert packet.get("event") == "#publish", packet
        assert packet["data"]["channel"] == channel
        seen.append(packet["data"]["data"]["i"])
        if len(seen) % 10 == 0:
            time.sleep(0.004)  # the load model: a reader slower than the flood, never stalled
    return seen


@pytest.mark.timeout(90)
@pytest.mark.parametrize("app", [None, "hubbub_test_app:app"], ids=["inline-path", "middleware-path"])
def test_a_flood_slows_its_sender_and_drops_only_the_stalled(hubbub_server: ServerFactory, app: Any) -> None:
    server = hubbub_server("json", *FLOW_OPTIONS, app=app)
    channel = f"flood-{uuid.uuid4().hex[:8]}"
    rss_before = _rss(server.proc.pid)
    stalled = raw_peer(
        server.url,
        [
            {"event": "#handshake", "data": {}, "cid": 1},
            {"event": "#subscribe", "data": {"channel": channel}, "cid": 2},
        ],
        rcvbuf=4096,
    )
    with stalled, bad.peer(server.url) as reader:
        reader.handshake()
        assert reader.invoke("#subscribe", {"channel": channel}) == {"rid": reader.last_cid}
        done = threading.Event()
        flood = threading.Thread(target=_flood, args=(server.url, channel, done), daemon=True)
        flood.start()
        assert _read_all(reader, channel) == list(range(COUNT))  # all of them, in order
        flood.join(30)
        assert done.is_set(), "the publisher did not get through"
        assert reader.invoke("#subscribe", {"channel": "still-here"}) == {"rid": reader.last_cid}  # never dropped
        rss_growth = _rss(server.proc.pid) - rss_before
        # The stalled one was closed with 4010 (its close frame waits behind what its kernel
        # buffer holds, which it never reads); the reader was not.
        wait_until(lambda: any(OVERFLOW_LINE in line for line in server.lines), "the 4010 close", 10)
    assert sum(OVERFLOW_LINE in line for line in server.lines) == 1, server.lines
    assert rss_growth < 48 * MIB, rss_growth / MIB
    bad.assert_serves(server)
