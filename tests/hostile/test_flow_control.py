"""A burst slows its sender instead of dropping a subscriber that keeps reading (issue 10, flow control).

One client floods fire-and-forget publications of 16 KB at a channel with one stalled and one
reading (but slower) subscriber, on a real worker. The reading one gets every publication in
order; the stalled one is closed with 4010 once it has made no progress for
``slow_consumer_timeout``; the worker's memory stays bounded. Both paths of a client publish are
covered: the inline fast path (no app) and the general path (the interop test app's middleware).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ..cluster import test_bad_input as bad
from ..conftest import ServerFactory, stalled_subscriber, wait_until
from .test_stalled_subscribers import MIB, _rss

COUNT, SIZE = 1500, 16_000
FLOW_OPTIONS = ("--outbound-limit", "262144", "--log-level", "INFO")
OVERFLOW_LINE = "outbound buffer overflow, closing with 4010"


def publish_flood(
    url: str, channel: str, done: threading.Event, count: int = COUNT, size: int = SIZE
) -> None:
    """``count`` fire-and-forget publications of ``size`` characters, then one acknowledged request."""
    with bad.peer(url) as publisher:
        publisher.handshake()
        pad = "x" * size
        for i in range(count):
            publisher.send({"event": "#publish", "data": {"channel": channel, "data": {"i": i, "pad": pad}}})
        # answered after everything sent before it was read by the worker
        assert publisher.invoke("#subscribe", {"channel": "after-the-flood"}) == {"rid": publisher.last_cid}
    done.set()


def read_slowly(p: bad.Peer, channel: str, count: int = COUNT) -> list[int]:
    """The publication numbers ``p`` receives, reading slower than the publisher sends."""
    seen: list[int] = []
    while len(seen) < count:
        packet = p.recv(timeout=30)
        assert packet.get("event") == "#publish", packet
        assert packet["data"]["channel"] == channel
        seen.append(packet["data"]["data"]["i"])
        if len(seen) % 10 == 0:
            time.sleep(0.004)  # the load model: a reader slower than the flood, never stalled
    return seen


@contextlib.contextmanager
def flood_past_a_slower_and_a_stalled_subscriber(url: str, channel: str) -> Iterator[None]:
    """Flood ``channel``, which has a stalled and a slower subscriber; the block runs after it.

    Checks that the slower one got every publication in order and is still served, and that the
    publisher got through; the stalled one is still connected in the block (to check its 4010).
    """
    stalled = stalled_subscriber(url, channel)
    with stalled, bad.peer(url) as reader:
        reader.handshake()
        assert reader.invoke("#subscribe", {"channel": channel}) == {"rid": reader.last_cid}
        done = threading.Event()
        flood = threading.Thread(target=publish_flood, args=(url, channel, done), daemon=True)
        flood.start()
        assert read_slowly(reader, channel) == list(range(COUNT))  # all of them, in order
        flood.join(30)
        assert done.is_set(), "the publisher did not get through"
        assert reader.invoke("#subscribe", {"channel": "still-here"}) == {"rid": reader.last_cid}  # not dropped
        yield


@pytest.mark.timeout(90)
@pytest.mark.parametrize("app", [None, "hubbub_test_app:app"], ids=["inline-path", "middleware-path"])
def test_a_flood_slows_its_sender_and_drops_only_the_stalled(hubbub_server: ServerFactory, app: Any) -> None:
    server = hubbub_server("json", *FLOW_OPTIONS, app=app)
    channel = f"flood-{uuid.uuid4().hex[:8]}"
    rss_before = _rss(server.proc.pid)
    with flood_past_a_slower_and_a_stalled_subscriber(server.url, channel):
        rss_growth = _rss(server.proc.pid) - rss_before
        # The stalled one was closed with 4010 (its close frame waits behind what its kernel
        # buffer holds, which it never reads); the reader was not.
        wait_until(lambda: any(OVERFLOW_LINE in line for line in server.lines), "the 4010 close", 10)
    assert sum(OVERFLOW_LINE in line for line in server.lines) == 1, server.lines
    assert rss_growth < 48 * MIB, rss_growth / MIB
    bad.assert_serves(server)
