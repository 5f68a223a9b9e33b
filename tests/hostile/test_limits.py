"""Per-socket and per-worker limits on what a client can make the worker hold (issue 10, defects 5, 9).

Pending calls per socket are bounded (``max_pending_calls``), channel names are bounded in length
(``max_channel_name``) and a worker holds a bounded number of distinct channels
(``max_channels``). Past a limit the client gets a clear error (or, for a flood of transmits,
which cannot be answered, close code 1008); other clients are not affected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..cluster import test_bad_input as bad
from ..conftest import ServerFactory


def _errors_until(p: bad.Peer, marker: int) -> list[Any]:
    """The ``error`` of every response before the response to ``marker`` (which must be an error)."""
    errors = []
    while True:
        packet = p.recv()
        if "rid" in packet:
            assert packet.get("error") is not None, packet
            errors.append(packet["error"])
        if packet.get("rid") == marker:
            return errors[:-1]


def test_pending_calls_are_bounded(start_server: Callable[..., Any]) -> None:
    server = start_server("--max-pending-calls", "50")
    with bad.peer(server.url) as p, bad.peer(server.url) as other:
        p.handshake()
        other.handshake()
        for _ in range(300):
            p.request("never")  # a procedure that never answers
        errors = _errors_until(p, p.request("echo"))  # the 301st call is refused as well
        assert len(errors) == 300 - 50, len(errors)
        assert all(e["name"] == "InvalidActionError" for e in errors)
        assert "Too many pending calls on this socket (limit 50)" in errors[0]["message"]
        other.echo_works()  # the limit is per socket
    bad.assert_serves(server)


def test_a_flood_of_transmits_to_a_stalled_receiver_closes_1008(start_server: Callable[..., Any]) -> None:
    server = start_server("--max-pending-calls", "20")
    with bad.peer(server.url) as p:
        p.handshake()
        for _ in range(25):
            p.send({"event": "stall", "data": None})
        assert bad.expect_close(p.ws) == 1008
    bad.assert_serves(server)


def test_channel_names_are_bounded(start_server: Callable[..., Any], hubbub_server: ServerFactory) -> None:
    middleware = start_server("--max-channel-name", "16")  # the general path (inbound middleware)
    plain = hubbub_server("json", "--max-channel-name", "16", app=None)  # the plain publish fast path
    try:
        for server in (middleware, plain):
            with bad.peer(server.url) as p:
                p.handshake()
                assert p.invoke("#subscribe", {"channel": "x" * 16}) == {"rid": p.last_cid}
                for event, data in (
                    ("#subscribe", {"channel": "x" * 17}),
                    ("#publish", {"channel": "x" * 17, "data": 1}),
                ):
                    error = p.invoke(event, data)["error"]
                    assert error["name"] == "InvalidActionError", error
                    assert "longer than the limit of 16" in error["message"]
            bad.assert_serves(server)
    finally:
        plain.stop()


def test_distinct_channels_per_worker_are_bounded(start_server: Callable[..., Any]) -> None:
    server = start_server("--max-channels", "3")
    with bad.peer(server.url) as p, bad.peer(server.url) as q:
        p.handshake()
        q.handshake()
        for name in ("a", "b", "c"):
            assert p.invoke("#subscribe", {"channel": name}) == {"rid": p.last_cid}
        error = p.invoke("#subscribe", {"channel": "d"})["error"]
        assert error["name"] == "BrokerError" and "limit of 3 channels" in error["message"], error
        assert q.invoke("#subscribe", {"channel": "a"}) == {"rid": q.last_cid}  # existing: fine
        p.invoke("#unsubscribe", "c")
        assert q.invoke("#subscribe", {"channel": "d"}) == {"rid": q.last_cid}  # room again
