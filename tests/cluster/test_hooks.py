"""Connection hooks in a real worker: the app holds one handle per client, from connect to disconnect.

A session makes the app's handle only when something asks for it (a hook, a procedure, a
middleware); these tests pin that whoever asks gets the same object, and that a disconnection
hook still gets one when nothing asked before the connection ended.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from websockets.sync.client import ClientConnection, connect

from hubbub.broker import MemoryBroker
from hubbub.cluster import App, Request, Server, ServerConfig, ServerSocket, bind_listener
from hubbub.protocol import CloseCode

TIMEOUT = 10.0


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[tuple[Server, str]]:
    listener = bind_listener("127.0.0.1", 0)
    config = ServerConfig(port=listener.getsockname()[1])
    server = Server(app, config, MemoryBroker())
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, listener)
            yield server, config.pretty_url
            nursery.cancel_scope.cancel()
    finally:
        listener.close()


def _call(ws: ClientConnection, packet: dict[str, Any]) -> Any:
    """Send an invoke and return its response (pings answered, other packets skipped)."""
    ws.send(json.dumps(packet))
    while True:
        message = ws.recv(timeout=TIMEOUT)
        if message == "":
            ws.send("")
            continue
        reply = json.loads(message)
        if reply.get("rid") == packet["cid"]:
            return reply


@pytest.mark.trio
async def test_hooks_and_procedures_get_one_handle_per_client() -> None:
    app = App()
    connected: list[ServerSocket] = []
    disconnected: list[tuple[ServerSocket, int, str]] = []
    callers: list[ServerSocket] = []
    ended = trio.Event()

    @app.on_connection
    async def on_connection(socket: ServerSocket) -> None:
        connected.append(socket)

    @app.on_disconnection
    async def on_disconnection(socket: ServerSocket, code: int, reason: str) -> None:
        disconnected.append((socket, code, socket.state.value))
        ended.set()

    @app.procedure("whoami")
    async def whoami(request: Request) -> str:
        callers.append(request.socket)
        return request.socket.id

    def client(url: str) -> tuple[str, str]:
        with connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            handshake = _call(ws, {"event": "#handshake", "data": {}, "cid": 1})
            answer = _call(ws, {"event": "whoami", "data": None, "cid": 2})
            ws.close(CloseCode.NORMAL)
        return handshake["data"]["id"], answer["data"]

    async with serving(app) as (_, url):
        socket_id, answered_id = await trio.to_thread.run_sync(client, url)
        with trio.fail_after(TIMEOUT):
            await ended.wait()
    assert socket_id == answered_id
    (handle,) = connected
    assert callers == [handle] and handle.id == socket_id
    assert disconnected == [(handle, CloseCode.NORMAL, "closed")]


@pytest.mark.trio
async def test_a_disconnection_hook_gets_a_handle_nothing_asked_for_before() -> None:
    app = App()
    disconnected: list[tuple[ServerSocket, int]] = []
    ended = trio.Event()

    @app.on_disconnection
    async def on_disconnection(socket: ServerSocket, code: int, reason: str) -> None:
        disconnected.append((socket, code))
        ended.set()

    def client(url: str) -> str:
        with connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            handshake = _call(ws, {"event": "#handshake", "data": {}, "cid": 1})
            ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            ws.socket.close()  # gone without a close frame (a reset)
        return str(handshake["data"]["id"])

    async with serving(app) as (server, url):
        socket_id = await trio.to_thread.run_sync(client, url)
        with trio.fail_after(TIMEOUT):
            await ended.wait()
        assert server.connection_count == 0
    ((handle, code),) = disconnected
    assert handle.id == socket_id and code == CloseCode.ABNORMAL and handle.state.value == "closed"
