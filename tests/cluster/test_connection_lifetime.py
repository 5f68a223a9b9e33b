"""A connection's objects are freed by reference counting when it ends, not by the cycle collector.

With thousands of connections opening and closing, every connection left in a reference cycle
costs the worker a garbage collection later (a full one traverses every live connection). Here a
real worker serves clients with the collector switched off; afterwards nothing of the server side
of those connections may be found unreachable-but-alive.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator

import pytest
import trio
from websockets.server import ServerProtocol
from websockets.sync.client import connect

from hubbub.broker import MemoryBroker
from hubbub.cluster import App, Server, ServerConfig, ServerSocket, bind_listener
from hubbub.cluster._session.session import Session
from hubbub.cluster._transport.connection import WsConnection
from hubbub.cluster._transport.outbound import Outbound

TIMEOUT = 10.0


@pytest.fixture
def collector_off() -> Iterator[None]:
    """The cycle collector off, and what it would have freed kept in ``gc.garbage``."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def _client_session(url: str, index: int) -> None:
    """Handshake, subscribe, publish and read it back, then close (the official client's order)."""
    channel = f"lifetime-{index}"
    with connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        ws.send(json.dumps({"event": "#handshake", "data": {"authToken": None}, "cid": 1}))
        ws.send(json.dumps({"event": "#subscribe", "data": {"channel": channel}, "cid": 2}))
        ws.send(json.dumps({"event": "#publish", "data": {"channel": channel, "data": index}, "cid": 3}))
        seen: set[object] = set()
        while not {1, 2, 3, "#publish"} <= seen:
            message = ws.recv(timeout=TIMEOUT)
            if message == "":
                ws.send("")
                continue
            packet = json.loads(message)
            seen.add(packet.get("rid", packet.get("event")))


@pytest.mark.trio
async def test_ended_connections_leave_no_reference_cycle(collector_off: None) -> None:
    listener = bind_listener("127.0.0.1", 0)
    config = ServerConfig(port=listener.getsockname()[1])
    server = Server(App(), config, MemoryBroker())
    url = config.pretty_url
    sessions = 5
    with trio.fail_after(TIMEOUT * 3):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, listener)
            for index in range(sessions):
                await trio.to_thread.run_sync(_client_session, url, index)
            await server.shutdown()  # every client has closed: this waits for the server side to end
            assert server.timers.live_count == 0
            nursery.cancel_scope.cancel()
    listener.close()
    assert server.hub.deliveries == sessions

    gc.collect()
    server_side = (ServerSocket, Session, WsConnection, ServerProtocol, Outbound)
    leaked = [type(obj).__name__ for obj in gc.garbage if isinstance(obj, server_side)]
    assert leaked == []
