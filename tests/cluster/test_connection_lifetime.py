"""A connection's objects are freed by reference counting when it ends, not by the cycle collector.

With thousands of connections opening and closing, every connection left in a reference cycle
costs the worker a garbage collection later (a full one traverses every live connection). Here a
real worker serves clients with the collector switched off; afterwards nothing of the server side
of those connections may be found unreachable-but-alive.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio
from websockets.server import ServerProtocol
from websockets.sync.client import connect

from hubbub.broker import MemoryBroker
from hubbub.cluster import App, Request, Server, ServerConfig, ServerSocket, bind_listener
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


def _client_session(url: str, index: int, *, extra: bool = False) -> None:
    """Handshake, subscribe, publish and read it back, then close (the official client's order).

    ``extra``: also send a transmit and call ``echo-back``, answering the server's ``echo`` invoke.
    """
    channel = f"lifetime-{index}"
    with connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        ws.send(json.dumps({"event": "#handshake", "data": {"authToken": None}, "cid": 1}))
        ws.send(json.dumps({"event": "#subscribe", "data": {"channel": channel}, "cid": 2}))
        ws.send(json.dumps({"event": "#publish", "data": {"channel": channel, "data": index}, "cid": 3}))
        expected: set[object] = {1, 2, 3, "#publish"}
        if extra:
            ws.send(json.dumps({"event": "note", "data": index}))
            ws.send(json.dumps({"event": "echo-back", "data": index, "cid": 4}))
            expected |= {4, "echo"}
        seen: set[object] = set()
        while not expected <= seen:
            message = ws.recv(timeout=TIMEOUT)
            if message == "":
                ws.send("")
                continue
            packet = json.loads(message)
            if packet.get("event") == "echo":
                ws.send(json.dumps({"rid": packet["cid"], "data": packet["data"]}))
            if packet.get("rid") == 4:
                assert packet.get("data") == index, packet
            seen.add(packet.get("rid", packet.get("event")))


def _busy_app() -> App:
    """An app that makes every lazily made part of a session: the handle, the lanes, the call table."""
    app = App()

    @app.on_connection
    async def connected(socket: ServerSocket) -> None:
        del socket

    @app.on_disconnection
    async def disconnected(socket: ServerSocket, code: int, reason: str) -> None:
        del socket, code, reason

    @app.procedure("echo-back")
    async def echo_back(request: Request) -> Any:
        return await request.socket.invoke("echo", request.data)

    @app.receiver("note")
    async def note(socket: ServerSocket, data: Any) -> None:
        del socket, data

    return app


def _busy_client_session(url: str, index: int) -> None:
    """:func:`_client_session`, then a transmit and a procedure that invokes the client back."""
    _client_session(url, index, extra=True)


@pytest.mark.trio
@pytest.mark.parametrize(("make_app", "client"), [(App, _client_session), (_busy_app, _busy_client_session)])
async def test_ended_connections_leave_no_reference_cycle(
    collector_off: None, make_app: Callable[[], App], client: Callable[[str, int], None]
) -> None:
    listener = bind_listener("127.0.0.1", 0)
    config = ServerConfig(port=listener.getsockname()[1])
    server = Server(make_app(), config, MemoryBroker())
    url = config.pretty_url
    sessions = 5
    with trio.fail_after(TIMEOUT * 3):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, listener)
            for index in range(sessions):
                await trio.to_thread.run_sync(client, url, index)
            await server.shutdown()  # every client has closed: this waits for the server side to end
            assert server.timers.live_count == 0
            nursery.cancel_scope.cancel()
    listener.close()
    assert server.hub.deliveries == sessions

    gc.collect()
    server_side = (ServerSocket, Session, WsConnection, ServerProtocol, Outbound)
    leaked = [type(obj).__name__ for obj in gc.garbage if isinstance(obj, server_side)]
    assert leaked == []
