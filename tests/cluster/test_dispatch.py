"""A session's inbound dispatch in-process: real parts over a real socket pair, no worker process."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio

from hubbub.broker import MemoryBroker
from hubbub.cluster import App, MiddlewareLine, Request, ServerConfig, SocketState
from hubbub.cluster._hub import Hub
from hubbub.cluster._publisher import Publisher
from hubbub.cluster._session.events import process
from hubbub.cluster._session.session import Session, SessionParts
from hubbub.cluster._stats import ServerStats
from hubbub.cluster._transport.connection import RECV_SIZE, ConnectionParts, WsConnection
from hubbub.cluster._transport.flow import FlowControl
from hubbub.cluster._transport.http import HttpRequest
from hubbub.cluster._transport.outbound import WriteBatch
from hubbub.cluster._transport.timers import Timers
from hubbub.cluster.auth import JwtAuth
from hubbub.protocol import JsonCodec, ProtocolViolation


@dataclass
class Client:
    """The client end of the pair: reads the server's (unmasked) frames."""

    sock: socket.socket
    session: Session
    opened: list[Session]

    async def packets(self, count: int) -> list[Any]:
        buffer = b""
        found: list[Any] = []
        with trio.fail_after(5):
            while len(found) < count:
                await trio.lowlevel.wait_readable(self.sock)
                buffer += self.sock.recv(1 << 16)
                while len(buffer) >= 2:
                    length, start = buffer[1] & 0x7F, 2
                    if length == 126:
                        length, start = int.from_bytes(buffer[2:4], "big"), 4
                    if len(buffer) < start + length:
                        break
                    payload, buffer = buffer[start : start + length], buffer[start + length :]
                    found.append(json.loads(payload) if payload else "")
        return found

    async def send(self, packet: Any) -> None:
        await self.session.on_message(json.dumps(packet))


@asynccontextmanager
async def open_session(app: App) -> AsyncIterator[Client]:
    config = ServerConfig()
    codec = JsonCodec()
    broker = MemoryBroker()
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)
    opened: list[Session] = []
    try:
        async with trio.open_nursery() as nursery:
            stats = ServerStats()
            timers = Timers(config.ping_interval, config.handshake_timeout, config.close_timeout, b"")
            batch = WriteBatch()
            nursery.start_soon(batch.run)
            links = ConnectionParts(
                config.max_payload, config.outbound_limit, config.ping_timeout, config.close_timeout,
                batch, timers, stats, nursery.start_soon, memoryview(bytearray(RECV_SIZE)),
            )  # fmt: skip
            publisher = Publisher(broker)
            app.bind(publisher)
            chains = app.middleware_chains
            parts = SessionParts(
                config, codec, JwtAuth("secret"), app, Hub(broker, nursery, [], codec), publisher, stats,
                chains[MiddlewareLine.INBOUND_RAW], chains[MiddlewareLine.INBOUND], chains[MiddlewareLine.OUTBOUND], codec.read_publish, True, process, opened.append,
                FlowControl(hard_limit=1 << 24, stall_timeout=5.0, worker_limit=1 << 28),
            )  # fmt: skip
            conn = WsConnection(left, links)
            yield Client(right, Session(conn, HttpRequest("/socketcluster/", (), None), parts), opened)
            nursery.cancel_scope.cancel()
    finally:
        left.close()
        right.close()


async def _handshake(client: Client) -> dict[str, Any]:
    await client.send({"event": "#handshake", "data": {}, "cid": 1})
    (reply,) = await client.packets(1)
    return reply  # type: ignore[no-any-return]


@pytest.mark.trio
async def test_the_handshake_opens_the_session() -> None:
    async with open_session(App()) as client:
        assert client.session.link.state is SocketState.CONNECTING
        reply = await _handshake(client)
        assert reply["rid"] == 1 and reply["data"]["id"] == client.session.id
        assert reply["data"]["isAuthenticated"] is False and reply["data"]["pingTimeout"] == 30000
        assert client.session.link.state is SocketState.OPEN and client.opened == [client.session]
        handle = client.session.handle
        assert handle is not None and handle.state == "open"  # states compare as the strings they were


@pytest.mark.trio
async def test_anything_before_the_handshake_is_a_protocol_violation() -> None:
    async with open_session(App()) as client:
        with pytest.raises(ProtocolViolation):
            await client.send({"event": "#subscribe", "data": {"channel": "x"}, "cid": 1})


@pytest.mark.trio
async def test_procedures_answer_in_order_and_unknown_ones_are_errors() -> None:
    app = App()

    @app.procedure("double")
    async def double(request: Request) -> object:
        await trio.sleep(0.01 if request.data == 1 else 0)  # the first call is slower: order still holds
        return request.data * 2

    async with open_session(app) as client:
        await _handshake(client)
        for cid, value in ((2, 1), (3, 2)):
            await client.send({"event": "double", "data": value, "cid": cid})
        await client.send({"event": "missing", "data": None, "cid": 4})
        replies = await client.packets(3)
        assert replies[0] == {"rid": 4, "error": replies[0]["error"]}
        assert replies[0]["error"]["name"] == "InvalidActionError"
        assert replies[1:] == [{"rid": 2, "data": 2}, {"rid": 3, "data": 4}]


@pytest.mark.trio
async def test_subscribe_then_publish_comes_back_with_its_ack() -> None:
    async with open_session(App()) as client:
        await _handshake(client)
        await client.send({"event": "#subscribe", "data": {"channel": "room"}, "cid": 2})
        assert await client.packets(1) == [{"rid": 2}]
        assert client.session.channels == {"room"}
        text = '{"event":"#publish","data":{"channel":"room","data":"hi"},"cid":3}'
        assert client.session.publish_inline(text.encode())  # the read loop's fast path
        publication, ack = await client.packets(2)
        assert publication == {"event": "#publish", "data": {"channel": "room", "data": "hi"}}
        assert ack == {"rid": 3}
        await client.send({"event": "#unsubscribe", "data": "room", "cid": 4})
        assert await client.packets(1) == [{"rid": 4}]
        assert client.session.channels == frozenset()


@pytest.mark.trio
async def test_a_client_response_completes_the_servers_invoke() -> None:
    async with open_session(App()) as client:
        await _handshake(client)
        answers: list[Any] = []

        async def call() -> None:
            answers.append(await client.session.invoke("ask", "question"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            (invoke,) = await client.packets(1)
            assert invoke["event"] == "ask" and invoke["data"] == "question"
            await client.send({"rid": invoke["cid"], "data": "answer"})
        assert answers == ["answer"]
