"""Hostile JSON numbers: out of float range, NaN and Infinity literals, thousands of digits.

Each is compared with socketcluster-server v20 (run from npm): the same replies and deliveries,
in any order, for an echo and a publication of the number; the connection stays usable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ..cluster import test_bad_input as bad
from ..conftest import ServerFactory
from .probes import assert_no_traceback


def _seen(url: str, number: str) -> tuple[list[str], list[str]]:
    """What the sender and a subscriber get for an echo and a publication of ``number`` (sorted)."""
    with bad.peer(url) as sender, bad.peer(url) as reader:
        sender.handshake()
        reader.handshake()
        reader.invoke("#subscribe", {"channel": "n"})
        sender.ws.send('{"event":"echo","data":NUMBER,"cid":2}'.replace("NUMBER", number))
        sender.ws.send(
            '{"event":"#publish","data":{"channel":"n","data":NUMBER},"cid":3}'.replace("NUMBER", number)
        )
        return _until_marker(sender), _until_marker(reader)


def _until_marker(p: bad.Peer) -> list[str]:
    """The packets ``p`` gets before the reply to an echo sent now, sorted (their order may differ)."""
    p.send({"event": "echo", "data": "marker", "cid": 99})
    got = []
    while (packet := p.recv()) != {"rid": 99, "data": "marker"}:
        got.append(repr(packet))
    return sorted(got)


@pytest.mark.interop
@pytest.mark.parametrize(
    "number",
    [
        "1e400",
        "-1e400",
        "NaN",
        "Infinity",
        "-Infinity",
        "1." + "1" * 5000,
        "1" * 5000,
    ],
    ids=["over-max", "under-min", "nan", "infinity", "minus-infinity", "long-fraction", "long-integer"],
)
def test_hostile_numbers_are_read_as_socketcluster_reads_them(
    start_server: Callable[..., Any], official_server: ServerFactory, number: str
) -> None:
    server = start_server()
    assert _seen(server.url, number) == _seen(official_server("json").url, number)
    assert_no_traceback(server)
    bad.assert_serves(server)
