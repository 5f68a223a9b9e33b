"""The packet router in-process, over the client's real parts: where each server packet goes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from hubbub.client import (
    AuthState,
    AuthStateChanged,
    ClientEvent,
    KickedOut,
    KickedOutError,
    MemoryTokenStore,
    Overflow,
    TokenChanged,
)
from hubbub.client._authenticator import Authenticator
from hubbub.client._buffer import Notifier
from hubbub.client._calls import CallTable
from hubbub.client._channel import SubscribeOptions
from hubbub.client._events import EventHub
from hubbub.client._handlers import Handlers
from hubbub.client._inbound import Inbound
from hubbub.client._subscriptions import Subscriptions
from hubbub.protocol import Invoke, Response, Transmit

from .fakes import Link, RecordingSession

pytestmark = pytest.mark.anyio

# header {"alg":"HS256","typ":"JWT"}, payload {"username":"alice"}
TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VybmFtZSI6ImFsaWNlIn0.sig"


@dataclass
class Router:
    inbound: Inbound
    session: RecordingSession
    calls: CallTable
    subscriptions: Subscriptions
    auth: Authenticator
    store: MemoryTokenStore
    events: list[ClientEvent]
    received: list[Any]

    def feed(self, *packets: Any) -> None:
        for packet in packets:
            self.inbound.received(self.session, packet)  # type: ignore[arg-type]


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    link, notifier, hub, store = Link(), Notifier(), EventHub(), MemoryTokenStore()
    session = link.open()
    calls = CallTable(link, ack_timeout=10, url="ws://test/")  # type: ignore[arg-type]
    received: list[Any] = []
    handlers = Handlers(None, {"greet": received.append})
    async with anyio.create_task_group() as tg, hub.listen() as stream:
        subscriptions = Subscriptions(
            link,  # type: ignore[arg-type]
            calls,
            notifier,
            spawn=tg.start_soon,
            is_authenticated=lambda: auth.is_authenticated,
            events=hub,
        )
        auth = Authenticator(store, link, calls, hub, notifier, on_authenticated=subscriptions.send_pending)  # type: ignore[arg-type]
        inbound = Inbound(calls, subscriptions, auth, handlers, hub, tg.start_soon)
        events: list[ClientEvent] = []

        async def collect() -> None:
            async for event in stream:
                events.append(event)

        tg.start_soon(collect)
        yield Router(inbound, session, calls, subscriptions, auth, store, events, received)
        tg.cancel_scope.cancel()


async def test_a_response_completes_its_call(router: Router) -> None:
    call = router.calls.send(router.session, "echo", 1)
    router.feed(Response(rid=call.cid, data="back"))
    assert await router.calls.result(call) == "back"


async def test_publish_and_kick_out_go_to_the_subscriptions(router: Router) -> None:
    channel = router.subscriptions.subscribe("room", SubscribeOptions(), 10, Overflow.DROP_OLDEST)
    router.feed(
        Transmit("#publish", {"channel": "room", "data": "hi"}),
        Transmit("#kickOut", {"channel": "room", "message": "bye"}),
        Transmit("#kickOut", "malformed"),
    )
    assert await channel.receive() == "hi"
    with pytest.raises(KickedOutError, match="bye"):
        await channel.receive()
    await anyio.wait_all_tasks_blocked()
    assert router.events == [KickedOut("room", "bye")]


async def test_token_events_as_transmits_and_invokes(router: Router) -> None:
    router.feed(Transmit("#setAuthToken", {"token": TOKEN}))
    assert (router.auth.state, router.store.load()) == (AuthState.AUTHENTICATED, TOKEN)
    router.feed(Invoke("#setAuthToken", {"no": "token"}, 5), Invoke("#removeAuthToken", None, 6))
    assert router.session.packets[-2:] == [
        {
            "rid": 5,
            "error": {
                "message": "No token data provided by #setAuthToken event",
                "name": "InvalidMessageError",
            },
        },
        {"rid": 6},
    ]
    assert (router.auth.state, router.store.load()) == (AuthState.UNAUTHENTICATED, None)
    await anyio.wait_all_tasks_blocked()
    claims = {"username": "alice"}
    assert router.events == [
        AuthStateChanged(AuthState.UNAUTHENTICATED, AuthState.AUTHENTICATED, TOKEN, claims),
        TokenChanged(TOKEN, claims),
        AuthStateChanged(AuthState.AUTHENTICATED, AuthState.UNAUTHENTICATED, None, None),
        TokenChanged(None, None),
    ]


async def test_other_events_go_to_the_users_handlers(router: Router) -> None:
    router.feed(
        Transmit("greet", "hello"), Transmit("#publish", "not for a handler"), Invoke("#publish", None, 9)
    )
    assert router.received == ["hello"]
    assert router.session.packets == [
        {
            "rid": 9,
            "error": {
                "message": "No procedure handler for '#publish' on this client",
                "name": "NoProcedureError",
            },
        }
    ]
