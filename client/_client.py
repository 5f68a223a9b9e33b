"""The :class:`Client` users hold: it builds the client's parts, wires them, and exposes their API.

The parts, each in its own module: the connection life (``_lifecycle``), calls and their
responses (``_calls``), channel subscriptions (``_subscriptions``), authentication
(``_authenticator``), the packet router (``_inbound``) and the user's handlers (``_handlers``).
Everything users call is either synchronous bookkeeping or waits on events; only the session
tasks touch the socket.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import anyio.abc

from hubbub.protocol import SCError

from ._auth import AuthState, MemoryTokenStore, TokenStore, token_payload
from ._authenticator import Authenticator
from ._backoff import ReconnectOptions
from ._buffer import Notifier, Overflow
from ._calls import CallTable
from ._channel import Channel, SubscribeOptions
from ._errors import ConnectionClosedError
from ._events import ClientEvent, EventHub
from ._handlers import Handler, Handlers
from ._inbound import Inbound
from ._lifecycle import ClientState, Lifecycle, SessionHooks
from ._options import ClientOptions, OptionView
from ._recovery import StreamPosition
from ._session import Session
from ._subscriptions import Subscriptions
from ._websocket import normalize_url

__all__ = ["Client", "ClientStatistics"]


@dataclasses.dataclass(slots=True)
class ClientStatistics:
    """What :meth:`Client.statistics` reports."""

    #: Successful handshakes (the first connection included).
    connections: int = 0
    #: Requests sent and not answered yet.
    pending_calls: int = 0
    #: ``#publish`` messages delivered to a subscribed (or pending) channel.
    publications: int = 0
    #: ``#publish`` messages for channels this client is not subscribed to (dropped).
    ignored_publications: int = 0
    #: ``#publish`` messages at or below their channel's known offset (dropped as duplicates).
    duplicate_publications: int = 0


class Client:
    """A SocketCluster client; create it with :func:`connect` (the same options, see :class:`ClientOptions`)."""

    # Read-only views of ``options`` (each option was an attribute before ClientOptions).
    codec: OptionView[str] = OptionView()
    ack_timeout: OptionView[float] = OptionView()
    connect_timeout: OptionView[float] = OptionView()
    auto_reconnect: OptionView[bool] = OptionView()
    reconnect_options: OptionView[ReconnectOptions] = OptionView("reconnect_policy")
    protocol_version: OptionView[int] = OptionView()
    channel_buffer: OptionView[int] = OptionView()
    overflow: OptionView[Overflow] = OptionView()
    close_timeout: OptionView[float] = OptionView()
    max_message_size: OptionView[int | None] = OptionView()
    ssl_context: OptionView[ssl.SSLContext | None] = OptionView()

    def __init__(self, url: str, options: ClientOptions | None = None, **overrides: Any) -> None:
        self.url = normalize_url(url)
        self._options = dataclasses.replace(options or ClientOptions(), **overrides)
        store = self._options.token_store
        self.token_store: TokenStore = store if store is not None else MemoryTokenStore()
        if self.options.auth_token is not None:
            self.token_store.save(self.options.auth_token)
        self._notifier = Notifier()
        self._events = EventHub()
        self._handlers = Handlers(self.options.procedures, self.options.receivers)
        hooks = SessionHooks(
            token=lambda: self._auth.load_token(),
            next_call_id=lambda: self._calls.next_id(),
            opened=self._opened,
            received=lambda session, packet: self._inbound.received(session, packet),
            closed=self._closed,
            finished=self._finished,
        )
        self._life = Lifecycle(self.url, self.options, hooks, self._events, self._notifier)
        self._calls = CallTable(self._life, ack_timeout=self.options.ack_timeout, url=self.url)
        self._subscriptions = Subscriptions(
            self._life,
            self._calls,
            self._notifier,
            spawn=self._life.spawn,
            is_authenticated=lambda: self._auth.is_authenticated,
            events=self._events,
        )
        self._auth = Authenticator(
            self.token_store, self._life, self._calls, self._events, self._notifier,
            on_authenticated=self._subscriptions.send_pending,
        )  # fmt: skip
        self._inbound = Inbound(
            self._calls, self._subscriptions, self._auth, self._handlers, self._events, self._life.spawn
        )

    @property
    def options(self) -> ClientOptions:
        """The options the client runs with."""
        return self._options

    @property
    def state(self) -> ClientState:
        """``CONNECTING`` (also while waiting to reconnect), ``OPEN`` or ``CLOSED`` (for good)."""
        return self._life.state

    @property
    def id(self) -> str | None:
        """The server's id for the current connection."""
        return self._life.id

    @property
    def auth_error(self) -> SCError | None:
        """The server's ``authError`` from the last handshake (a refused token), or None."""
        return self._life.auth_error

    @property
    def last_error(self) -> Exception | None:
        """The last connection failure (:class:`ConnectError`), or None."""
        return self._life.last_error

    @property
    def auth_state(self) -> AuthState:
        """``AUTHENTICATED`` or ``UNAUTHENTICATED``."""
        return self._auth.state

    @property
    def auth_token(self) -> str | None:
        """The signed token the connection is authenticated with."""
        return self._auth.token

    @property
    def auth_claims(self) -> Any:
        """The token's payload, decoded without verifying the signature (None when unauthenticated)."""
        return token_payload(self._auth.token)

    def statistics(self) -> ClientStatistics:
        """Counters for monitoring and tests (a copy)."""
        counts = self._subscriptions.counters()
        return ClientStatistics(connections=self._life.connections, pending_calls=len(self._calls), **counts)

    def channel_names(self) -> list[str]:
        """The channels subscribed or pending, in subscription order."""
        return self._subscriptions.names()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait for an open connection; raises ``ConnectionClosedError`` if the client closes for good."""
        with anyio.fail_after(timeout):
            await self._life.wait_session()

    async def wait_authenticated(self, timeout: float | None = None) -> None:
        """Wait until the client is authenticated."""
        with anyio.fail_after(timeout):
            await self._notifier.wait_for(
                lambda: self._auth.is_authenticated or self._life.state is ClientState.CLOSED
            )
        if not self._auth.is_authenticated:
            raise self._life.closed_error()

    def events(self, max_size: int = 256) -> AbstractAsyncContextManager[AsyncIterator[ClientEvent]]:
        """``async with client.events() as events: async for event in events:`` — connection and auth events.

        Yields :class:`Connected`, :class:`Disconnected`, :class:`ConnectFailed`,
        :class:`Reconnecting`, :class:`AuthStateChanged`, :class:`TokenChanged`, :class:`KickedOut`,
        :class:`Resubscribed` emitted while the block is open (oldest dropped beyond ``max_size``).
        """
        return self._events.listen(max_size)

    async def invoke(self, procedure: str, data: Any = None, *, timeout: float | None = None) -> Any:
        """Call a server procedure and return its result.

        Raises :class:`RemoteError` (the server's error name, message and fields),
        :class:`AckTimeoutError` after ``timeout`` (default: the client's ``ack_timeout``) seconds,
        :class:`ConnectionClosedError` if the connection drops first. While the client is
        reconnecting the call waits for the connection (within the same timeout).
        """
        return await self._calls.request(procedure, data, timeout)

    async def transmit(self, event: str, data: Any = None) -> None:
        """Send an event with no reply expected (waits up to ``ack_timeout`` for a connection)."""
        await self._calls.transmit(event, data)

    async def publish(
        self, channel: str, data: Any = None, *, ack: bool = True, timeout: float | None = None
    ) -> None:
        """Publish ``data`` to ``channel``; with ``ack`` (default) wait for the server to accept it.

        An acknowledged publish raises :class:`RemoteError` when the server refuses it; a
        fire-and-forget one (``ack=False``) returns once the message is queued for sending.
        """
        payload = {"channel": channel, "data": data}
        if ack:
            await self._calls.request("#publish", payload, timeout)
        else:
            await self._calls.transmit("#publish", payload)

    def subscribe(
        self,
        channel: str,
        *,
        data: Any = None,
        wait_for_auth: bool = False,
        priority: int = 0,
        max_size: int | None = None,
        overflow: Overflow | None = None,
        recover: bool = False,
        since: StreamPosition | None = None,
    ) -> Channel:
        """Subscribe to ``channel`` and return a handle to iterate (and ``async with``).

        The request goes out now if connected (or after the next handshake; with ``wait_for_auth``
        only once authenticated). Calling it again for the same channel gives another handle on the
        same subscription (the first call's options apply, except ``max_size``/``overflow``). Each
        handle buffers up to ``max_size`` messages (default: the client's ``channel_buffer``),
        applying ``overflow`` (default: the client's ``overflow``) beyond that. ``recover=True``:
        every resubscribe asks for the publications missed meanwhile (``data`` must be a dict or
        None); ``since``: a stored :attr:`Channel.position` to recover from at once.
        """
        if self._life.state is ClientState.CLOSED:
            raise self._life.closed_error()
        options = SubscribeOptions(data, wait_for_auth, priority, recover, since)
        buffer_size = max_size or self.options.channel_buffer
        return self._subscriptions.subscribe(channel, options, buffer_size, overflow or self.options.overflow)

    async def unsubscribe(self, channel: str) -> None:
        """Unsubscribe every handle of ``channel``."""
        await self._subscriptions.unsubscribe(channel)

    def release_channel(self, channel: Channel, error: BaseException | None = None) -> None:
        """End one handle (``Channel.unsubscribe`` does this); the last one unsubscribes on the wire."""
        self._subscriptions.release_channel(channel, error)

    async def authenticate(self, token: str) -> None:
        """Present a signed token (``#authenticate``); on success it is stored and the client is authenticated.

        Raises :class:`RemoteError` when the server refuses the token (the client is then
        unauthenticated).
        """
        await self._auth.authenticate(token)

    async def deauthenticate(self) -> None:
        """Forget the token and tell the server (``#removeAuthToken``) when connected."""
        await self._auth.deauthenticate()

    def set_procedure(self, name: str, handler: Handler | None) -> None:
        """Answer server-initiated invokes of ``name`` with ``handler(data)`` (None removes it).

        The handler may be a plain or a coroutine function; it runs in its own task. Its return
        value is the response data; an exception becomes the error response (an ``SCError`` keeps
        its name and fields). Invokes with no handler get a ``NoProcedureError`` response.
        """
        self._handlers.set_procedure(name, handler)

    def set_receiver(self, name: str, handler: Handler | None) -> None:
        """Call ``handler(data)`` for each server transmit of ``name`` (None removes it).

        Plain functions run in order, inline (keep them short); coroutine functions each get a
        task. For ordered asynchronous handling use :meth:`listen` instead.
        """
        self._handlers.set_receiver(name, handler)

    def listen(self, event: str, max_size: int = 1000) -> AbstractAsyncContextManager[AsyncIterator[Any]]:
        """``async with client.listen("greetBack") as stream: async for data in stream:``.

        Each server transmit of ``event`` while the block is open (the oldest dropped beyond ``max_size``).
        """
        return self._handlers.listen(event, max_size)

    def listen_all(self, max_size: int = 1000) -> AbstractAsyncContextManager[AsyncIterator[tuple[str, Any]]]:
        """Like :meth:`listen`, for every event: ``(event, data)`` of each server transmit."""
        return self._handlers.listen_all(max_size)

    async def _start(self, tg: anyio.abc.TaskGroup) -> None:
        """Run the client in ``tg`` (:func:`connect` does this); see ``ClientOptions.wait_connected``."""
        await self._life.start(tg)

    async def aclose(self) -> None:
        """Close the connection (code 1000) and stop reconnecting. Idempotent."""
        await self._life.aclose()

    def _opened(self, session: Session) -> None:
        reply = session.reply
        self._auth.on_handshake(reply.is_authenticated, reply.token)
        self._subscriptions.send_pending()

    def _closed(self, code: int, reason: str) -> None:
        self._calls.fail_all(code, reason)
        self._subscriptions.on_disconnect()

    def _finished(self, error: ConnectionClosedError) -> None:
        self._subscriptions.end_all(error)
        self._handlers.close(error)
